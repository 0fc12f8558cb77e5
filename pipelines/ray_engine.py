"""The Ray engine: the same pipeline file on a Ray cluster, through Ray Data.

Each pass (a segment, see `local.plan_segments`) is one streaming Ray Data job:
  read   `read_datasource`, one read task per unit: the first pass reads the planned slices of the
         input files (so `_cm_order` and generated ids are the local engine's; `read_parquet` cannot
         say which row of which file a row is), later passes the unit's pieces from the pass before;
  map    `map_batches` over Arrow blocks, fused with the read into one task per unit, running the
         stages with the local engine's code (`local.run_stages`); the stages are built once per
         Ray worker process, which Ray reuses across tasks and passes (so a model loads once);
  write  `write_datasink`: kept rows become pieces `seg-K/uNNNNN-RRRRRRRRRRRRR-NNNNNNNNNN.parquet`
         (unit, first input row, rank), each written under a temporary name and renamed.
Each map call also writes, per unit, the removed rows, the next global stage's scan and a stats
record, keyed by the same (unit, first input row). After a pass the driver merges each unit's
records in row order into the local engine's marker (`seg-K/uNNNNN.json`), so the stats merge in
the same order as the local engine's. Resume is per unit (= per read task): a re-run keeps every
unit whose records and pieces add up and redoes the others. A global stage's `decide` runs its
parallel steps (`ctx.map`: e.g. MinHash band keys hash-partitioned by key, each partition bucketed
vectorised) as Ray tasks. The last step is the local engine's compaction, run as Ray tasks, so the
output shards are the same bytes as a local run's.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cleanmix.pipelines.config import PipelineConfig
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.local import (
    WORK,
    InputUnreadable,
    Job,
    _batches as input_batches,
    _absorb,
    _decide,
    _describe,
    finish_run,
    plan_segments,
    prepare_output,
    run_stages,
    scan_summary,
    skipped,
    unit_file,
)
from cleanmix.pipelines.progress import Reporter, Task
from cleanmix.pipelines.shards import ORDER, ORDER_SHIFT, Unit, plan_input, write_json, write_parquet
from cleanmix.pipelines.stage import Context
from cleanmix.pipelines.stats import StageStats, text_bytes

INSTALL_HINT = "pip install 'cleanmix[ray]' (or: pip install 'ray[data]')"
ROW_MASK = (1 << ORDER_SHIFT) - 1
PIECE = re.compile(r"u(\d{5,})-\d{13}(?:-\d{10})?\.(parquet|json)$")
UNIT = "_cm_unit"
SLOT = "_cm_slot"
"""Kept rows carry their piece's (unit, first input row) and their rank in it to the sink: a global
stage (mix) may rewrite `_cm_order`, so the sink cannot read the unit from it."""
RANK = "_cm_rank"


def import_ray() -> Any:
    """Ray is an optional extra: without it, say how to install it instead of a traceback."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError(f"--engine ray needs Ray Data, which is not installed. Install it with {INSTALL_HINT}.") from None
    return ray


def run_ray(config: PipelineConfig, pipeline: str, reporter: Reporter, overwrite: bool = False,
            address: str | None = None) -> dict[str, Any]:
    """Run the pipeline on Ray (a new local instance, or the cluster at `address`); returns the summary."""
    ray = import_ray()
    plan = plan_input(config.input, config.limit, config.input_columns())
    out = Path(config.output.path)
    started_here = _connect(ray, address, reporter)
    try:
        if prepare_output(out, config, overwrite):
            reporter.log(f"{out} already holds this run, complete: nothing to do (--overwrite runs it again).")
            return json.loads((out / "stats" / "summary.json").read_text())
        return _run(ray, config, pipeline, plan, out, reporter)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str | None, reporter: Reporter) -> bool:
    """Join the cluster at `address`, start a local Ray, or use the one this process already joined.

    Returns True when this call started the connection (and the caller shuts it down)."""
    _quiet(ray)
    if ray.is_initialized():
        return False
    reporter.log(f"connecting to Ray at {address}" if address else "starting a local Ray instance")
    options: dict[str, Any] = {"address": address} if address else {"include_dashboard": False}
    try:
        ray.init(**options, logging_level="ERROR", log_to_driver=False, runtime_env={"env_vars": {"POLARS_MAX_THREADS": "1"}})
    except ConnectionError as error:
        raise UserError(
            f"--address {address}: no Ray cluster answered ({one_line(error)}). Start one with "
            "`ray start --head` (then --address auto), give the head's HOST:PORT, or leave --address out to start a local Ray."
        ) from None
    return True


