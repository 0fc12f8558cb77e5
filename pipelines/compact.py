"""The output shards: unit files re-chunked into `part-NNNNN.parquet` (or `.jsonl.gz`/`.jsonl.zst`), in input order.

Units finish in any order on any number of workers, so the output is cut from the unit files in
unit order (or, after a stage that reorders rows, in `ORDER` order by an external sort): the same
input, pipeline and seed give the same bytes whatever the worker count. Memory is bounded by one
row group being written and one sort bucket, never by the corpus or the shard size.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cleanmix.pipelines.jsonl import JsonlShardWriter
from cleanmix.pipelines.order import ORDER
from cleanmix.pipelines.shards import ShardWriter, conform, write_parquet
from cleanmix.pipelines.stage import TEXT
from cleanmix.pipelines.stats import text_bytes

SORT_BUCKET_ROWS = 200_000
SORT_BUCKET_BYTES = 256 * 2**20
SAMPLE_EVERY = 64
ROW_GROUP_BYTES = 64 * 2**20
"""Text bytes per row group of an output shard: what compaction holds in memory at once."""

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


def compact(job: Compaction) -> tuple[int, int, int]:
    """Cut the files' rows, in order, into shards of `shard_rows` rows (or `shard_bytes` of text).

    Returns (shards, docs, text bytes). A shard is written in row groups of at most
    ROW_GROUP_BYTES of text under a temporary name, and renamed when whole."""
    renames = dict(job.renames)
    schema = _output_schema(job.files, renames)
    shard: ShardWriter | JsonlShardWriter | None = None
    pending: list[pl.DataFrame] = []
    pending_bytes = shard_rows = shard_bytes_ = 0
    shards = docs = total_bytes = 0

    def output(df: pl.DataFrame) -> pa.Table:
        df = df.drop(ORDER, strict=False).rename({k: v for k, v in renames.items() if k in df.columns})
        return conform(df.to_arrow(), schema) if schema is not None else df.to_arrow()

    def write_row_group() -> None:
        nonlocal pending, pending_bytes, shard
        if shard is None:
            path = job.dest / f"part-{shards:05d}.{job.format}"
            shard = ShardWriter(path) if job.format == "parquet" else JsonlShardWriter(path, job.format.removeprefix("jsonl."))
        if pending:
            shard.write(output(pl.concat(pending, how="diagonal_relaxed")).combine_chunks())
        pending, pending_bytes = [], 0

    def close_shard() -> None:
        nonlocal shard, shards, shard_rows, shard_bytes_
        write_row_group()
        assert shard is not None
        shard.close()
        shard, shards, shard_rows, shard_bytes_ = None, shards + 1, 0, 0

    for path in job.files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            df: pl.DataFrame = pl.from_arrow(batch)  # type: ignore[assignment]
            while df.height:
                if job.shard_bytes:
                    sizes = df.get_column(TEXT).str.len_bytes().fill_null(0).cum_sum()
                    fits = int((sizes <= job.shard_bytes - shard_bytes_).sum())
                    take = fits or int(shard_rows == 0)  # a shard holds at least one document
                else:
                    take = min(df.height, job.shard_rows - shard_rows)
                if take == 0:
                    close_shard()
                    continue
                piece, df = df.head(take), df.slice(take)
                piece_bytes = text_bytes(piece)
                pending.append(piece)
                pending_bytes += piece_bytes
                shard_rows += piece.height
                shard_bytes_ += piece_bytes
                docs += piece.height
                total_bytes += piece_bytes
                if shard_rows >= job.shard_rows or (job.shard_bytes and shard_bytes_ >= job.shard_bytes):
                    close_shard()
                elif pending_bytes >= ROW_GROUP_BYTES:
                    write_row_group()
    if shard_rows:
        close_shard()
    elif shards == 0 and job.always_one:
        pending = [pl.from_arrow(schema.empty_table()) if schema is not None else pl.DataFrame()]  # type: ignore[list-item]
        close_shard()
    return shards, docs, total_bytes


def _output_schema(files: tuple[Path, ...], renames: dict[str, str]) -> pa.Schema | None:
    """One schema for every shard: the unit files' schemas unified (a column that was all null in
    some units takes its type from the others), with the input's column names."""
    if not files:
        return None
    unified = pa.unify_schemas([pq.read_schema(path) for path in files], promote_options="permissive")
    unified = unified.remove(unified.get_field_index(ORDER)) if ORDER in unified.names else unified
    return pa.schema([field.with_name(renames.get(field.name, field.name)) for field in unified])
