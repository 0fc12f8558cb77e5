"""The local engine: a process pool over units of input, one fused pass per segment of stages.

Layout of the scratch folder `<output>/_work/` (removed when the run completes):
  seg-K/uNNNNN.parquet      rows kept by segment K for unit N        (written, then renamed)
  seg-K/uNNNNN.json         marker: the unit is done; its stage stats (written last)
  scan-K/uNNNNN.parquet     summaries for the global stage that heads segment K
  global-<label>/           the global stage's own passes; decided-K.json marks them done
  rejected/<label>/uNNNNN.parquet
A re-run skips every unit with a marker and every decided global stage, so a crash costs only
unfinished units, and the output is the same as an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from cleanmix.pipelines.config import InputConfig, PipelineConfig, fingerprint_of
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.shards import (
    ID, ORDER, SOURCE, TEXT, InputPlan, ShardWriter, Unit, plan_input, read_unit, write_json, write_parquet, write_text,
)
from cleanmix.pipelines.stage import Context, GlobalStage, Mapper, Stage, share_columns, without_shared
from cleanmix.pipelines.stats import StageStats, text_bytes

WORK = "_work"


@dataclass(frozen=True)
class Segment:
    """Stages fused into one pass: an optional global stage's apply, then document stages."""

    index: int
    head: GlobalStage | None
    stages: tuple[Stage, ...]
    scan_for: GlobalStage | None
    reads: int | None
    """The segment whose kept rows this one reads; None: the raw input."""
    writes: bool

    @property
    def all_stages(self) -> tuple[Stage, ...]:
        return ((self.head,) if self.head else ()) + self.stages


def plan_segments(config: PipelineConfig) -> list[Segment]:
    groups = config.segments()
    if groups and groups[0] and isinstance(groups[0][0], GlobalStage):
        groups.insert(0, [])
    segments: list[Segment] = []
    reads: int | None = None
    for k, group in enumerate(groups):
        head = group[0] if group and isinstance(group[0], GlobalStage) else None
        rest = tuple(group[1:] if head else group)
        nxt = groups[k + 1][0] if k + 1 < len(groups) else None
        last = k == len(groups) - 1
        writes = bool(group) or last
        segments.append(Segment(k, head, rest, nxt if isinstance(nxt, GlobalStage) else None, reads, writes))
        if writes:
            reads = k
    return segments


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to run one segment over one unit (pickled to the worker)."""

    segment: Segment
    input: InputConfig
    work: Path
    keep_rejected: bool
    seed: int
    workers: int


def unit_file(folder: Path, unit: int, suffix: str = "parquet") -> Path:
    return folder / f"u{unit:05d}.{suffix}"


def run_unit(job: Job, unit: Unit) -> dict[str, Any]:
    """Run one segment over one unit; returns (and records in a marker) the unit's stage stats."""
    seg = job.segment
    stats = [StageStats(stage.label, stage.type) for stage in seg.all_stages]
    ctx = Context(job.work / f"global-{seg.head.label}", job.workers, job.seed) if seg.head else None
    kept = ShardWriter(unit_file(job.work / f"seg-{seg.index}", unit.index))
    scans = ShardWriter(unit_file(job.work / f"scan-{seg.index + 1}", unit.index))
    rejected: dict[str, ShardWriter] = {}
    docs_in = bytes_in_total = 0
    try:
        for df in _batches(job, unit):
            docs_in += df.height
            bytes_in = text_bytes(df)
            bytes_in_total += bytes_in
            df, removed = run_stages(seg, df, ctx, stats, bytes_in)
            for label, rows in removed if job.keep_rejected else ():
                if label not in rejected:
                    rejected[label] = ShardWriter(unit_file(job.work / "rejected" / label, unit.index))
                rejected[label].write(rows)
            if seg.writes and (df.height or kept.writer is None):
                kept.write(df)
            if (summary := scan_summary(seg, df)) is not None:
                scans.write(summary)
    except InputUnreadable as error:
        marker = skipped(job, unit, error)
    else:
        for writer in (kept, scans, *rejected.values()):
            writer.close()
        marker = {"unit": unit.index, "docs": docs_in, "bytes": bytes_in_total, "stats": [s.to_json() for s in stats]}
    write_json(unit_file(job.work / f"seg-{seg.index}", unit.index, "json"), marker)
    return marker


