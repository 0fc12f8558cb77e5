"""Many tiny input files against the same documents in one file: the cost of a unit of work.

Writes 10,000 Parquet files of 2 documents each and one file holding the same 20,000 documents,
runs `clean run` (normalize, length; 2 workers) on each, and prints both wall times and their
ratio. Small files are grouped into units of at least 256 rows, so the ratio stays small.

    .venv/bin/python benchmarks/bench_tiny_files.py [--files 10000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]


def run(root: Path, source: Path, name: str) -> float:
    pipeline = root / f"{name}.yaml"
    pipeline.write_text(yaml.safe_dump({
        "input": {"path": str(source)}, "output": {"path": str(root / f"out-{name}")}, "workers": 2,
        "stages": [{"type": "normalize"}, {"type": "length", "min_chars": 5}],
    }))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cleanmix.pipelines.cli", "run", str(pipeline), "-q"], cwd=REPO, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cleanmix-tiny-") as tmp:
        root = Path(tmp)
        (root / "tiny").mkdir()
        (root / "one").mkdir()
        texts = [f"file {i} document {r}: a few words of text" for i in range(args.files) for r in range(2)]
        for i in range(args.files):
            pq.write_table(pa.table({"text": texts[2 * i: 2 * i + 2]}), root / "tiny" / f"f{i:05d}.parquet")
        pq.write_table(pa.table({"text": texts}), root / "one" / "all.parquet")
        one, tiny = run(root, root / "one", "one"), run(root, root / "tiny", "tiny")
        print(f"{len(texts):,} documents: one file {one:.1f} s, {args.files:,} files {tiny:.1f} s, ratio {tiny / one:.1f}x")


if __name__ == "__main__":
    main()
