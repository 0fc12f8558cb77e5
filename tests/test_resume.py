"""Crash a real run with SIGKILL at several points, re-run it, and get the uninterrupted output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from conftest import REPO, clean, write_pipeline, write_shards

STAGES = [{"type": "normalize", "fix_mojibake": True}, {"type": "length", "min_chars": 30}]


def corpus(folder: Path) -> Path:
    texts = [[f"shard {s} row {r} cafÃ© text  with\u200b noise " * (1 + r % 5) for r in range(400)] for s in range(24)]
    return write_shards(folder, texts)


def output_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def kill_when(cmd: list[str], out: Path, markers: int) -> bool:
    """Start the run; SIGKILL it once `markers` units are done. False if it finished first."""
    process = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None:
            if len(list((out / "_work").glob("seg-*/u*.json"))) >= markers:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return True
            for part in (out / "data").glob("part-*.parquet") if (out / "data").exists() else []:
                pq.read_metadata(part)  # a visible shard is always a whole shard
            time.sleep(0.002)
        return False
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_sigkill_then_rerun_gives_identical_output(tmp_path):
    source = corpus(tmp_path / "in")
    reference = tmp_path / "reference"
    clean("run", str(write_pipeline(tmp_path / "ref.yaml", source, reference, STAGES, workers=2)), "-q", check=True)

    out = tmp_path / "crashed"
    pipeline = write_pipeline(tmp_path / "p.yaml", source, out, STAGES, workers=2)
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(pipeline), "-q"]
    kills = [kill_when(cmd, out, markers) for markers in (1, 9, 17)]
    assert kills[0], "the run finished before its first unit was marked: make the corpus bigger"
    for path in out.rglob("part-*.parquet"):
        pq.read_metadata(path)
    resumed = clean("run", str(pipeline), "--workers", "1", check=True)
    assert "already done, resuming" in resumed.stderr
    assert output_files(out) == output_files(reference)
    a, b = (json.loads((d / "stats" / "summary.json").read_text()) for d in (out, reference))
    strip = lambda s: [{k: v for k, v in st.items() if k != "seconds"} for st in s["stages"]]  # noqa: E731
    assert strip(a) == strip(b) and a["input"] == b["input"] and a["output"] == b["output"]
