"""A run, whatever the engine: plan the passes, run each unit, decide, resume, finish.

An engine only launches. It hands `run_pipeline` an `Executor` with three methods: `start(fn, items)`
begins independent steps on the workers and gives a function that waits for their results, in order
(the output shards a pass's stages removed are written beside the steps that follow it); `map` starts
and waits at once (a global stage's parallel work); `each(fn, job, units)` runs `run_unit` over units
and yields each unit's marker as it completes. The local engine is a process pool; the Ray engine runs
the same functions as Ray tasks.

Scratch files live in `<output>/_work/`; what a pass read goes once the pass is done (`release_read`),
the rest when the run completes:
  seg-K/uNNNNN.parquet      rows kept by pass K for unit N (written under a temporary name, renamed)
  seg-K/uNNNNN.json         marker: pass K is done for unit N, with its stage stats (written last)
  scan-K/uNNNNN.parquet     unit N's scan for the global stage that heads pass K
  global-<label>/           the global stage's decisions; decided-K.json marks its decide done
  rejected/<label>/uNNNNN.parquet
  ids/uNNNNN.parquet        hashes of unit N's input ids, to count ids that several documents share
Resume is the same for both engines: a re-run skips every unit with a marker and every decided
stage, and redoes the rest. The output folder's marker (`output_folder.py`) guarantees the scratch
files come from the same pipeline and the same input.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import pyarrow.parquet as pq

from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.compact import Compaction, Cut, compact, place, plan_cuts, sort_by_order
from cleanmix.pipelines.config import InputConfig, PipelineConfig
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.formats import count
from cleanmix.pipelines.output_folder import WORK, claim_output
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.shards import (
    ID,
    InputPlan,
    ShardWriter,
    Unit,
    UnreadableSlice,
    plan_input,
    read_unit,
    remove_scratch,
    write_json,
)
from cleanmix.pipelines.stage import Context, GlobalStage, Mapper, SharedColumns, Stage, is_global, without_shared
from cleanmix.pipelines.stats import StageStats, text_bytes

ID_SEED = 0x5EED
ID_PARTITION_ROWS = 200_000_000
"""Ids checked for duplicates at once (8 bytes each)."""


class Executor(Protocol):
    """What an engine provides: parallel steps, in order or as they complete."""

    workers: int

    def start(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Callable[[], list[Any]]: ...

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]: ...

    def each(self, fn: Callable[[Job, Unit], dict[str, Any]], job: Job, units: list[Unit]) -> Iterator[dict[str, Any]]: ...


# planning ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """One pass over every unit: a global stage's `apply` (its head), then document stages, fused."""

    index: int
    head: GlobalStage | None
    stages: tuple[Stage, ...]
    scan_for: GlobalStage | None
    """The global stage heading the next pass: its `scan` runs on this pass's kept rows."""
    reads: int | None
    """The pass whose kept rows this one reads; None: the input."""
    writes: bool

    @property
    def all_stages(self) -> tuple[Stage, ...]:
        return ((self.head,) if self.head else ()) + self.stages


def plan_segments(stages: list[Stage]) -> list[Segment]:
    """Consecutive document stages fused into one pass; every global stage starts a new pass."""
    groups: list[list[Stage]] = [[]]
    for stage in stages:
        if is_global(stage):
            groups.append([])
        groups[-1].append(stage)
    segments: list[Segment] = []
    reads: int | None = None
    for k, group in enumerate(groups):
        head = group[0] if group and is_global(group[0]) else None
        nxt = groups[k + 1][0] if k + 1 < len(groups) else None
        writes = bool(group) or k == len(groups) - 1
        segments.append(Segment(k, head, tuple(group[1:] if head else group), nxt if nxt is not None and is_global(nxt) else None,
                                reads, writes))
        if writes:
            reads = k
    return segments


def describe(seg: Segment) -> str:
    names = [s.label for s in seg.all_stages] + ([f"scan:{seg.scan_for.label}"] if seg.scan_for else [])
    return " → ".join(names) or "copy"


# one unit ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """Everything a worker needs to run one pass over one unit (pickled to the worker)."""

    segment: Segment
    input: InputConfig
    work: Path
    keep_rejected: bool
    seed: int
    workers: int


def unit_file(folder: Path, unit: int, suffix: str = "parquet") -> Path:
    return folder / f"u{unit:05d}.{suffix}"


