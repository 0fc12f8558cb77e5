"""The output folder: claimed by one run at a time, and only what cleanmix wrote is ever deleted.

A folder is cleanmix's when it holds the marker `.cleanmix-output.json`, which only cleanmix
writes. The marker records the pipeline's fingerprint and the input manifest (every input file's
path, size and modification time), so a re-run knows whether the folder holds this run, a run
of another pipeline, or a run over an input that has changed since.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanmix.pipelines.config import PipelineConfig
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.shards import OUTPUT_MARKER, InputPlan, write_json, write_text
from cleanmix.pipelines.storage import inside, is_url, map_paths, version

MARKER = OUTPUT_MARKER
LOCK = ".cleanmix.lock"
WORK = "_work"
RESULTS = ("data", "rejected", "stats", "report.html")
"""What a finished run adds; removed before a resumed run writes them again."""
WRITTEN = (*RESULTS, WORK, "pipeline.yaml", MARKER)
"""Everything cleanmix writes into an output folder (besides the lock): all that --overwrite removes."""


def input_manifest(plan: InputPlan, limit: int | None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the run reads: every input file's size and modification time (an object's size and
    ETag), and the limit."""
    versions = list(map_paths(lambda path: version(path, options), plan.files))
    return {"files": {path if is_url(path) else str(Path(path).resolve()): v for path, v in zip(plan.files, versions)}, "limit": limit}


@dataclass
class Claim:
    """This run's hold on its output folder; `complete` when it already holds this run, finished."""

    out: Path
    complete: bool
    marker: dict[str, Any]

    def finished(self) -> None:
        write_json(self.out / MARKER, {**self.marker, "complete": True})

    def summary(self) -> dict[str, Any]:
        """The finished run's stats/summary.json."""
        return json.loads((self.out / "stats" / "summary.json").read_text())


def claim_output(location: str, config: PipelineConfig, plan: InputPlan, overwrite: bool, reporter: Reporter):  # noqa: ANN201
    """`claim` for output.path: a local folder, or an object-store URL (`output_store.claim_store`)."""
    if is_url(location):
        from cleanmix.pipelines.output_store import claim_store

        return claim_store(location, config, plan, overwrite, reporter)
    return claim(Path(location), config, plan, overwrite, reporter)


@contextmanager
def claim(out: Path, config: PipelineConfig, plan: InputPlan, overwrite: bool, reporter: Reporter) -> Iterator[Claim]:
    """Check, lock and prepare the output folder for this run; the lock is held until the run ends."""
    check_layout(out, plan)
    if out.exists() and not out.is_dir():
        raise UserError(f"output.path '{out}' exists and is not a folder.")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UserError(
            f"output.path '{out}' is not empty and was not written by cleanmix (it has no {MARKER}), so cleanmix "
            "will neither write into it nor delete anything in it, even with --overwrite. Choose a new or empty folder."
        )
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        yield _prepare(out, config, run_marker(config, plan), overwrite, reporter)


def run_marker(config: PipelineConfig, plan: InputPlan) -> dict[str, Any]:
    """What the output folder's marker records of this run: the pipeline's fingerprint and the input manifest."""
    return {"format": 1, "fingerprint": _digest(config.fingerprint()),
            "input": input_manifest(plan, config.limit, config.input.storage_options)}


def verdict(out: str, previous: dict[str, Any] | None, marker: dict[str, Any], overwrite: bool, reporter: Reporter) -> str:
    """What a run does with a folder whose marker is `previous`: `complete` (nothing to do),
    `resume` (keep its scratch files) or `fresh` (start over); or refuse."""
    if previous is None or overwrite:
        return "fresh"
    if previous.get("fingerprint") != marker["fingerprint"]:
        raise UserError(
            f"output.path '{out}' holds a run of a different pipeline ({out}/pipeline.yaml differs from this "
            "one). Choose another output folder, or pass --overwrite to replace it."
        )
    changed = changes(previous.get("input") or {}, marker["input"])
    if changed and previous.get("complete"):
        raise UserError(
            f"output.path '{out}' holds a finished run of this pipeline over a different input ({changed}). "
            "Choose another output folder, or pass --overwrite to replace it."
        )
    if changed:
        reporter.log(f"the input changed since the interrupted run ({changed}): starting over")
        return "fresh"
    return "complete" if previous.get("complete") else "resume"


def _prepare(out: Path, config: PipelineConfig, marker: dict[str, Any], overwrite: bool, reporter: Reporter) -> Claim:
    previous = read_marker(out)
    found = verdict(str(out), previous, marker, overwrite, reporter)
    if found == "complete":
        return Claim(out, True, previous)  # type: ignore[arg-type]
    if found == "resume":
        _remove(out, RESULTS)  # a crash while writing them leaves partial results and temporary files
        return Claim(out, False, marker)
    _remove(out, WRITTEN)
    write_json(out / MARKER, {**marker, "complete": False})
    write_text(out / "pipeline.yaml", config.resolved_yaml())
    (out / WORK).mkdir()
    return Claim(out, False, marker)


def check_layout(out: Path | str, plan: InputPlan) -> None:
    """Refuse an output folder that holds input files, or that lies inside a folder read as input."""
    for path in plan.files:
        if inside(path, str(out)):
            raise UserError(
                f"input file {path} is inside the output folder '{out}': a run replaces what is there, so it could "
                "lose its own input. Choose an output folder that holds no input."
            )
    for root in plan.roots:
        if inside(str(out), root):
            raise UserError(
                f"output.path '{out}' is inside the input folder '{root}': the next run would read this run's output "
                "as input. Choose an output folder outside the input."
            )


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    with open(out / LOCK, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise UserError(
                f"another `clean run` (pid {holder}) is writing into '{out}' right now. Wait for it to finish, "
                "or choose another output folder."
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_marker(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def changes(before: dict[str, Any], now: dict[str, Any]) -> str:
    """What differs between two input manifests, in a few words; empty when nothing does."""
    if before.get("limit") != now.get("limit"):
        return f"limit {before.get('limit')} → {now.get('limit')}"
    old, new = before.get("files") or {}, now.get("files") or {}
    kinds = [("added", sorted(set(new) - set(old))), ("removed", sorted(set(old) - set(new))),
             ("modified", sorted(p for p in set(old) & set(new) if old[p] != new[p]))]
    return "; ".join(f"{kind}: {', '.join(paths[:3])}" + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
                     for kind, paths in kinds if paths)


def _remove(out: Path, names: tuple[str, ...]) -> None:
    for name in names:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
