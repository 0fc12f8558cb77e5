"""The output shards: unit files re-chunked into `part-NNNNN.parquet` (or `.jsonl.gz`/`.jsonl.zst`), in input order.

Units finish in any order on any number of workers, so the output is cut from the unit files in
unit order (or, after a stage that reorders rows, in `ORDER` order by an external sort): the same
input, pipeline and seed give the same bytes whatever the worker count. Which rows go into which
shard is known from the unit files' row counts (with `shard_bytes`, also their texts' sizes), so
each shard is a job of its own (`Cut`), mapped over the workers like any unit and marked done like
one. Memory is bounded by one row group being written and one sort bucket, never by the corpus or
the shard size.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.jsonl import JsonlShardWriter
from cleanmix.pipelines.order import ORDER
from cleanmix.pipelines.shards import ShardWriter, conform, write_json, write_parquet
from cleanmix.pipelines.stage import TEXT

SORT_BUCKET_ROWS = 200_000
SORT_BUCKET_BYTES = 256 * 2**20
SAMPLE_EVERY = 64
ROW_GROUP_BYTES = 64 * 2**20
"""Text bytes per row group of an output shard: what compaction holds in memory at once."""
BATCH_ROWS = 8192
"""Rows read at a time; a row group may end only where a batch or a shard does."""

Map = Callable[[Callable[[Any], Any], Iterable[Any]], list[Any]]


@dataclass(frozen=True)
class Compaction:
    """One folder of unit files → one folder of output shards, with the input's column names."""

    files: tuple[Path, ...]
    dest: Path
    renames: tuple[tuple[str, str], ...]
    shard_rows: int
    shard_bytes: int | None
    always_one: bool
    """Write one (empty) shard when there are no rows, so `data/` always has the output's columns."""
    format: str = "parquet"
    """parquet, jsonl.gz or jsonl.zst: the shards' format and extension."""


