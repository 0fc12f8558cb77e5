"""Object stores: the same run with input and output on local disk and on an S3-compatible server.

    .venv/bin/python benchmarks/bench_object_store.py [--mb 50] [--workers 2] [--repeat 3]

Builds a corpus from ../shared/data (as bench_core.py does), starts moto's S3 server on 127.0.0.1
(a Python server on the same cores: a floor for what an S3 round trip costs, not AWS's figures),
uploads the corpus to it, then times `normalize` + `length` runs (keep_rejected on), interleaved:
  local → local   the baseline
  s3 → local      input read from the server (Parquet footers and row groups by range)
  local → s3      output staged locally and published to the server
  s3 → s3         both
and prints the median seconds of each and its ratio to the baseline, and whether every run's
shards are byte-identical to the baseline's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_core", HERE / "bench_core.py")
bench_core = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(bench_core)  # type: ignore[union-attr]


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"


def run(input_path: str, output_path: str, workers: int) -> float:
    config = validate_pipeline({"input": {"path": input_path}, "output": {"path": output_path, "keep_rejected": True},
                                "workers": workers, "stages": bench_core.CORE})
    started = time.perf_counter()
    run_local(config, "bench", Reporter(quiet=True))
    return time.perf_counter() - started


def shards(location: str) -> dict[str, bytes]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(location)
    return {p.removeprefix(root): fs.cat_file(p) for p in sorted(fs.find(root)) if p.endswith(".parquet")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server, endpoint = start_server()
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "corpus"
            os.environ["CLEANMIX_STAGING"] = str(Path(tmp) / "staging")
            docs, nbytes = bench_core.build_corpus(folder, args.mb)
            import s3fs

            fs = s3fs.S3FileSystem()
            fs.mkdir("bench")
            started = time.perf_counter()
            fs.put([str(p) for p in sorted(folder.iterdir())], [f"bench/corpus/{p.name}" for p in sorted(folder.iterdir())])
            print(f"corpus: {docs:,} documents, {nbytes / 1e6:,.1f} MB of text, uploaded in {time.perf_counter() - started:.1f} s")
            places = {"local → local": (str(folder), Path(tmp) / "out-ll"), "s3 → local": ("s3://bench/corpus", Path(tmp) / "out-sl"),
                      "local → s3": (str(folder), "s3://bench/out-ls"), "s3 → s3": ("s3://bench/corpus", "s3://bench/out-ss")}
            seconds: dict[str, list[float]] = {name: [] for name in places}
            for attempt in range(args.repeat):
                for name, (source, out) in places.items():
                    target = f"{out}-{attempt}"
                    seconds[name].append(run(source, target, args.workers))
            base = statistics.median(seconds["local → local"])
            reference = shards(f"{places['local → local'][1]}-0")
            print(f"| input → output | median s ({args.repeat} runs, {args.workers} workers) | × local | shards identical |")
            print("|---|---|---|---|")
            for name, (_, out) in places.items():
                median = statistics.median(seconds[name])
                same = all(shards(f"{out}-{attempt}") == reference for attempt in range(args.repeat))
                print(f"| {name} | {median:.2f} ({', '.join(f'{s:.2f}' for s in seconds[name])}) | {median / base:.2f}× | {same} |")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
