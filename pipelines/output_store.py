"""An output folder in an object store (`s3://bucket/prefix`): claimed, staged locally, published.

An object store has no rename and no flock, but every PUT is atomic: an object is whole or absent.
So a run into a URL works in a local staging folder (`storage.staging_folder`: scratch files and
the output, with the local folder's rename-based commits and resume), then publishes the output:
every shard, the report and stats/<stage>.json, then `stats/summary.json`, then the marker, marked
complete. A reader sees a finished run only once summary.json exists (`clean stats`, `clean
report`, and cleanmix reading the folder as input, which also requires the complete marker), and
never a half-written object. A re-run after a crash, `kill -9` included, takes over the staging
folder: finished units are kept, a half-done publication is removed (only the names cleanmix
writes) and done again, byte for byte.

One run at a time holds the lock object `.cleanmix.lock`, created with a conditional PUT
(`If-None-Match: *`) that fails when it exists. A lock left by a run killed on this machine (its
pid is gone) is taken over; one held from another machine is reported with its host and pid.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanmix.pipelines.config import PipelineConfig
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.output_folder import LOCK, MARKER, RESULTS, WRITTEN, Claim, check_layout, claim, read_marker, run_marker, verdict
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.shards import InputPlan, json_text
from cleanmix.pipelines.storage import check_bucket, staging_folder, store_errors

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

SUMMARY = "stats/summary.json"


class StoreFolder:
    """An output folder in an object store: the objects under `key/`."""

    def __init__(self, fs: AbstractFileSystem, key: str, url: str) -> None:
        self.fs, self.key, self.url = fs, key.rstrip("/"), url.rstrip("/")

    def names(self) -> list[str]:
        """The folder's entries, one level down."""
        self.fs.invalidate_cache()
        try:
            return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.key, detail=False))
        except FileNotFoundError:
            return []

    def read_json(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.fs.cat_file(f"{self.key}/{name}"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, name: str, data: bytes) -> None:
        """One object, whole or not at all (a PUT)."""
        self.fs.pipe_file(f"{self.key}/{name}", data)

    def write_json(self, name: str, data: Any) -> None:
        self.write(name, json_text(data).encode())

    def remove(self, names: tuple[str, ...]) -> None:
        """Only the named entries (what cleanmix writes): objects of the user's stay."""
        present = set(self.names())
        for name in names:
            if name in present:
                self.fs.rm(f"{self.key}/{name}", recursive=True)
        self.fs.invalidate_cache()

    def publish(self, staging: Path) -> None:
        """Upload a finished run's output, summary.json after every other file, the marker last."""
        files = sorted(p for name in RESULTS if (staging / name).exists()
                       for p in ([staging / name] if (staging / name).is_file() else (staging / name).rglob("*"))
                       if p.is_file() and not p.name.startswith("."))
        summary = staging / SUMMARY
        rest = [p for p in files if p != summary]
        if rest:
            self.fs.put([str(p) for p in rest], [f"{self.key}/{p.relative_to(staging).as_posix()}" for p in rest])
        self.fs.put_file(str(summary), f"{self.key}/{SUMMARY}")
        self.write(MARKER, (staging / MARKER).read_bytes())

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold `.cleanmix.lock` while the run goes: created only where absent (a conditional PUT)."""
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        path = f"{self.key}/{LOCK}"
        for attempt in range(2):
            try:
                _create(self.fs, path, json.dumps(holder).encode())
                break
            except FileExistsError:
                other = self.read_json(LOCK) or {}
                if attempt == 0 and other.get("host") == holder["host"] and not _alive(other.get("pid")):
                    self.fs.rm(path)  # left by a run killed on this machine
                    continue
                raise UserError(
                    f"another `clean run` (pid {other.get('pid', '?')} on {other.get('host', '?')}, since "
                    f"{other.get('since', '?')}) is writing into '{self.url}', or died there without removing its lock. "
                    f"Wait for it to finish; if it no longer runs, delete {self.url}/{LOCK} and run again."
                ) from None
        try:
            yield
        finally:
            with suppress(OSError):  # the next run on this machine takes a dead run's lock over
                self.fs.rm(path)


def _create(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` to `path` only if no object is there: a conditional PUT where the filesystem
    has one (s3fs: `If-None-Match: *`); elsewhere a check, then a PUT (best effort)."""
    try:
        fs.pipe_file(path, data, mode="create")
    except (TypeError, NotImplementedError):
        if fs.exists(path):
            raise FileExistsError(path) from None
        fs.pipe_file(path, data)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class StoreClaim(Claim):
    """A claim on an object-store folder: the run writes into `out`, the staging folder, and
    `finished` publishes it."""

    folder: StoreFolder | None = None
    staged: Claim | None = None

    def finished(self) -> None:
        assert self.folder is not None and self.staged is not None
        self.staged.finished()
        with store_errors(self.folder.url, "output.path"):
            self.folder.publish(self.out)
        shutil.rmtree(self.out, ignore_errors=True)

    def summary(self) -> dict[str, Any]:
        assert self.folder is not None
        return self.folder.read_json(SUMMARY) or {}


@contextmanager
def claim_store(url: str, config: PipelineConfig, plan: InputPlan, overwrite: bool, reporter: Reporter) -> Iterator[Claim]:
    """Check, lock and prepare an object-store output folder, and the local folder that stages it."""
    url = url.rstrip("/")
    check_layout(url, plan)
    fs, key = check_bucket(url, config.output.storage_options, "output.path")
    folder = StoreFolder(fs, key, url)
    with store_errors(url, "output.path"):
        names = [name for name in folder.names() if name != LOCK]  # a lock alone: a run that died starting
    if names and MARKER not in names:
        raise UserError(
            f"output.path '{url}' is not empty and was not written by cleanmix (it has no {MARKER}), so cleanmix "
            "will neither write into it nor delete anything in it, even with --overwrite. Choose a new or empty prefix."
        )
    with ExitStack() as stack:
        with store_errors(url, "output.path"):
            stack.enter_context(folder.locked())
        with store_errors(url, "output.path"):
            marker = run_marker(config, plan)
            previous = folder.read_json(MARKER)
            found = verdict(url, previous, marker, overwrite, reporter)
            if found == "resume":
                folder.remove(RESULTS)  # a publication cut short
            elif found == "fresh":
                folder.remove(WRITTEN)
                folder.write_json(MARKER, {**marker, "complete": False})
                folder.write("pipeline.yaml", config.resolved_yaml().encode())
        staging = staging_folder(url)
        if found == "complete":
            yield StoreClaim(staging, True, previous or {}, folder)
            return
        local = read_marker(staging) or {}
        restart = found == "fresh" or any(local.get(k) != marker[k] for k in ("fingerprint", "input"))
        if restart:
            shutil.rmtree(staging, ignore_errors=True)
        with claim(staging, config, plan, restart, reporter) as staged:
            held = StoreClaim(staging, False, marker, folder, staged)
            if staged.complete:  # the run finished, its publication did not
                reporter.log(f"publishing the finished run staged in {staging}")
                held.finished()
                yield StoreClaim(staging, True, marker, folder)
            else:
                yield held


@contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A finished run's stats/ and pipeline.yaml, copied from the store into a temporary folder:
    what `clean stats` and `clean report` read."""
    url = url.rstrip("/")
    fs, key = check_bucket(url, None, "output folder")
    folder = StoreFolder(fs, key, url)
    with tempfile.TemporaryDirectory() as tmp, store_errors(url, "output folder"):
        fs.invalidate_cache()
        remote = list(fs.find(f"{folder.key}/stats")) + [p for p in (f"{folder.key}/pipeline.yaml",) if fs.isfile(p)]
        if f"{folder.key}/{SUMMARY}" not in remote:
            raise UserError(
                f"'{url}' is not a finished cleanmix output folder: it has no {SUMMARY} (clean run publishes that object last, "
                "so the run has not finished, or never ran there). Re-running an interrupted run finishes it."
            )
        local = [Path(tmp) / p.removeprefix(folder.key + "/") for p in remote]
        for path in local:
            path.parent.mkdir(parents=True, exist_ok=True)
        fs.get(remote, [str(p) for p in local])
        yield Path(tmp)


def publish_report(url: str, report: Path) -> str:
    """`clean report` on a store: the page, rewritten from the run's stats, uploaded in place of the old one."""
    url = url.rstrip("/")
    fs, key = check_bucket(url, None, "output folder")
    with store_errors(url, "output folder"):
        fs.put_file(str(report), f"{key.rstrip('/')}/report.html")
    return f"{url}/report.html"