def run_stages(seg: Segment, df: pl.DataFrame, ctx: Context | None, stats: list[StageStats],
               bytes_in: int | None = None) -> tuple[pl.DataFrame, list[tuple[str, pl.DataFrame]]]:
    """One batch through a segment's stages (both engines): the kept rows, and each stage's removed rows."""
    bytes_in = text_bytes(df) if bytes_in is None else bytes_in
    removed: list[tuple[str, pl.DataFrame]] = []
    stages = seg.all_stages
    for i, (stage, stage_stats) in enumerate(zip(stages, stats)):
        started = time.perf_counter()
        df = share_columns(df, stages[i:])
        result = stage.apply(df, ctx) if stage is seg.head else stage.process(df)
        bytes_in = stage_stats.record(df, result, time.perf_counter() - started, bytes_in)
        if result.rejected.height:
            removed.append((stage.label, without_shared(result.rejected, stages)))
        df = without_shared(result.kept, stages) if isinstance(stage, Mapper) else result.kept
    return without_shared(df, stages), removed


def scan_summary(seg: Segment, df: pl.DataFrame) -> pl.DataFrame | None:
    """The next global stage's scan of a batch's kept rows (both engines); none when it has nothing."""
    if seg.scan_for is None or not df.height:
        return None
    summary = seg.scan_for.scan(df)
    return summary if summary is not None and summary.height else None


class InputUnreadable(Exception):
    pass


def skipped(job: Job, unit: Unit, error: InputUnreadable) -> dict[str, Any]:
    """The marker of a unit that could not be read, where the input says to skip; else a user error."""
    if job.input.on_error != "skip":
        raise UserError(str(error)) from None
    return {"unit": unit.index, "skipped": str(error)}


def _batches(job: Job, unit: Unit) -> Iterator[pl.DataFrame]:
    seg = job.segment
    if seg.reads is None:
        try:
            yield from read_unit(unit, job.input)
        except (OSError, pa.ArrowException) as error:
            raise InputUnreadable(
                f"input file {unit.path} could not be read (row groups {unit.row_groups[0]}–{unit.row_groups[-1]}): "
                f"{one_line(error)}. Fix or remove it, or set input.on_error: skip to skip it and count it."
            ) from None
        return
    path = unit_file(job.work / f"seg-{seg.reads}", unit.index)
    file = pq.ParquetFile(path)
    yielded = False
    for batch in file.iter_batches(batch_size=job.input.batch_rows):
        yield pl.from_arrow(batch)  # type: ignore[misc]
        yielded = True
    if not yielded:
        yield pl.from_arrow(file.schema_arrow.empty_table())  # type: ignore[misc]


