"""A user's data is never lost: the output folder, resume over a changed input, crashes, signals.

Every test runs the real `clean run` (a subprocess) the way a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from conftest import REPO, clean, write_pipeline, write_shards

STAGES = [{"type": "normalize"}, {"type": "length", "min_chars": 10}, {"type": "exact_dedup"}]


def small_corpus(folder: Path, shards: int = 2, rows: int = 100) -> Path:
    return write_shards(folder, [[f"document {s}-{r} with some words in it" for r in range(rows)] for s in range(shards)])


def big_corpus(folder: Path) -> Path:
    """Enough text that a 2-worker run lasts a few seconds: time to signal it mid-run."""
    return write_shards(folder, [[f"shard {s} row {r} " + "some words of a web page, " * (20 + r % 30)
                                  for r in range(3000)] for s in range(8)])


SLOW_STAGES = [{"type": "normalize"}, {"type": "gopher_repetition"}, {"type": "gopher_quality"}, {"type": "exact_dedup"}]


def data_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}


def start(pipeline: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cleanmix.pipelines.cli", "run", str(pipeline), "-q", *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(c) for c in text.split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.02)


# the output folder ------------------------------------------------------------------------------

def test_overwrite_never_deletes_a_folder_cleanmix_did_not_write(tmp_path):
    """A project folder holding a pipeline.yaml, other data and notes: refused, even with --overwrite."""
    project = tmp_path / "project"
    source = small_corpus(tmp_path / "raw")
    small_corpus(project / "old-data")
    (project / "notes.txt").write_text("my notes")
    pipeline = write_pipeline(project / "pipeline.yaml", source, project, STAGES)
    before = sorted(str(p) for p in project.rglob("*"))
    for args in ((), ("--overwrite",)):
        result = clean("run", str(pipeline), *args)
        assert result.returncode == 2, result.stderr
        assert "was not written by cleanmix" in result.stderr and "Traceback" not in result.stderr
    result = clean("run", str(pipeline), "--output", ".", "--overwrite", cwd=project)
    assert result.returncode == 2 and "was not written by cleanmix" in result.stderr
    assert sorted(str(p) for p in project.rglob("*")) == before
    assert (project / "notes.txt").read_text() == "my notes"


def test_overwrite_removes_only_what_cleanmix_wrote(tmp_path):
    source = small_corpus(tmp_path / "in")
    out = tmp_path / "out"
    clean("run", str(write_pipeline(tmp_path / "a.yaml", source, out, STAGES)), "-q", check=True)
    (out / "README-mine.txt").write_text("the user's own file")
    other = write_pipeline(tmp_path / "b.yaml", source, out, STAGES[:2])
    refused = clean("run", str(other), "-q")
    assert refused.returncode == 2 and "different pipeline" in refused.stderr
    clean("run", str(other), "-q", "--overwrite", check=True)
    assert (out / "README-mine.txt").read_text() == "the user's own file"
    assert [s["name"] for s in json.loads((out / "stats" / "summary.json").read_text())["stages"]] == ["normalize", "length"]
    assert not (out / "rejected" / "exact_dedup").exists()


def test_input_inside_the_output_folder_is_refused_before_anything_is_deleted(tmp_path):
    """A second pipeline reading out/data and writing into out, with --overwrite: the input survives."""
    source = small_corpus(tmp_path / "in")
    out = tmp_path / "out"
    clean("run", str(write_pipeline(tmp_path / "a.yaml", source, out, STAGES)), "-q", check=True)
    before = data_files(out)
    second = write_pipeline(tmp_path / "b.yaml", out / "data", out, STAGES[:1])
    result = clean("run", str(second), "-q", "--overwrite")
    assert result.returncode == 2 and "is inside the output folder" in result.stderr, result.stderr
    assert data_files(out) == before


def test_output_folder_inside_the_input_folder_is_refused(tmp_path):
    source = small_corpus(tmp_path / "in")
    result = clean("run", str(write_pipeline(tmp_path / "p.yaml", source, source / "clean", STAGES)), "-q")
    assert result.returncode == 2 and "is inside the input folder" in result.stderr, result.stderr
    assert not (source / "clean").exists()


# resume -----------------------------------------------------------------------------------------

def test_resume_after_the_input_changed_never_mixes_two_inputs(tmp_path):
    """A corrupt shard stops the run; the user removes it and re-runs: the output is that of a fresh
    run over the shards that are left (no phantom duplicates, no missing documents)."""
    source = small_corpus(tmp_path / "in", shards=3)
    broken = bytearray((source / "shard-001.parquet").read_bytes())
    broken[100:400] = b"\x00" * 300  # column data destroyed, footer intact: found only when read
    (source / "shard-001.parquet").write_bytes(bytes(broken))
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", source, out, STAGES, workers=1)
    failed = clean("run", str(pipeline), "-q")
    assert failed.returncode == 2 and "shard-001.parquet could not be read" in failed.stderr
    (source / "shard-001.parquet").unlink()
    resumed = clean("run", str(pipeline), check=True)
    assert "the input changed since the interrupted run (removed:" in resumed.stderr
    fresh = tmp_path / "fresh"
    clean("run", str(write_pipeline(tmp_path / "f.yaml", source, fresh, STAGES, workers=1)), "-q", check=True)
    assert data_files(out) == data_files(fresh)
    summary = json.loads((out / "stats" / "summary.json").read_text())
    assert summary["input"]["docs"] == 200 and summary["stages"][2]["docs_in"] == 200
    assert summary["stages"][2]["removed"] == {}


def test_a_finished_run_over_another_input_is_not_taken_for_this_one(tmp_path):
    source = small_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", source, out, STAGES)
    clean("run", str(pipeline), "-q", check=True)
    small_corpus(tmp_path / "in", shards=3)  # a shard added
    result = clean("run", str(pipeline), "-q")
    assert result.returncode == 2 and "over a different input (added:" in result.stderr, result.stderr
    clean("run", str(pipeline), "-q", "--overwrite", check=True)
    assert json.loads((out / "stats" / "summary.json").read_text())["input"]["docs"] == 300


def test_rerun_after_a_crash_while_writing_the_output_removes_its_temporary_files(tmp_path):
    """The state `kill -9` leaves during the final compaction: half a shard under a temporary name."""
    source = small_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", source, out, STAGES)
    clean("run", str(pipeline), "-q", check=True)
    reference = data_files(out)
    marker = json.loads((out / ".cleanmix-output.json").read_text())
    (out / ".cleanmix-output.json").write_text(json.dumps({**marker, "complete": False}))
    (out / "stats" / "summary.json").unlink()
    (out / "data" / ".part-00001.parquet.tmp-4242").write_bytes(b"PAR1 half a shard")
    (out / "rejected" / "length").mkdir(parents=True, exist_ok=True)
    (out / "rejected" / "length" / ".part-00000.parquet.tmp-4242").write_bytes(b"PAR1")
    clean("run", str(pipeline), "-q", check=True)
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(Path(k).name for k in reference)
    assert not list(out.rglob("*.tmp-*"))
    assert data_files(out) == reference


# processes and signals --------------------------------------------------------------------------

def test_workers_die_with_a_killed_run(tmp_path):
    pipeline = write_pipeline(tmp_path / "p.yaml", big_corpus(tmp_path / "in"), tmp_path / "out", SLOW_STAGES, workers=2)
    process = start(pipeline)
    try:
        wait_for(lambda: len(children(process.pid)) >= 2 and list((tmp_path / "out" / "_work").glob("seg-0/*")))
        workers = children(process.pid)
        process.send_signal(signal.SIGKILL)  # the main process only, as the OOM killer or `kill -9 PID` would
        process.wait()
        wait_for(lambda: not any(alive(pid) for pid in workers), timeout=15)
    finally:
        os.killpg(process.pid, signal.SIGKILL) if alive(process.pid) else None


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", big_corpus(tmp_path / "in"), out, SLOW_STAGES, workers=1)
    first = start(pipeline)
    try:
        wait_for(lambda: (out / ".cleanmix.lock").exists() and (out / ".cleanmix.lock").read_text().strip())
        second = clean("run", str(pipeline), "-q")
        assert second.returncode == 2, second.stderr
        assert f"another `clean run` (pid {first.pid}) is writing into" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None, "the first run goes on"
    finally:
        os.killpg(first.pid, signal.SIGKILL) if first.poll() is None else None


def test_ctrl_c_while_the_workers_start_prints_no_traceback(tmp_path):
    """A Ctrl-C that reaches the workers while they still import (a slow disk, a loaded machine: here a
    sitecustomize that makes a worker's start-up take 3 s): they ignore it from their first instruction, and
    the run stops with its one paragraph."""
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text("import sys, time\nif '--multiprocessing-fork' in sys.argv:\n    time.sleep(3)\n")
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", big_corpus(tmp_path / "in"), out, SLOW_STAGES, workers=2)
    process = subprocess.Popen([sys.executable, "-m", "cleanmix.pipelines.cli", "run", str(pipeline), "-q"], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": f"{slow}{os.pathsep}{REPO}"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for(lambda: (out / "_work").exists())
    time.sleep(1.0)  # the workers are in their start-up
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().startswith("interrupted: the run stopped.")


def test_ctrl_c_exits_130_with_one_paragraph_and_resumes(tmp_path):
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", big_corpus(tmp_path / "in"), out, SLOW_STAGES, workers=2)
    process = start(pipeline)
    wait_for(lambda: len(list((out / "_work").glob("seg-0/*.json"))) >= 1)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal sends to the whole group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "resumes" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    resumed = clean("run", str(pipeline), check=True)
    assert "already done, resuming" in resumed.stderr


def test_a_worker_killed_by_the_os_gives_one_paragraph(tmp_path):
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", big_corpus(tmp_path / "in"), out, SLOW_STAGES, workers=2)
    process = start(pipeline)
    wait_for(lambda: len(children(process.pid)) >= 2 and list((out / "_work").glob("seg-0/*")))
    workers = [pid for pid in children(process.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    os.kill(workers[0], signal.SIGKILL)  # as the out-of-memory killer would
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert "a worker process died" in stderr and "out-of-memory" in stderr and "resumes" in stderr
    assert "Traceback" not in stderr, stderr


def test_a_full_disk_gives_one_paragraph_with_the_space_needed(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True).returncode:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot mount a small tmpfs to fill up (needs root)")
        pytest.skip("cannot mount a small tmpfs to fill up (needs root)")
    try:
        source = small_corpus(tmp_path / "in", shards=4, rows=3000)
        pipeline = write_pipeline(tmp_path / "p.yaml", source, disk / "out", STAGES, workers=1)
        result = clean("run", str(pipeline), "-q")
        assert result.returncode == 1, result.stderr
        assert "the disk is full" in result.stderr and "A run needs free space of about" in result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_pipeline_files_and_a_stale_lock_do_not_block_a_run(tmp_path):
    """The lock is the kernel's (flock): a run killed while holding it does not block the next one."""
    source = small_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", source, out, STAGES)
    clean("run", str(pipeline), "-q", check=True)
    (out / ".cleanmix.lock").write_text("99999999")
    shutil.rmtree(out / "stats")
    marker = json.loads((out / ".cleanmix-output.json").read_text())
    (out / ".cleanmix-output.json").write_text(json.dumps({**marker, "complete": False}))
    clean("run", str(pipeline), "-q", check=True)
    assert pl.read_parquet(out / "data").height == 200