def _quiet(ray: Any) -> None:
    """Ray Data's own progress bars and log lines are kept quiet: our reporter shows the passes."""
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # task errors still reach us as exceptions
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.execution_options.preserve_order = True  # pieces are written in input order


def _run(ray: Any, config: PipelineConfig, pipeline: str, plan: Any, out: Path, reporter: Reporter) -> dict[str, Any]:
    work = out.resolve() / WORK
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    workers = config.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    units = [replace(u, path=str(Path(u.path).resolve())) for u in plan.units]
    segments = plan_segments(config)
    stats = {stage.label: StageStats(stage.label, stage.type) for stage in config.stages}
    details: dict[str, dict[str, Any]] = {}
    markers: dict[int, dict[str, Any]] = {}
    kept_rows: dict[int, dict[int, int]] = {}
    ray_map = RayMap(ray, workers)
    for seg in segments:
        if seg.head:
            details[seg.head.label] = _decide(seg, work, ray_map, config, reporter, stats[seg.head.label])  # type: ignore[arg-type]
        job = Job(seg, config.input, work, config.output.keep_rejected, config.seed, workers)
        live = [u for u in units if "skipped" not in markers.get(u.index, {})]
        expected = {u.index: u.rows if seg.reads is None else kept_rows[seg.reads][u.index] for u in live}
        done = _resume(job, live, expected)
        todo = [u for u in live if u.index not in done]
        with reporter.task(_describe(seg), total_units=len(live), done_units=len(done)) as task:
            progress = _Progress(job, {u.index: expected[u.index] for u in todo}, task)
            if todo:
                progress.start()
                try:
                    _run_pass(ray, job, todo, workers)
                finally:
                    progress.stop.set()
                    progress.join()
            files = _unit_files(job)
            for unit in todo:
                marker = _seal(job, unit.index, files[unit.index])
                done[unit.index] = marker
                if unit.index not in progress.finished:
                    task.advance(marker.get("docs", 0), marker.get("bytes", 0))
        kept_rows[seg.index] = {i: m.get("kept", 0) for i, m in done.items()}
        for index in sorted(done):
            _absorb(stats, markers, done[index], seg)
    reporter.log("writing output shards")
    absolute = config.model_copy(update={"output": config.output.model_copy(update={"path": str(out.resolve())})})
    return finish_run(absolute, pipeline, plan, segments, stats, details, markers, started, clock, ray_map, pieces_of)  # type: ignore[arg-type]


class _Progress(threading.Thread):
    """Ray's progress folded into ours: every second, count the units whose records add up."""

    def __init__(self, job: Job, expected: dict[int, int], task: Task) -> None:
        super().__init__(daemon=True)
        self.job, self.expected, self.task = job, expected, task
        self.stop = threading.Event()
        self.finished: set[int] = set()
        self.seen: set[str] = set()
        self.docs: dict[int, int] = defaultdict(int)
        self.bytes: dict[int, int] = defaultdict(int)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.poll()

    def poll(self) -> None:
        folder = _records(self.job)
        for unit, name in _listing(folder, "json"):
            if name in self.seen or unit not in self.expected:
                continue
            self.seen.add(name)
            record = json.loads((folder / name).read_text())
            self.docs[unit] += record["docs"]
            self.bytes[unit] += record["bytes"]
            if unit not in self.finished and self.docs[unit] >= self.expected[unit]:
                self.finished.add(unit)
                self.task.advance(self.docs[unit], self.bytes[unit])