class Pool:
    """Worker processes (spawned, so no inherited locks); `workers == 1` runs in this process."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None
        if workers > 1:
            os.environ.setdefault("POLARS_MAX_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
            self.executor = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        if self.executor is None:
            return [fn(item) for item in items]
        return list(self.executor.map(fn, items))

    def each(self, fn: Callable[..., Any], job: Any, items: list[Any]) -> Iterator[Any]:
        """Results as they complete (any order)."""
        if self.executor is None:
            for item in items:
                yield fn(job, item)
            return
        pending = {self.executor.submit(fn, job, item) for item in items}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)


def prepare_output(out: Path, config: PipelineConfig, overwrite: bool) -> bool:
    """Check the output folder; returns True when it already holds this run, complete."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output.path '{out}' exists and is not a folder.")
    if out.exists() and any(out.iterdir()):
        resolved = out / "pipeline.yaml"
        if not resolved.exists():
            raise UserError(
                f"output.path '{out}' is not empty and was not written by cleanmix (no pipeline.yaml in it). "
                "Choose a new or empty folder; cleanmix never deletes folders it did not write."
            )
        same = _fingerprint(resolved) == config.fingerprint()
        if overwrite:
            shutil.rmtree(out)
        elif not same:
            raise UserError(
                f"output.path '{out}' holds a run of a different pipeline ({resolved} differs from this one). "
                "Choose another output folder, or pass --overwrite to replace it."
            )
        elif (out / "stats" / "summary.json").exists():
            shutil.rmtree(out / WORK, ignore_errors=True)
            return True
    out.mkdir(parents=True, exist_ok=True)
    (out / WORK).mkdir(exist_ok=True)
    write_text(out / "pipeline.yaml", config.resolved_yaml())
    return False


def _fingerprint(resolved: Path) -> str | None:
    try:
        data = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return fingerprint_of(data) if isinstance(data, dict) else None


def run_local(config: PipelineConfig, pipeline: str, reporter: Reporter, overwrite: bool = False) -> dict[str, Any]:
    """Run the pipeline; returns the summary (also written to stats/summary.json)."""
    plan = plan_input(config.input, config.limit, config.input_columns())
    out = Path(config.output.path)
    if prepare_output(out, config, overwrite):
        reporter.log(f"{out} already holds this run, complete: nothing to do (--overwrite runs it again).")
        return json.loads((out / "stats" / "summary.json").read_text())
    work = out / WORK
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    workers = config.workers or os.cpu_count() or 1
    segments = plan_segments(config)
    stats = {stage.label: StageStats(stage.label, stage.type) for stage in config.stages}
    details: dict[str, dict[str, Any]] = {}
    markers: dict[int, dict[str, Any]] = {}
    pool = Pool(min(workers, max(1, len(plan.units))))
    try:
        for seg in segments:
            if seg.head:
                details[seg.head.label] = _decide(seg, work, pool, config, reporter, stats[seg.head.label])
            job = Job(seg, config.input, work, config.output.keep_rejected, config.seed, workers)
            units = [u for u in plan.units if "skipped" not in markers.get(u.index, {})]
            done: dict[int, dict[str, Any]] = {}
            for unit in units:
                marker_path = unit_file(work / f"seg-{seg.index}", unit.index, "json")
                if marker_path.exists():
                    done[unit.index] = json.loads(marker_path.read_text())
            todo = [u for u in units if u.index not in done]
            with reporter.task(_describe(seg), total_units=len(units), done_units=len(done)) as task:
                for marker in pool.each(run_unit, job, todo):
                    done[marker["unit"]] = marker
                    task.advance(marker.get("docs", 0), marker.get("bytes", 0))
            for index in sorted(done):
                _absorb(stats, markers, done[index], seg)
        reporter.log("writing output shards")
        return finish_run(config, pipeline, plan, segments, stats, details, markers, started, clock, pool)
    finally:
        pool.close()


