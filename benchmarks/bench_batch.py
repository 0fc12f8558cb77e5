"""The per-batch fixed cost of the document stages: CPU seconds per batch of a few rows.

    taskset -c 0 env POLARS_MAX_THREADS=1 .venv/bin/python benchmarks/bench_batch.py [--rows 50] [--batches 200]

The issue's pipeline (bench_pipeline.STAGES: its filters, then minhash_dedup's scan) runs as a
1-worker run feeds it, on `--batches` batches of `--rows` rows each drawn from the held-out corpus,
and on the whole corpus in its 4 shards. Per stage: CPU seconds per small batch (what a batch costs
whatever its size) and CPU seconds of the whole corpus; `--profile N` prints the N functions
called most often on the small batches (cProfile), where the fixed cost comes from.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import stages_and_batches  # noqa: E402


def run(filters: list, minhash, batches: list[pl.DataFrame], seconds: dict[str, float]) -> None:
    """Every batch through the filters and the scan, as `run_stages` does; CPU seconds per stage."""
    from cleanmix.pipelines.stage import SharedColumns, without_shared
    from cleanmix.pipelines.stats import StageStats, text_bytes

    for df in batches:
        stats = [StageStats(stage.label, stage.type) for stage in filters]
        bytes_in = text_bytes(df)
        shared = SharedColumns(filters)
        for i, (stage, stage_stats) in enumerate(zip(filters, stats)):
            started = time.process_time()
            df = shared.attach(df, i)
            result = stage.process(df)
            bytes_in = stage_stats.record(df, result, 0.0, bytes_in)
            if result.rejected.height:
                without_shared(result.rejected, filters)
            df = result.kept
            seconds[stage.label] = seconds.get(stage.label, 0.0) + time.process_time() - started
        started = time.process_time()
        df = without_shared(df, filters)
        if df.height:
            minhash.scan(df)
        seconds["minhash_dedup scan"] = seconds.get("minhash_dedup scan", 0.0) + time.process_time() - started


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    filters, minhash, shards = stages_and_batches()
    whole = pl.concat(shards)
    small = [whole.slice((i * args.rows) % (whole.height - args.rows), args.rows) for i in range(args.batches)]
    run(filters, minhash, small[:2], {})  # models and tables loaded outside the timings
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        run(filters, minhash, small, {})
        profile.disable()
        pstats.Stats(profile).sort_stats("ncalls").print_stats(args.profile)
        return
    best_small: dict[str, float] = {}
    best_whole: dict[str, float] = {}
    for _ in range(args.repeat):
        seconds: dict[str, float] = {}
        run(filters, minhash, small, seconds)
        best_small = {k: min(v, best_small.get(k, v)) for k, v in seconds.items()}
        seconds = {}
        run(filters, minhash, shards, seconds)
        best_whole = {k: min(v, best_whole.get(k, v)) for k, v in seconds.items()}
    print(f"| stage | CPU ms per {args.rows}-row batch | CPU s, whole corpus ({len(shards)} batches, {whole.height:,} docs) |")
    print("|---|---|---|")
    for name in best_small:
        print(f"| {name} | {1000 * best_small[name] / args.batches:.1f} | {best_whole[name]:.2f} |")
    print(f"| all | {1000 * sum(best_small.values()) / args.batches:.1f} | {sum(best_whole.values()):.2f} |")


if __name__ == "__main__":
    main()