@dataclass(frozen=True)
class RayMap:
    """`ctx.map` and `pool.map` for global stages: one Ray task per item, results in item order."""

    ray: Any
    workers: int

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        call = self.ray.remote(num_cpus=1)(_call)
        return _unwrap(lambda: self.ray.get([call.remote(fn, item) for item in items]))


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _run_pass(ray: Any, job: Job, todo: list[Unit], workers: int) -> None:
    """read units → stages → kept pieces, as one streaming Ray Data job (read and map fuse into one task per unit)."""
    seg = job.segment
    ds = ray.data.read_datasource(_unit_source()(job, todo), override_num_blocks=len(todo), num_cpus=0.25)
    ds = ds.map_batches(_run_block, fn_args=(job,), batch_size=None, batch_format="pyarrow", num_cpus=1, concurrency=workers)
    _unwrap(lambda: ds.write_datasink(_piece_sink()(job.work / f"seg-{seg.index}" if seg.writes else None)))


def _unwrap(action: Callable[[], Any]) -> Any:
    """A UserError raised inside a Ray task reaches the user as itself, not wrapped in Ray's errors."""
    try:
        return action()
    except Exception as error:  # noqa: BLE001 - Ray wraps task errors in its own types
        cause: BaseException | None = error
        while cause is not None:
            inner = getattr(cause, "cause", None) or cause.__cause__
            if isinstance(cause, UserError) and not isinstance(inner, UserError):
                raise UserError(*cause.args) from None
            cause = inner
        raise


# read -------------------------------------------------------------------------------------------

@cache
def _unit_source() -> type:
    """The Datasource class, made on first use so that importing this module never needs Ray."""
    from ray.data import Datasource
    from ray.data.block import BlockMetadata
    from ray.data.datasource import ReadTask

    class UnitSource(Datasource):
        """One read task per unit: the grain of parallelism and of resume, as in the local engine."""

        def __init__(self, job: Job, units: list[Unit]) -> None:
            super().__init__()
            self.job, self.units = job, units
            reads = job.segment.reads
            self.pieces = _by_unit_files(job.work / f"seg-{reads}", "parquet") if reads is not None else {}

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None) -> list[Any]:
            return [
                ReadTask(_Reader(self.job, unit, tuple(self.pieces.get(unit.index, ()))), BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=[unit.path]))
                for unit in self.units
            ]

        def get_name(self) -> str:
            return "ReadUnits"

    return UnitSource


@dataclass(frozen=True)
class _Reader:
    job: Job
    unit: Unit
    pieces: tuple[Path, ...]
    """The unit's pieces from the pass before (listed once by the driver); empty on the first pass."""

    def __call__(self) -> Iterator[pa.Table]:
        for df in self._batches():
            yield df.to_arrow()

    def _batches(self) -> Iterator[pl.DataFrame]:
        job, unit = self.job, self.unit
        if job.segment.reads is not None:
            for path in self.pieces:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=job.input.batch_rows):
                    yield pl.from_arrow(batch)  # type: ignore[misc]
            return
        try:
            yield from input_batches(job, unit)
        except InputUnreadable as error:
            write_json(unit_file(job.work / f"seg-{job.segment.index}", unit.index, "json"), skipped(job, unit, error))


# map --------------------------------------------------------------------------------------------

_worker: tuple[tuple[Path, int], _SegmentWorker] | None = None


def _run_block(block: pa.Table, job: Job) -> pa.Table:
    """Ray Data task: the pass's stages are built once per worker process and kept while the pass
    lasts. Ray reuses its worker processes, so a stage's model loads once per process, and a later
    pass starts without a new process (an actor pool would start, and import, fresh ones per pass)."""
    global _worker
    key = (job.work, job.segment.index)
    if _worker is None or _worker[0] != key:
        _worker = (key, _SegmentWorker(job))
    return _worker[1](block)