def finish_run(config: PipelineConfig, pipeline: str, plan: InputPlan, segments: list[Segment], stats: dict[str, StageStats],
               details: dict[str, dict[str, Any]], markers: dict[int, dict[str, Any]], started: datetime, clock: float,
               pool: Pool, files: Callable[[Path, list[Unit]], list[Path]] | None = None) -> dict[str, Any]:
    """Compact the kept and removed rows into the output folder; write stats, report and summary (both engines).

    `files` lists a folder's unit files in input order (default: `sorted_files`); `pool.map` runs the compactions."""
    files = files or sorted_files
    out = Path(config.output.path)
    work = out / WORK
    final = segments[-1].index
    live = [u for u in plan.units if "skipped" not in markers.get(u.index, {})]
    kept_files = files(work / f"seg-{final}", live)
    if any(isinstance(stage, GlobalStage) and stage.reorders for stage in config.stages):
        kept_files = sort_by_order(kept_files, work / "sorted", pool)
    jobs = [(kept_files, out / "data", config)]
    if config.output.keep_rejected:
        jobs += [(files(work / "rejected" / label, live), out / "rejected" / label, config) for label in stats]
    written = pool.map(_compact, jobs)
    shards, docs_out, bytes_out = written[0]
    summary = {
        "pipeline": str(pipeline),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock, 3),
        "input": {
            "docs": sum(m.get("docs", 0) for m in markers.values()),
            "bytes": sum(m.get("bytes", 0) for m in markers.values()),
            "shards": len(plan.files),
            "skipped_shards": {**plan.skipped, **{_unit_path(plan, i): m["skipped"] for i, m in markers.items() if "skipped" in m}},
        },
        "stages": [stats[s.label].summary() for s in config.stages],
        "output": {"docs": docs_out, "bytes": bytes_out, "shards": shards},
    }
    for stage in config.stages:
        detail = {**stats[stage.label].to_json(), "parameters": stage.model_dump(mode="json")}
        if stage.label in details:
            detail["details"] = details[stage.label]
        write_json(out / "stats" / f"{stage.label}.json", detail)
    from cleanmix.pipelines.report import write_report

    write_report(out, summary)
    write_json(out / "stats" / "summary.json", summary)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def _describe(seg: Segment) -> str:
    names = [s.label for s in seg.all_stages] + ([f"scan:{seg.scan_for.label}"] if seg.scan_for else [])
    return " → ".join(names) or "copy"


def _unit_path(plan: InputPlan, index: int) -> str:
    return next(u.path for u in plan.units if u.index == index)


def _absorb(stats: dict[str, StageStats], markers: dict[int, dict[str, Any]], marker: dict[str, Any], seg: Segment) -> None:
    unit = marker["unit"]
    if "skipped" in marker:
        markers[unit] = marker
        return
    if seg.reads is None:
        markers[unit] = {"docs": marker["docs"], "bytes": marker["bytes"]}
    for entry in marker["stats"]:
        stats[entry["name"]].merge(StageStats.from_json(entry))


def _decide(seg: Segment, work: Path, pool: Pool, config: PipelineConfig, reporter: Reporter, stage_stats: StageStats) -> dict[str, Any]:
    """Run a global stage's decide pass once; a marker makes it resumable."""
    assert seg.head is not None
    marker = work / f"decided-{seg.index}.json"
    if marker.exists():
        done = json.loads(marker.read_text())
    else:
        reporter.log(f"{seg.head.label}: deciding over the whole corpus")
        ctx = Context(work / f"global-{seg.head.label}", pool.workers, config.seed, pool.map)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        details = seg.head.decide(sorted((work / f"scan-{seg.index}").glob("u*.parquet")), ctx)
        done = {"details": details, "seconds": time.perf_counter() - started}
        write_json(marker, done)
    stage_stats.seconds += done["seconds"]
    return done["details"]


def sorted_files(folder: Path, units: list[Unit]) -> list[Path]:
    return [p for u in units if (p := unit_file(folder, u.index)).exists()]


SORT_BUCKET_ROWS = 200_000
SORT_BUCKET_BYTES = 256 * 2**20
SAMPLE_EVERY = 64