def sort_by_order(files: list[Path], folder: Path, map_: Map) -> list[Path]:
    """External sort of rows by ORDER: range buckets cut at sampled quantiles, each sorted alone."""
    shutil.rmtree(folder, ignore_errors=True)
    sampled = map_(_sample_order, files)
    rows = sum(n for n, _, _ in sampled)
    nbytes = sum(b for _, b, _ in sampled)
    buckets = max(1, -(-rows // SORT_BUCKET_ROWS), -(-nbytes // SORT_BUCKET_BYTES))
    sample = np.sort(np.concatenate([values for _, _, values in sampled] or [np.empty(0, np.uint64)]))
    cuts = np.linspace(0, len(sample), buckets + 1)[1:-1].astype(np.int64)
    bounds = np.unique(sample[cuts]) if len(sample) else np.empty(0, np.uint64)
    map_(_scatter, [(path, bounds, folder) for path in files])
    map_(_sort_bucket, [folder / f"b{b:05d}" for b in range(len(bounds) + 1)])
    return [path for b in range(len(bounds) + 1) if (path := folder / f"b{b:05d}.parquet").exists()]


def _sample_order(path: Path) -> tuple[int, int, np.ndarray]:
    """Rows, uncompressed bytes (to size buckets by memory) and every 64th ORDER value of a file."""
    meta = pq.read_metadata(path)
    nbytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    order = pl.read_parquet(path, columns=[ORDER]).get_column(ORDER).to_numpy()
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


@dataclass(frozen=True)
class Cut:
    """One job of a compaction: rows of the unit files, in order, written as shards numbered from `first`.

    `plan_cuts` gives every shard a cut of its own, so each is a job on any worker; `compact` fills
    shards in order from any run of rows, which is what the plan's cuts must add up to."""

    pieces: tuple[tuple[Path, int, int], ...]
    """(file, first row, end row) of each file the cut reads."""
    first: int
    folder: Path
    """Where the cut writes its shards and its marker (the run's scratch; linked into `dest` at the end)."""
    schema: pa.Schema | None
    job: Compaction

    @property
    def marker(self) -> Path:
        return self.folder / f"part-{self.first:05d}.json"


def plan_cuts(planned: tuple[Compaction, Path]) -> list[Cut]:
    """A compaction's jobs, one per output shard (their scratch in the folder given): a step of its own,
    mapped over the workers like the jobs it plans. The rows of each shard are known from the unit
    files' footers, and with `shard_bytes` from their rows' text sizes (the text column read once)."""
    job, folder = planned
    metas = [pq.read_metadata(path) for path in job.files]
    schema = _output_schema([meta.schema.to_arrow_schema() for meta in metas], dict(job.renames))
    whole = tuple((path, meta.num_rows) for path, meta in zip(job.files, metas) if meta.num_rows)
    if not whole:
        return [Cut((), 0, folder, schema, job)] if job.always_one else []
    ends = np.cumsum([n for _, n in whole])
    total = int(ends[-1])
    if job.shard_bytes:
        sizes = (_file_text_sizes(path, meta) for path, meta in zip(job.files, metas) if meta.num_rows)
        starts = shard_starts(sizes, job.shard_bytes, job.shard_rows)
    else:
        starts = list(range(0, total, job.shard_rows))
    cuts = []
    for shard, (start, stop) in enumerate(zip(starts, [*starts[1:], total])):
        pieces = tuple((path, max(start - (end - n), 0), min(stop - (end - n), n))
                       for (path, n), end in zip(whole, ends) if end > start and end - n < stop)
        cuts.append(Cut(pieces, shard, folder, schema, job))
    return cuts


def shard_starts(files: Iterable[np.ndarray], shard_bytes: int, shard_rows: int) -> list[int]:
    """The first row of each shard, filled in order as `compact` fills them, from the text sizes of the
    rows of each file in turn (one file's sizes in memory at a time)."""
    starts: list[int] = []
    first = held_rows = held_bytes = 0  # the file's first row; what the open shard holds
    for sizes in files:
        ends, at = np.cumsum(sizes), 0
        while at < len(sizes):
            if held_rows == 0:
                starts.append(first + at)
            take = _rows_to_take(ends, at, held_rows, held_bytes, shard_bytes, shard_rows)
            if take == 0:  # the next row would take the shard past shard_bytes
                held_rows = held_bytes = 0
                continue
            held_bytes += int(ends[at + take - 1]) - (int(ends[at - 1]) if at else 0)
            held_rows, at = held_rows + take, at + take
            if held_rows >= shard_rows or held_bytes >= shard_bytes:
                held_rows = held_bytes = 0
        first += len(sizes)
    return starts


def _rows_to_take(ends: np.ndarray, at: int, held_rows: int, held_bytes: int, shard_bytes: int, shard_rows: int) -> int:
    """How many rows from `at`, of these cumulative text sizes, an open shard holding `held_rows` rows and
    `held_bytes` bytes takes: up to the row that fills it, never one that would take it past
    `shard_bytes` (but one, if it is empty), never past `shard_rows`. 0: the shard is done."""
    full = (int(ends[at - 1]) if at else 0) + shard_bytes - held_bytes
    fits = min(int(np.searchsorted(ends, full, side="right")), int(np.searchsorted(ends, full, side="left")) + 1) - at
    return min(fits, shard_rows - held_rows) or int(held_rows == 0)


def _file_text_sizes(path: Path, meta: pq.FileMetaData) -> np.ndarray:
    if TEXT not in meta.schema.names:
        return np.zeros(meta.num_rows, np.int64)
    return _text_sizes(pq.read_table(path, columns=[TEXT]))


def _blocks(pieces: tuple[tuple[Path, int, int], ...]) -> Iterator[pa.Table]:
    """The pieces' rows as the files' BATCH_ROWS-row batches (counted from each file's first row),
    cut at the pieces' ends: where a row group of a shard ends depends on nothing but the rows."""
    for path, start, stop in pieces:
        file = pq.ParquetFile(path)
        offsets = np.cumsum([0] + [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)])
        first = int(np.searchsorted(offsets, start, side="right")) - 1
        last = int(np.searchsorted(offsets, stop, side="left"))
        at, held = int(offsets[first]), pa.table({})
        for batch in file.iter_batches(batch_size=BATCH_ROWS, row_groups=list(range(first, last))):
            held = pa.concat_tables([held, pa.Table.from_batches([batch])]) if held.num_rows else pa.Table.from_batches([batch])
            while held.num_rows and (at + held.num_rows >= min(stop, (at // BATCH_ROWS + 1) * BATCH_ROWS)):
                end = min(stop, (at // BATCH_ROWS + 1) * BATCH_ROWS)
                if end > start:
                    yield held.slice(max(start - at, 0), end - max(start, at))
                held, at = held.slice(end - at), end
                if at >= stop:
                    break
            if at >= stop:
                break


def compact(cut: Cut) -> tuple[int, int, int]:
    """Write the cut's rows, in order, as shards of `shard_rows` rows (or `shard_bytes` of text);
    then its marker, so a resumed run keeps them. Returns (shards, docs, text bytes).

    A shard is written in row groups of at most ROW_GROUP_BYTES of text under a temporary name,
    and renamed when whole."""
    release_freed_memory()  # the shard starts from what it needs, not from what the passes or the shard before left
    job, schema = cut.job, cut.schema
    renames = dict(job.renames)
    shard: ShardWriter | JsonlShardWriter | None = None
    pending: list[pa.Table] = []
    pending_bytes = shard_rows = shard_bytes_ = 0
    shards = docs = total_bytes = 0

    def output(table: pa.Table) -> pa.Table:
        table = table.drop_columns([ORDER]) if ORDER in table.column_names else table
        table = table.rename_columns([renames.get(name, name) for name in table.column_names])
        return conform(table, schema) if schema is not None else table

    def write_row_group() -> None:
        nonlocal pending, pending_bytes, shard
        if shard is None:
            path = cut.folder / f"part-{cut.first + shards:05d}.{job.format}"
            if job.format == "parquet":
                shard = ShardWriter(path, compression="zstd")
            else:
                shard = JsonlShardWriter(path, job.format.removeprefix("jsonl."))
        group, pending, pending_bytes = pending, [], 0
        if group:
            rows = pa.concat_tables(group).combine_chunks()
            del group  # the pieces go before the row group is encoded: one copy of it in memory, not two
            shard.write(rows)

    def close_shard() -> None:
        nonlocal shard, shards, shard_rows, shard_bytes_
        write_row_group()
        assert shard is not None
        shard.close()
        shard, shards, shard_rows, shard_bytes_ = None, shards + 1, 0, 0

    for block in _blocks(cut.pieces):
        sizes = _text_sizes(block)
        while block.num_rows:
            if job.shard_bytes:
                take = _rows_to_take(np.cumsum(sizes), 0, shard_rows, shard_bytes_, job.shard_bytes, job.shard_rows)
            else:
                take = min(block.num_rows, job.shard_rows - shard_rows)
            if take == 0:
                close_shard()
                continue
            piece, block = block.slice(0, take), block.slice(take)
            piece_bytes, sizes = int(sizes[:take].sum()), sizes[take:]
            pending.append(output(piece))
            pending_bytes += piece_bytes
            shard_rows += piece.num_rows
            shard_bytes_ += piece_bytes
            docs += piece.num_rows
            total_bytes += piece_bytes
            if shard_rows >= job.shard_rows or (job.shard_bytes and shard_bytes_ >= job.shard_bytes):
                close_shard()
            elif pending_bytes >= ROW_GROUP_BYTES:
                write_row_group()
    if shard_rows:
        close_shard()
    elif shards == 0 and job.always_one:
        pending = [arrow_buffers.empty_table(schema) if schema is not None else pa.table({})]
        close_shard()
    done = (shards, docs, total_bytes)
    write_json(cut.marker, list(done))
    return done


def place(cut: Cut, shards: int) -> None:
    """Put a done cut's shards into the output folder: hard links (a resumed run, which removes
    `data/`, links them again), or copies where the file system has none."""
    for shard in range(cut.first, cut.first + shards):
        name = f"part-{shard:05d}.{cut.job.format}"
        (cut.job.dest / name).unlink(missing_ok=True)
        cut.job.dest.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cut.folder / name, cut.job.dest / name)
        except OSError:
            shutil.copyfile(cut.folder / name, cut.job.dest / name)


def release_freed_memory() -> None:
    """Hand back to the system what the allocators hold freed (Arrow's pool; glibc's heap, where there is one), so
    the output shards' memory comes on top of what they need, not of what the passes left: 4x the held-out
    corpus peaked 30 MB lower."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # (no glibc)
        ctypes.CDLL(None).malloc_trim(0)


def _text_sizes(table: pa.Table) -> np.ndarray:
    """Bytes of each row's text (0 for null), from the offsets; pyarrow's `to_numpy` and scalars
    would import pandas (0.2 s of every run)."""
    if TEXT not in table.column_names:
        return np.zeros(table.num_rows, np.int64)
    return np.concatenate([_byte_lengths(chunk) for chunk in table.column(TEXT).chunks] or [np.zeros(0, np.int64)])


def _byte_lengths(chunk: pa.Array) -> np.ndarray:
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        import pyarrow.compute as pc  # (30 ms to import, for string views and binary text only)

        return np.asarray(pc.binary_length(chunk).fill_null(0)).astype(np.int64)
    return np.where(arrow_buffers.valid(chunk), np.diff(arrow_buffers.offsets(chunk)), 0).astype(np.int64)


def _output_schema(schemas: list[pa.Schema], renames: dict[str, str]) -> pa.Schema | None:
    """One schema for every shard: the unit files' schemas unified (a column that was all null in
    some units takes its type from the others), with the input's column names."""
    if not schemas:
        return None
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    unified = unified.remove(unified.get_field_index(ORDER)) if ORDER in unified.names else unified
    return pa.schema([field.with_name(renames.get(field.name, field.name)) for field in unified])