class _SegmentWorker:
    """One pass's stages in one worker process, and what they need besides the block (the global stage's context)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        head = job.segment.head
        self.ctx = Context(job.work / f"global-{head.label}", job.workers, job.seed) if head else None

    def __call__(self, block: pa.Table) -> pa.Table:
        df: pl.DataFrame = pl.from_arrow(block)  # type: ignore[assignment]
        kept = [self._run_unit_part(unit, part) for unit, part in by_unit(df)]
        kept = [k for k in kept if k.height]
        if not kept or not self.job.segment.writes:
            return pa.table({SLOT: pa.array([], pa.uint64())})
        return pl.concat(kept, how="diagonal_relaxed").to_arrow()

    def _run_unit_part(self, unit: int, df: pl.DataFrame) -> pl.DataFrame:
        """Run the stages over one unit's rows of this block; record them under (unit, first row)."""
        seg, job = self.job.segment, self.job
        first = int(df[ORDER].min() or 0) & ROW_MASK  # type: ignore[operator]
        name = piece_name(unit, first)
        stats = [StageStats(stage.label, stage.type) for stage in seg.all_stages]
        kept: list[pl.DataFrame] = []
        rejected: dict[str, list[pl.DataFrame]] = defaultdict(list)
        scans: list[pl.DataFrame] = []
        nbytes = 0
        for start in range(0, df.height, job.input.batch_rows):
            part = df.slice(start, job.input.batch_rows)
            part_bytes = text_bytes(part)  # measured once: for the record and as the first stage's bytes in
            nbytes += part_bytes
            batch, removed = run_stages(seg, part, self.ctx, stats, part_bytes)
            for label, rows in removed:
                rejected[label].append(rows)
            kept.append(batch)
            if (summary := scan_summary(seg, batch)) is not None:
                scans.append(summary)
        if job.keep_rejected:
            for label, frames in rejected.items():
                write_parquet(pl.concat(frames, how="diagonal_relaxed"), job.work / "rejected" / label / f"{name}.parquet")
        if scans:
            write_parquet(pl.concat(scans, how="diagonal_relaxed"), job.work / f"scan-{seg.index + 1}" / f"{name}.parquet")
        rows = pl.concat(kept, how="diagonal_relaxed")
        if seg.writes and rows.height == 0:  # no block reaches the sink, but the columns must reach the output
            write_parquet(rows, job.work / f"seg-{seg.index}" / f"{name}-{0:010d}.parquet")
        record = {"docs": df.height, "bytes": nbytes, "kept": rows.height, "stats": [s.to_json() for s in stats]}
        write_json(_records(job) / f"{name}.json", record)
        slot = pl.lit((unit << ORDER_SHIFT) | first, pl.UInt64).alias(SLOT)
        return rows.with_columns(slot, pl.int_range(rows.height, dtype=pl.UInt64).alias(RANK))


# write ------------------------------------------------------------------------------------------

@cache
def _piece_sink() -> type:
    from ray.data import Datasink

    class PieceSink(Datasink):
        """Kept rows as pieces named by (unit, first row), each written whole or not at all."""

        def __init__(self, folder: Path | None) -> None:
            self.folder = folder

        def write(self, blocks: Iterable[pa.Table], ctx: Any) -> int:
            rows = 0
            for block in blocks:
                if self.folder is None or block.num_rows == 0:
                    continue
                df: pl.DataFrame = pl.from_arrow(block)  # type: ignore[assignment]
                for (slot,), part in df.partition_by(SLOT, as_dict=True, maintain_order=True).items():
                    name = f"{piece_name(int(slot) >> ORDER_SHIFT, int(slot) & ROW_MASK)}-{part[RANK].min():010d}"  # type: ignore[arg-type]
                    write_parquet(part.drop(SLOT, RANK), self.folder / f"{name}.parquet")
                    rows += part.height
            return rows

        def get_name(self) -> str:
            return "WritePieces"

    return PieceSink


# pieces, records, markers -----------------------------------------------------------------------

def piece_name(unit: int, first_row: int) -> str:
    return f"u{unit:05d}-{first_row:013d}"