def marker_path(work: Path, segment: int, unit: int) -> Path:
    return unit_file(work / f"seg-{segment}", unit, "json")


def global_workdir(work: Path, stage: GlobalStage) -> Path:
    return work / f"global-{stage.label}"


def run_unit(job: Job, unit: Unit) -> dict[str, Any]:
    """Run one pass over one unit; writes its kept and removed rows and scan, then its marker.

    An unreadable input file stops the run, or with `on_error: skip` is left out and the unit is
    run again from its start without it; a unit left with no readable file is marked skipped."""
    skipped: dict[str, str] = {}
    while True:
        try:
            marker = _run_unit_once(job, unit, skipped)
            break
        except UnreadableSlice as error:
            if job.input.on_error != "skip":
                raise UserError(f"{error}. Fix or remove it, or set input.on_error: skip to skip it and count it.") from None
            skipped[error.path] = str(error)
    if skipped:
        marker["skipped"] = skipped
    write_json(marker_path(job.work, job.segment.index, unit.index), marker, indent=None)
    return marker


def _run_unit_once(job: Job, unit: Unit, skip: dict[str, str]) -> dict[str, Any]:
    seg = job.segment
    stats = [StageStats(stage.label, stage.type) for stage in seg.all_stages]
    # the next global stage's scan: its time counts in that stage's `seconds` (a classifier scores there)
    scanning = StageStats(seg.scan_for.label, seg.scan_for.type) if seg.scan_for else None
    ctx = Context(global_workdir(job.work, seg.head), job.workers, job.seed) if seg.head else None
    kept = ShardWriter(unit_file(job.work / f"seg-{seg.index}", unit.index))
    scans = ShardWriter(unit_file(job.work / f"scan-{seg.index + 1}", unit.index), dictionary=False)
    ids = ShardWriter(unit_file(job.work / "ids", unit.index), dictionary=False)
    rejected: dict[str, ShardWriter] = {}
    docs_in = bytes_in_total = batches = 0
    tally: dict[str, dict[str, int]] = {}
    try:
        for df in read_batches(job, unit, skip, tally):
            batches += 1
            docs_in += df.height
            if seg.reads is None:
                ids.write(df.select(pl.col(ID).cast(pl.String).hash(seed=ID_SEED).alias(ID)))
            bytes_in = text_bytes(df)
            bytes_in_total += bytes_in
            df, removed = run_stages(seg, df, ctx, stats, bytes_in)
            for label, rows in removed if job.keep_rejected else ():
                if label not in rejected:
                    rejected[label] = ShardWriter(unit_file(job.work / "rejected" / label, unit.index))
                rejected[label].write(rows)
            if seg.writes and (df.height or kept.writer is None):
                kept.write(df)
            started = time.perf_counter()
            if (summary := scan_summary(seg, df)) is not None:
                scans.write(summary)
            if scanning is not None:
                scanning.seconds += time.perf_counter() - started
    except BaseException:
        for writer in (kept, scans, ids, *rejected.values()):
            writer.discard()
        raise
    if not batches:  # no file of the unit could be read
        return {"unit": unit.index, "dead": True}
    for writer in (kept, scans, ids, *rejected.values()):
        writer.close()
    marker = {"unit": unit.index, "docs": docs_in, "bytes": bytes_in_total,
              "stats": [s.to_json() for s in (*stats, *([scanning] if scanning else []))]}
    return {**marker, "skipped_records": tally} if tally else marker


def run_stages(seg: Segment, df: pl.DataFrame, ctx: Context | None, stats: list[StageStats],
               bytes_in: int) -> tuple[pl.DataFrame, list[tuple[str, pl.DataFrame]]]:
    """One batch through a pass's stages: the kept rows, and each stage's removed rows."""
    removed: list[tuple[str, pl.DataFrame]] = []
    stages = seg.all_stages
    shared = SharedColumns(stages)
    for i, (stage, stage_stats) in enumerate(zip(stages, stats)):
        started = time.perf_counter()
        df = shared.attach(df, i)
        result = stage.apply(df, ctx) if stage is seg.head else stage.process(df)
        bytes_in = stage_stats.record(df, result, time.perf_counter() - started, bytes_in)
        if result.rejected.height:
            removed.append((stage.label, without_shared(result.rejected, stages)))
        df = without_shared(result.kept, stages) if isinstance(stage, Mapper) else result.kept  # (stale: text changed)
    return without_shared(df, stages), removed


