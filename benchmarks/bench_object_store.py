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

    .venv/bin/python benchmarks/bench_object_store.py --plan 300 [--latency-ms 20]

instead times planning (`clean validate`'s look at every input object: a Parquet footer, a size
and ETag) over 300 small objects, through a proxy that delays every request by the latency of a
real store, with the objects looked at one after another and by `SURVEY_THREADS` threads.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
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
sys.path.insert(0, str(HERE.parent / "tests"))
from servers import start_server  # noqa: E402


def latency_proxy(endpoint: str, latency: float) -> str:
    """A TCP proxy on 127.0.0.1 that holds every chunk a client sends for `latency` seconds: a
    store's round trip, on top of the local server's."""
    import asyncio
    import threading

    host, port = endpoint.removeprefix("http://").split(":")
    loop = asyncio.new_event_loop()

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float) -> None:
        while data := await source.read(2**16):
            if delay:
                await asyncio.sleep(delay)
            sink.write(data)
            await sink.drain()
        sink.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, upstream_writer, latency), pipe(upstream_reader, writer, 0.0), return_exceptions=True)

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def plan_times(objects: int, latency_ms: float, endpoint: str) -> None:
    import polars as pl
    import s3fs

    import cleanmix.pipelines.storage as storage
    from cleanmix.pipelines.output_folder import input_manifest
    from cleanmix.pipelines.shards import plan_input

    fs = s3fs.S3FileSystem()
    fs.mkdir("plan")
    with tempfile.TemporaryDirectory() as tmp:
        df = pl.read_parquet(HERE.parent / "sample" / "demo").head(20)
        names = [f"p{i:05d}.parquet" for i in range(objects)]
        for name in names:
            df.write_parquet(Path(tmp) / name)
        fs.put([str(Path(tmp) / n) for n in names], [f"plan/in/{n}" for n in names])
    os.environ["AWS_ENDPOINT_URL"] = latency_proxy(endpoint, latency_ms / 1000)
    s3fs.S3FileSystem.clear_instance_cache()
    config = validate_pipeline({"input": {"path": "s3://plan/in"}, "output": {"path": "unused"}}).input
    print("| objects | latency per request | at once | plan + input manifest, s |")
    print("|---|---|---|---|")
    for threads in (1, storage.LOOKS_AT_ONCE, 1, storage.LOOKS_AT_ONCE):
        saved, storage.LOOKS_AT_ONCE = storage.LOOKS_AT_ONCE, threads
        started = time.perf_counter()
        input_manifest(plan_input(config), None)
        print(f"| {objects} | {latency_ms:g} ms | {threads} | {time.perf_counter() - started:.2f} |")
        storage.LOOKS_AT_ONCE = saved


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
    parser.add_argument("--plan", type=int, help="instead: time planning over this many small objects")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    server, endpoint = start_server(["moto.server", "-H", "127.0.0.1", "-p", "{port}"], subprocess.DEVNULL)
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        if args.plan:
            plan_times(args.plan, args.latency_ms, endpoint)
            return
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