def by_unit(df: pl.DataFrame) -> Iterator[tuple[int, pl.DataFrame]]:
    """A block's rows by input unit, in order (a block may hold the end of one unit and the start of the next)."""
    if df.height == 0:
        return
    tagged = df.with_columns((pl.col(ORDER).cast(pl.UInt64) // (1 << ORDER_SHIFT)).alias(UNIT))
    for (unit,), part in tagged.partition_by(UNIT, as_dict=True, maintain_order=True).items():
        yield int(unit), part.drop(UNIT)  # type: ignore[arg-type]


def _by_unit_files(folder: Path, suffix: str) -> dict[int, list[Path]]:
    files: dict[int, list[Path]] = defaultdict(list)
    for unit, name in _listing(folder, suffix):
        files[unit].append(folder / name)
    return files


def pieces_of(folder: Path, units: list[Unit]) -> list[Path]:
    """The pieces of these units in `folder`, in (unit, first row) order: the input order."""
    wanted = {u.index for u in units}
    return [folder / name for unit, name in _listing(folder, "parquet") if unit in wanted]


def _listing(folder: Path, suffix: str) -> list[tuple[int, str]]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), m.group(0)) for name in os.listdir(folder) if (m := PIECE.match(name)) and m.group(2) == suffix]
    return sorted(found)


def _records(job: Job) -> Path:
    return job.work / "ray" / f"seg-{job.segment.index}"


def _unit_files(job: Job) -> dict[int, list[Path]]:
    """Everything this pass wrote, by unit: records, kept pieces, removed rows, scans."""
    seg = job.segment
    folders = [_records(job), job.work / f"seg-{seg.index}", job.work / f"scan-{seg.index + 1}"]
    folders += [job.work / "rejected" / stage.label for stage in seg.all_stages]
    files: dict[int, list[Path]] = defaultdict(list)
    for folder in folders:
        for suffix in ("json", "parquet"):
            for unit, paths in _by_unit_files(folder, suffix).items():
                files[unit].extend(paths)
    return files


def _resume(job: Job, units: list[Unit], expected: dict[int, int]) -> dict[int, dict[str, Any]]:
    """Units this pass already finished (sealing any whose records and pieces add up); clears the rest."""
    folder = job.work / f"seg-{job.segment.index}"
    files = _unit_files(job)
    done: dict[int, dict[str, Any]] = {}
    for unit in units:
        marker = unit_file(folder, unit.index, "json")
        if marker.exists():
            done[unit.index] = json.loads(marker.read_text())
        elif _complete(job, files[unit.index], expected[unit.index]):
            done[unit.index] = _seal(job, unit.index, files[unit.index])
        else:
            for path in files[unit.index]:
                path.unlink(missing_ok=True)
    return done


def _complete(job: Job, files: list[Path], expected: int) -> bool:
    records = [json.loads(p.read_text()) for p in files if p.parent == _records(job)]
    if sum(r["docs"] for r in records) != expected or not records:
        return False
    kept = [p for p in files if p.parent == job.work / f"seg-{job.segment.index}"]
    return not job.segment.writes or sum(pq.ParquetFile(p).metadata.num_rows for p in kept) == sum(r["kept"] for r in records)


def _seal(job: Job, unit: int, files: list[Path]) -> dict[str, Any]:
    """Merge a unit's records, in row order, into the local engine's marker for this pass."""
    marker_path = unit_file(job.work / f"seg-{job.segment.index}", unit, "json")
    if marker_path.exists():  # written by the read task: an unreadable input slice, skipped
        for path in files:
            path.unlink(missing_ok=True)
        return json.loads(marker_path.read_text())
    stats = [StageStats(stage.label, stage.type) for stage in job.segment.all_stages]
    docs = nbytes = kept = 0
    for path in sorted(p for p in files if p.parent == _records(job)):
        record = json.loads(path.read_text())
        docs, nbytes, kept = docs + record["docs"], nbytes + record["bytes"], kept + record["kept"]
        for total, entry in zip(stats, record["stats"]):
            total.merge(StageStats.from_json(entry))
    marker = {"unit": unit, "docs": docs, "bytes": nbytes, "kept": kept, "stats": [s.to_json() for s in stats]}
    write_json(marker_path, marker)
    return marker