def scan_summary(seg: Segment, df: pl.DataFrame) -> pl.DataFrame | None:
    """The next global stage's scan of a batch's kept rows; none when it has nothing to say."""
    if seg.scan_for is None or not df.height:
        return None
    summary = seg.scan_for.scan(df)
    return summary if summary is not None and summary.height else None


def read_batches(job: Job, unit: Unit, skip: dict[str, str], tally: dict[str, dict[str, int]]) -> Iterator[pl.DataFrame]:
    """The unit's rows: from the input on the first pass, else from the pass before's kept rows."""
    seg = job.segment
    if seg.reads is None:
        yield from read_unit(unit, job.input, skip, tally)
        return
    file = pq.ParquetFile(unit_file(job.work / f"seg-{seg.reads}", unit.index))
    yielded = False
    for batch in file.iter_batches(batch_size=job.input.batch_rows):
        yield pl.from_arrow(batch)  # type: ignore[misc]
        yielded = True
    if not yielded:
        yield pl.from_arrow(arrow_buffers.empty_table(file.schema_arrow))  # type: ignore[misc]


# the whole run ----------------------------------------------------------------------------------

@dataclass
class RunState:
    """What a run has learnt so far: per-stage stats, global stages' details, per-unit input counts."""

    config: PipelineConfig
    pipeline: str
    plan: InputPlan
    work: Path
    executor: Executor
    reporter: Reporter
    segments: list[Segment]
    out: Path
    """Where the output is written (for an object store: the local staging folder, published at the end)."""
    stats: dict[str, StageStats] = field(init=False)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Per unit: its input docs and bytes, or why it was skipped."""
    pending_shards: list[Callable[[], list[tuple[Cut, tuple[int, int, int]]]]] = field(default_factory=list)
    """The output shards started so far: each waits for its compactions' cuts and what they wrote."""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.stats = {stage.label: StageStats(stage.label, stage.type) for stage in self.config.stages}

    def live_units(self) -> list[Unit]:
        return [u for u in self.plan.units if not self.units.get(u.index, {}).get("dead")]

    def unit_files(self, folder: Path) -> list[Path]:
        """The files the live units wrote into `folder`, in unit order (a unit with nothing has none)."""
        return [p for u in self.live_units() if (p := unit_file(folder, u.index)).exists()]


def plan_run(config: PipelineConfig) -> InputPlan:
    """The input planned and checked against everything the pipeline reads, adds and needs."""
    return plan_input(config.input, config.limit, config.input_columns(), config.output_columns(), config.text_maker())


def run_pipeline(config: PipelineConfig, pipeline: str, reporter: Reporter, launch: Callable[[int], Executor],
                 overwrite: bool = False) -> dict[str, Any]:
    """Run the pipeline with the executor `launch(units)` gives; returns the summary (also in stats/)."""
    plan = plan_run(config)
    with claim_output(config.output.path, config, plan, overwrite, reporter) as held:
        if held.complete:
            reporter.log(f"{config.output.path} already holds this run, complete: nothing to do (--overwrite runs it again).")
            return held.summary()
        executor = launch(len(plan.units))
        try:
            out = held.out  # the output folder, or the local folder that stages an object-store one
            state = RunState(config, pipeline, plan, out.resolve() / WORK, executor, reporter, plan_segments(config.stages), out)
            for seg in state.segments:
                if seg.head:
                    decide(state, seg)
                run_pass(state, seg)
                release_read(state, seg)
                if seg is not state.segments[-1]:  # (the last pass's are written with data/)
                    state.pending_shards.append(start_compactions(state, rejected_compactions(state, seg)))
            reporter.log("writing output shards")
            summary = finish(state)
        finally:
            close = getattr(executor, "close", None)
            if close is not None:
                close()
        held.finished()
        return summary


def decide(state: RunState, seg: Segment) -> None:
    """A global stage's decide, once: a marker records its details, so a re-run skips it."""
    assert seg.head is not None
    marker = state.work / f"decided-{seg.index}.json"
    if marker.exists():
        done = json.loads(marker.read_text())
    else:
        state.reporter.log(f"{seg.head.label}: deciding over the whole corpus")
        workdir = global_workdir(state.work, seg.head)
        shutil.rmtree(workdir, ignore_errors=True)  # what an interrupted attempt left
        workdir.mkdir(parents=True)
        ctx = Context(workdir, state.executor.workers, state.config.seed, state.executor.map)
        scans = state.unit_files(state.work / f"scan-{seg.index}")
        started = time.perf_counter()
        done = {"details": seg.head.decide(scans, ctx), "seconds": time.perf_counter() - started}
        write_json(marker, done)
    state.stats[seg.head.label].seconds += done["seconds"]
    state.details[seg.head.label] = done["details"]