def sort_by_order(files: list[Path], folder: Path, pool: Pool) -> list[Path]:
    """External sort of rows by ORDER: range buckets cut at sampled quantiles, each sorted alone.

    Memory is bounded by one unit file and one bucket, never by the corpus."""
    shutil.rmtree(folder, ignore_errors=True)
    sampled = pool.map(_sample_order, files)
    rows = sum(n for n, _, _ in sampled)
    nbytes = sum(b for _, b, _ in sampled)
    buckets = max(1, -(-rows // SORT_BUCKET_ROWS), -(-nbytes // SORT_BUCKET_BYTES))
    sample = np.sort(np.concatenate([values for _, _, values in sampled] or [np.empty(0, np.uint64)]))
    cuts = np.linspace(0, len(sample), buckets + 1)[1:-1].astype(np.int64)
    bounds = np.unique(sample[cuts]) if len(sample) else np.empty(0, np.uint64)
    pool.map(_scatter, [(path, bounds, folder) for path in files])
    pool.map(_sort_bucket, [folder / f"b{b:05d}" for b in range(len(bounds) + 1)])
    return [path for b in range(len(bounds) + 1) if (path := folder / f"b{b:05d}.parquet").exists()]


def _sample_order(path: Path) -> tuple[int, int, np.ndarray]:
    """Rows, uncompressed bytes (to size buckets by memory) and every 64th ORDER value of a file."""
    meta = pq.read_metadata(path)
    nbytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    order = pq.read_table(path, columns=[ORDER]).column(ORDER).to_numpy()
    return len(order), nbytes, order[::SAMPLE_EVERY]


def _scatter(job: tuple[Path, np.ndarray, Path]) -> None:
    path, bounds, folder = job
    df = pl.read_parquet(path)
    bucket = np.searchsorted(bounds, df.get_column(ORDER).to_numpy(), side="right")
    for (b,), part in df.with_columns(pl.Series("_cm_bucket", bucket)).partition_by("_cm_bucket", as_dict=True).items():
        write_parquet(part.drop("_cm_bucket"), folder / f"b{b:05d}" / path.name)


def _sort_bucket(folder: Path) -> None:
    pieces = sorted(folder.glob("u*.parquet"))
    if pieces:
        rows = pl.concat([pl.read_parquet(p) for p in pieces], how="diagonal_relaxed").sort(ORDER, maintain_order=True)
        write_parquet(rows, folder.with_suffix(".parquet"))


def _compact(job: tuple[list[Path], Path, PipelineConfig]) -> tuple[int, int, int]:
    """Re-chunk unit files, in unit order, into part-NNNNN.parquet of `shard_rows` rows (or bytes)."""
    files, dest, config = job
    renames = {TEXT: config.input.text_column, ID: config.input.id_column}
    if config.input.source_column:
        renames[SOURCE] = config.input.source_column
    limit_rows, limit_bytes = config.output.shard_rows, config.output.shard_bytes
    pending: list[pl.DataFrame] = []
    pending_rows = pending_bytes = 0
    shards = docs = total_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_rows, pending_bytes, shards
        df = pl.concat(pending, how="diagonal_relaxed") if pending else pl.DataFrame()
        df = df.drop(ORDER, strict=False).rename({k: v for k, v in renames.items() if k in df.columns})
        write_parquet(df.to_arrow().combine_chunks(), dest / f"part-{shards:05d}.parquet")
        shards += 1
        pending, pending_rows, pending_bytes = [], 0, 0

    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            df: pl.DataFrame = pl.from_arrow(batch)  # type: ignore[assignment]
            while df.height:
                if limit_bytes:
                    sizes = df.get_column(TEXT).str.len_bytes().fill_null(0).cum_sum()
                    fits = int((sizes <= limit_bytes - pending_bytes).sum())
                    take = fits or int(pending_rows == 0)  # a shard holds at least one document
                else:
                    take = min(df.height, limit_rows - pending_rows)
                if take == 0:
                    flush()
                    continue
                piece, df = df.head(take), df.slice(take)
                piece_bytes = text_bytes(piece)
                pending.append(piece)
                pending_rows += piece.height
                pending_bytes += piece_bytes
                docs += piece.height
                total_bytes += piece_bytes
                if pending_rows >= limit_rows or (limit_bytes and pending_bytes >= limit_bytes):
                    flush()
    if pending or (shards == 0 and dest.name == "data"):
        if not pending and files:
            pending = [pl.from_arrow(pq.read_schema(files[0]).empty_table())]  # type: ignore[list-item]
        flush()
    return shards, docs, total_bytes


