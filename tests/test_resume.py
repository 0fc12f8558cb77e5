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
import pytest

from conftest import REPO, clean, write_pipeline, write_shards

DOCUMENT_STAGES = [{"type": "normalize", "fix_mojibake": True}, {"type": "length", "min_chars": 30}]
GLOBAL_STAGES = [
    {"type": "normalize", "fix_mojibake": True},
    {"type": "exact_dedup"},
    {"type": "length", "min_chars": 30},
    {"type": "minhash_dedup", "ngram": 3},
    {"type": "mix", "by": "docs", "weights": {"even": 0.7, "odd": 0.3}, "max_repeats": 3},
]


def text(shard: int, row: int) -> str:
    if row % 40 == 0:
        return f"the same words in every shard for row {row} " * 4  # exact duplicates across shards
    if row % 40 == 1:
        return f"near copy {shard % 3} of a page about the weather in spring and the river row {row} " * 3
    return f"shard {shard} row {row} cafÃ© text  with\u200b noise " * (1 + row % 5)


def corpus(folder: Path) -> Path:
    texts = [[text(s, r) for r in range(400)] for s in range(24)]
    sources = [["even" if r % 2 == 0 else "odd" for r in range(400)] for _ in range(24)]
    return write_shards(folder, texts, source=sources)


def output_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def kill_when(cmd: list[str], out: Path, markers: int, unit_markers: str = "_work/seg-*/u*.json") -> bool:
    """Start the run; SIGKILL it once `markers` units are done (`unit_markers` below `out`). False if it finished first."""
    process = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None:
            if len(list(out.glob(unit_markers))) >= markers:
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


COMPACTED = "_work/compact/**/part-*.json"
"""Markers of output shards written (one job per shard)."""


@pytest.mark.parametrize(("stages", "kill_points"), [(DOCUMENT_STAGES, (1, 9, 17)), (GLOBAL_STAGES, (1, 20, 30, 52, (4, COMPACTED)))],
                         ids=["document-stages", "dedup-and-mix"])
def test_sigkill_then_rerun_gives_identical_output(tmp_path, stages, kill_points):
    """Killed with 2 workers at several points (inside passes, between them, while writing the
    output shards), finished with 1."""
    source = corpus(tmp_path / "in")
    reference = tmp_path / "reference"
    top = {"workers": 2, "input": {"source_column": "source"}, "output": {"shard_rows": 250}}
    clean("run", str(write_pipeline(tmp_path / "ref.yaml", source, reference, stages, **top)), "-q", check=True)

    out = tmp_path / "crashed"
    pipeline = write_pipeline(tmp_path / "p.yaml", source, out, stages, **top)
    cmd = [sys.executable, "-m", "cleanmix.pipelines.cli", "run", str(pipeline), "-q"]
    kills = [kill_when(cmd, out, *(point if isinstance(point, tuple) else (point,))) for point in kill_points]
    assert all(kills), f"the run finished before a kill point ({kills}): make the corpus bigger"
    for path in out.rglob("part-*.parquet"):
        pq.read_metadata(path)
    resumed = clean("run", str(pipeline), "--workers", "1", check=True)
    assert "already done, resuming" in resumed.stderr
    assert output_files(out) == output_files(reference)
    a, b = (json.loads((d / "stats" / "summary.json").read_text()) for d in (out, reference))
    strip = lambda s: [{k: v for k, v in st.items() if k != "seconds"} for st in s["stages"]]  # noqa: E731
    assert strip(a) == strip(b) and a["input"] == b["input"] and a["output"] == b["output"]


def test_the_fingerprint_is_what_pipeline_yaml_says():
    """A run resumes only where its fingerprint matches the folder's: it must be the resolved pipeline as the
    written pipeline.yaml gives it back (how it was computed before it skipped the YAML round trip), for the
    presets and every stage type's defaults (floats, nulls, lists, nested models)."""
    import yaml

    from cleanmix.pipelines.config import fingerprint_of, load_pipeline, validate_pipeline
    from cleanmix.pipelines.errors import UserError
    from cleanmix.pipelines.registry import stage_type_names

    configs = [load_pipeline(path) for path in sorted((REPO / "pipelines" / "presets").glob("*.yaml"))]
    for name in stage_type_names():
        try:
            configs.append(validate_pipeline({"input": {"path": "in"}, "output": {"path": "out"}, "stages": [{"type": name}]}))
        except UserError:  # (a type with required parameters)
            continue
    assert len(configs) >= 20
    for config in configs:
        assert config.fingerprint() == fingerprint_of(yaml.safe_load(config.resolved_yaml()))


def test_what_a_pass_read_goes_once_it_is_done_and_a_resume_never_needs_it(tmp_path, monkeypatch):
    """Once the pass that applies a dedup's decisions is done, the rows it read, the dedup's scan and
    its decisions are removed (the scratch disk holds two passes' rows at most, not every pass's);
    the markers stay. A run stopped while writing the output resumes to the same bytes."""
    import cleanmix.pipelines.run as run
    from cleanmix.pipelines.config import validate_pipeline
    from cleanmix.pipelines.local import run_local
    from cleanmix.pipelines.progress import Reporter
    from conftest import crash_on_call

    source = corpus(tmp_path / "in")
    stages = [{"type": "length", "min_chars": 30}, {"type": "minhash_dedup", "ngram": 3}]

    def run_into(out: Path) -> None:
        config = {"input": {"path": str(source)}, "output": {"path": str(out), "shard_rows": 2000}, "workers": 1, "stages": stages}
        run_local(validate_pipeline(config), "p.yaml", Reporter(quiet=True))

    run_into(tmp_path / "reference")
    out = tmp_path / "stopped"
    monkeypatch.setattr(run, "compact", crash_on_call(run.compact, 2))
    with pytest.raises(KeyboardInterrupt):
        run_into(out)
    work = out / "_work"
    gone = lambda: (not list((work / "seg-0").glob("*.parquet")) and not (work / "scan-1").exists()  # noqa: E731
                    and not list(work.glob("global-*")) and not list(work.glob("*.removing")))
    deadline = time.monotonic() + 30
    while not gone() and time.monotonic() < deadline:  # (a thread removes the decide's scratch)
        time.sleep(0.05)
    assert gone()
    assert len(list((work / "seg-0").glob("u*.json"))) == len(list((work / "seg-1").glob("u*.json"))) == 24
    assert list((work / "seg-1").glob("*.parquet"))  # what the output is written from stays
    monkeypatch.undo()
    run_into(out)
    assert output_files(out) == output_files(tmp_path / "reference")
    assert not work.exists()