def run_pass(state: RunState, seg: Segment) -> None:
    """Run `run_unit` over every live unit without a marker; merge all markers in unit order."""
    config = state.config
    job = Job(seg, config.input, state.work, config.output.keep_rejected, config.seed, state.executor.workers)
    units = state.live_units()
    done: dict[int, dict[str, Any]] = {}
    for unit in units:
        path = marker_path(state.work, seg.index, unit.index)
        if path.exists():
            done[unit.index] = json.loads(path.read_text())
    todo = [u for u in units if u.index not in done]
    with state.reporter.task(describe(seg), total_units=len(units), done_units=len(done)) as task:
        for marker in state.executor.each(run_unit, job, todo):
            done[marker["unit"]] = marker
            task.advance(marker.get("docs", 0), marker.get("bytes", 0))
    for index in sorted(done):
        marker = done[index]
        if seg.reads is None:
            state.units[index] = {k: marker[k] for k in ("docs", "bytes", "dead", "skipped", "skipped_records") if k in marker}
        for entry in marker.get("stats", ()):
            state.stats[entry["name"]].merge(StageStats.from_json(entry))


def release_read(state: RunState, seg: Segment) -> None:
    """Once a pass has run over every unit, what it read is needed no more: the kept rows of the pass
    before, and its global stage's scan and decisions. They are removed, so the scratch disk holds
    two passes' rows at most, not every pass's. The markers stay: a resumed run skips the passes and
    decisions they mark, and never reads these again."""
    done = [unit_file(state.work / f"seg-{seg.reads}", u.index) for u in state.live_units()] if seg.reads is not None else []
    if seg.head:
        done += [state.work / f"scan-{seg.index}", global_workdir(state.work, seg.head)]
    remove_scratch(done)


# finishing --------------------------------------------------------------------------------------

def finish(state: RunState) -> dict[str, Any]:
    """The output shards, the stats, the report; then the scratch files go."""
    from cleanmix.pipelines.report import write_report

    out = state.out
    (shards, docs, nbytes), duplicate_ids = write_shards(state)
    summary = summarize(state, {"docs": docs, "bytes": nbytes, "shards": shards})
    summary["input"]["duplicate_ids"] = duplicate_ids
    if summary["input"]["duplicate_ids"]:
        state.reporter.log(f"warning: {summary['input']['duplicate_ids']:,} input documents share their id with another "
                           "(`duplicate_of` and `clean explain --id` name one of them)")
    write_stage_stats(state, out)
    write_report(out, summary)
    write_json(out / "stats" / "summary.json", summary)
    shutil.rmtree(state.work, ignore_errors=True)
    return summary


def rejected_compactions(state: RunState, seg: Segment) -> list[tuple[Compaction, Path]]:
    """The rows a pass's stages removed, into rejected/<label>/. They are final once the pass has run, so
    their shards are started then and written beside the steps that follow (the next decide, the next
    pass): the longest of them (a filter that removes half the text) does not hold up the end alone."""
    if not state.config.output.keep_rejected:
        return []
    return [compaction(state, state.unit_files(state.work / "rejected" / stage.label), f"rejected/{stage.label}", always_one=False)
            for stage in seg.all_stages]


def start_compactions(state: RunState, jobs: list[tuple[Compaction, Path]]) -> Callable[[], list[tuple[Cut, tuple[int, int, int]]]]:
    """Plan the compactions' cuts (a step mapped over the workers) and start those not marked done by an
    earlier attempt; the function returned waits for them: each cut with its (shards, docs, text bytes)."""
    cuts = [cut for plan in state.executor.map(plan_cuts, jobs) for cut in plan]
    done = {i: tuple(json.loads(cut.marker.read_text())) for i, cut in enumerate(cuts) if cut.marker.exists()}
    todo = [i for i in range(len(cuts)) if i not in done]
    written = state.executor.start(compact, [cuts[i] for i in todo])

    def wait() -> list[tuple[Cut, tuple[int, int, int]]]:
        done.update(zip(todo, written()))
        return [(cut, done[i]) for i, cut in enumerate(cuts)]  # type: ignore[misc]
    return wait


