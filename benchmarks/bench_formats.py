"""Input readers' speed: cleanmix's JSON Lines and WARC readers (`read_unit`, everything a worker does
before the first stage) against simple baselines, on generated files, one core.

    POLARS_MAX_THREADS=1 .venv/bin/python benchmarks/bench_formats.py [folder]   → a table; see formats.md
"""

from __future__ import annotations

import gzip
import io
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import zstandard

from cleanmix.pipelines.config import InputConfig
from cleanmix.pipelines.shards import plan_input, read_unit

WORDS = "the quick brown fox jumps over a lazy dog while 数据 清洗 tests run and rivers flow".split()


def make_jsonl(folder: Path, docs: int = 100_000) -> bytes:
    rng = random.Random(0)
    lines = [json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 400))),
                         "meta": {"url": f"https://example.org/{i}", "n": i}}, ensure_ascii=False) for i in range(docs)]
    raw = ("\n".join(lines) + "\n").encode()
    for name, data in (("plain/a.jsonl", raw), ("gz/a.jsonl.gz", gzip.compress(raw, 6)),
                       ("zst/a.jsonl.zst", zstandard.ZstdCompressor(level=3).compress(raw))):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return raw


def make_warc(path: Path, pages: int = 20_000) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        writer = WARCWriter(file, gzip=True)
        for i in range(pages):
            url = f"https://example.org/{i}"
            writer.write_record(writer.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
            html = f"<html><head><title>{i}</title></head><body>{f'<p>paragraph {i} about rivers. </p>' * 50}</body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(html.encode()), http_headers=headers))


def timed(name: str, nbytes: int, run: Callable[[], int]) -> None:
    started = time.perf_counter()
    docs = run()
    seconds = time.perf_counter() - started
    print(f"| {name} | {docs:,} | {seconds:.2f} | {docs / seconds:,.0f} | {nbytes / seconds / 1e6:,.0f} |")


def cleanmix(path: Path) -> Callable[[], int]:
    config = InputConfig(path=str(path))
    return lambda: sum(df.height for unit in plan_input(config).units for df in read_unit(unit, config))


def json_loads(path: Path) -> int:
    with open(path, "rb") as file:
        return pa.Table.from_pylist([json.loads(line) for line in file]).num_rows


def fastwarc_alone(path: Path) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(path, "rb") as file:
        return sum(1 for record in ArchiveIterator(file, record_types=WarcRecordType.response) if record.reader.read())


def warcio_alone(path: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as file:
        return sum(1 for record in ArchiveIterator(file) if record.rec_type == "response" and record.content_stream().read())


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    raw = make_jsonl(folder)
    print(f"JSON Lines: {len(raw) / 1e6:.0f} MB uncompressed; MB/s of uncompressed JSON\n")
    print("| reader | docs | s | docs/s | MB/s |\n|---|---|---|---|---|")
    for name in ("plain", "gz", "zst"):
        timed(f"cleanmix, {name}", len(raw), cleanmix(folder / name))
    timed("json.loads per line + Arrow table (baseline)", len(raw), lambda: json_loads(folder / "plain" / "a.jsonl"))
    timed("polars.read_ndjson alone (no line numbers, no checks)", len(raw), lambda: pl.read_ndjson(folder / "plain" / "a.jsonl").height)
    warc = folder / "warc" / "crawl.warc.gz"
    make_warc(warc)
    html = 20_000 * len(f"<html><head><title>{0}</title></head><body>{'<p>paragraph 0 about rivers. </p>' * 50}</body></html>")
    print(f"\nWARC: {warc.stat().st_size / 1e6:.0f} MB .warc.gz, 20,000 HTML responses and 20,000 requests; MB/s of HTML\n")
    print("| reader | docs | s | docs/s | MB/s |\n|---|---|---|---|---|")
    timed("cleanmix (FastWARC over Python gzip)", html, cleanmix(warc))
    timed("FastWARC alone, its own gzip", html, lambda: fastwarc_alone(warc))
    timed("warcio alone", html, lambda: warcio_alone(warc))


if __name__ == "__main__":
    main()