def compaction(state: RunState, files: list[Path], name: str, always_one: bool, format: str = "parquet") -> tuple[Compaction, Path]:
    """Unit files → the output shards under `name` (data, rejected/<label>), with the input's column
    names; their scratch under `_work/compact/<name>`."""
    output, renames = state.config.output, tuple((ours, theirs) for theirs, ours in state.config.input.renames().items())
    return (Compaction(tuple(files), state.out.resolve() / name, renames, output.shard_rows, output.shard_bytes, always_one, format),
            state.work / "compact" / name)


def write_shards(state: RunState) -> tuple[tuple[int, int, int], int]:
    """Compact the last pass's kept rows into data/ and its removed rows into rejected/ (one job per output
    shard, on the workers; a resumed run keeps the shards marked done), wait for the rejected/ shards
    started after the earlier passes, and link them all into place. Beside them, the input ids several
    documents share are counted (`shared_id_jobs`), which no shard waits for. Returns (shards, docs,
    bytes of data/) and that count."""
    config, work = state.config, state.work
    kept = state.unit_files(work / f"seg-{state.segments[-1].index}")
    if any(is_global(stage) and stage.reorders for stage in config.stages):
        kept = sort_by_order(kept, work / "sorted", state.executor.map) or kept  # no rows: the units give the columns
    data = compaction(state, kept, "data", always_one=True, format=config.output.format)
    last = start_compactions(state, [data, *rejected_compactions(state, state.segments[-1])])
    shared = state.executor.start(_shared_in_partition, shared_id_jobs(state))
    written = [pair for started in [last, *state.pending_shards] for pair in started()]
    for cut, (shards, _, _) in written:
        place(cut, shards)
    in_data = [done for cut, done in written if cut.job.dest == data[0].dest]
    return tuple(sum(done[k] for done in in_data) for k in range(3)), sum(shared())  # type: ignore[return-value]


def shared_id_jobs(state: RunState) -> list[tuple[list[Path], int, int]]:
    """The jobs that count input documents whose id another document has too: over 64-bit hashes
    of the ids, split into partitions of at most ID_PARTITION_ROWS so memory stays bounded."""
    files = state.unit_files(state.work / "ids")
    rows = sum(u.get("docs", 0) for u in state.units.values())
    partitions = max(1, -(-rows // ID_PARTITION_ROWS))
    return [(files, partitions, p) for p in range(partitions)]


def _shared_in_partition(job: tuple[list[Path], int, int]) -> int:
    files, partitions, partition = job
    if not files:
        return 0
    hashes = pl.scan_parquet(files).filter(pl.col(ID) % partitions == partition)
    counts = hashes.group_by(ID).len().filter(pl.col("len") > 1)
    return int(counts.select(pl.col("len").sum()).collect().item() or 0)


def summarize(state: RunState, output: dict[str, int]) -> dict[str, Any]:
    plan, units = state.plan, state.units
    skipped = {path: why for u in plan.units for path, why in units.get(u.index, {}).get("skipped", {}).items()}
    return {
        "pipeline": str(state.pipeline),
        "started": state.started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - state.clock, 3),
        "input": {
            "docs": sum(u.get("docs", 0) for u in units.values()),
            "bytes": sum(u.get("bytes", 0) for u in units.values()),
            "shards": len(plan.files),
            "skipped_shards": {**plan.skipped, **skipped},
            "skipped_records": skipped_records(plan, units),
        },
        "stages": [state.stats[s.label].summary() for s in state.config.stages],
        "output": output,
    }


def skipped_records(plan: InputPlan, units: dict[int, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Records the readers left out, by file and why, in input order: malformed JSON lines
    (`on_error: skip`), WARC records that are no page."""
    merged: dict[str, dict[str, int]] = {}
    for unit in plan.units:
        for path, counts in units.get(unit.index, {}).get("skipped_records", {}).items():
            for why, n in counts.items():
                count(merged, path, why, n)
    return merged


def write_stage_stats(state: RunState, out: Path) -> None:
    for stage in state.config.stages:
        detail = {**state.stats[stage.label].to_json(), "parameters": stage.model_dump(mode="json")}
        if stage.label in state.details:
            detail["details"] = state.details[stage.label]
        write_json(out / "stats" / f"{stage.label}.json", detail)
