"""Parquet in and out: plan the input as units of work, stream them in batches, write atomically."""

from __future__ import annotations

import glob
import json
import os
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cleanmix.pipelines.config import InputConfig
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.stage import ID, ORDER, SOURCE, TEXT

UNIT_ROWS = 100_000
"""Rows per unit of work: big files are split at row-group boundaries so workers share them."""
ORDER_SHIFT = 40


@dataclass(frozen=True)
class Unit:
    """A slice of one input file, processed by one worker: the grain of parallelism and resume."""

    index: int
    path: str
    name: str
    source: str | None
    row_groups: tuple[int, ...]
    first_row: int
    rows: int


@dataclass
class InputPlan:
    units: list[Unit]
    files: list[str]
    skipped: dict[str, str]
    docs: int
    bytes: int


def input_files(location: str) -> tuple[list[str], Path]:
    """The Parquet files at one location, in a stable order, and the root names are relative to."""
    path = Path(location)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*.parquet") if p.is_file())
        root = path
    elif path.is_file():
        files, root = [str(path)], path.parent
    elif glob.has_magic(location):
        files = sorted(p for p in glob.glob(location, recursive=True) if Path(p).is_file())
        root = Path(os.path.commonpath(files)) if files else Path(".")
        root = root.parent if root.is_file() else root
    else:
        raise UserError(f"input path '{location}' does not exist (relative paths are read from {Path.cwd()}).")
    if not files:
        raise UserError(f"input path '{location}' holds no *.parquet files: there is nothing to process.")
    return files, root


def plan_input(config: InputConfig, limit: int | None = None, columns: set[str] = frozenset()) -> InputPlan:  # type: ignore[assignment]
    """Read every file's footer (not its data): units, row counts, and unreadable files early."""
    units: list[Unit] = []
    all_files: list[str] = []
    skipped: dict[str, str] = {}
    total_rows = 0
    total_bytes = 0
    for source, location in config.locations().items():
        files, root = input_files(location)
        all_files += files
        for path in files:
            try:
                meta = pq.ParquetFile(path).metadata
                schema = meta.schema.to_arrow_schema()
            except Exception as error:  # noqa: BLE001 - any unreadable footer is the same user problem
                if config.on_error == "skip":
                    skipped[path] = one_line(error)
                    continue
                raise UserError(
                    f"input file {path} is not a readable Parquet file ({one_line(error)}). "
                    "Fix or remove it, or set input.on_error: skip to skip unreadable shards and count them."
                ) from None
            check_columns(path, schema, config)
            missing = sorted(columns - set(schema.names))
            if missing:
                raise UserError(
                    f"input file {path} has no column {', '.join(repr(c) for c in missing)}, which a stage of "
                    f"the pipeline reads (its columns: {', '.join(schema.names)})."
                )
            name = str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else Path(path).name
            name = f"{source}/{name}" if source is not None else name
            text_column = schema.get_field_index(config.text_column)
            group: list[int] = []
            group_rows = first = row = 0
            for rg in range(meta.num_row_groups):
                rows = meta.row_group(rg).num_rows
                total_bytes += meta.row_group(rg).column(text_column).total_uncompressed_size
                group.append(rg)
                group_rows += rows
                row += rows
                if group_rows >= UNIT_ROWS or rg == meta.num_row_groups - 1:
                    units.append(Unit(len(units), path, name, source, tuple(group), first, group_rows))
                    group, group_rows, first = [], 0, row
            if meta.num_row_groups == 0:
                units.append(Unit(len(units), path, name, source, (), 0, 0))
            total_rows += meta.num_rows
    if limit is not None:
        units, total_rows = _limit(units, limit), min(total_rows, limit)
    return InputPlan(units, all_files, skipped, total_rows, total_bytes)


def _limit(units: list[Unit], limit: int) -> list[Unit]:
    kept: list[Unit] = []
    left = limit
    for unit in units:
        if left <= 0:
            break
        kept.append(Unit(unit.index, unit.path, unit.name, unit.source, unit.row_groups, unit.first_row, min(unit.rows, left)))
        left -= unit.rows
    return kept


def check_columns(path: str, schema: pa.Schema, config: InputConfig) -> None:
    names = schema.names
    if config.text_column not in names:
        raise UserError(
            f"input file {path} has no text column '{config.text_column}' (its columns: {', '.join(names)}). "
            "Set input.text_column to the column that holds the text."
        )
    kind = schema.field(config.text_column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        raise UserError(f"input file {path}: text column '{config.text_column}' holds {kind}, expected strings.")
    if config.source_column and config.source_column not in names:
        raise UserError(f"input file {path} has no source column '{config.source_column}' (its columns: {', '.join(names)}).")
    renamed = {config.text_column: TEXT, config.id_column: ID}
    if config.source_column:
        renamed[config.source_column] = SOURCE
    for name in names:
        if name in (TEXT, ID) and name not in renamed:
            raise UserError(
                f"input file {path} has a column '{name}' that is not the configured {name} column; "
                f"cleanmix uses that name internally. Set input.{name}_column: {name}, or rename the column."
            )
        if name == ORDER:
            raise UserError(f"input file {path} has a column '{ORDER}', which cleanmix reserves.")


def read_unit(unit: Unit, config: InputConfig) -> Iterator[pl.DataFrame]:
    """The unit's rows in batches, with canonical column names, a stable `id` and the `ORDER` key.

    A unit with no rows still yields one empty batch, so its columns reach the output."""
    renames = {config.text_column: TEXT, config.id_column: ID}
    if config.source_column:
        renames[config.source_column] = SOURCE
    file = pq.ParquetFile(unit.path)
    batches = file.iter_batches(batch_size=config.batch_rows, row_groups=list(unit.row_groups)) if unit.row_groups else iter(())
    row, left = unit.first_row, unit.rows
    yielded = False
    for batch in batches:
        if left <= 0:
            break
        df = _canonical(pl.from_arrow(batch.slice(0, left)), renames, unit, row)  # type: ignore[arg-type]
        yield df
        yielded = True
        row += df.height
        left -= df.height
    if not yielded:
        yield _canonical(pl.from_arrow(file.schema_arrow.empty_table()), renames, unit, row)  # type: ignore[arg-type]


def _canonical(df: pl.DataFrame, renames: dict[str, str], unit: Unit, row: int) -> pl.DataFrame:
    df = df.rename({k: v for k, v in renames.items() if k in df.columns})
    n = df.height
    if ID not in df.columns:
        df = df.with_columns((pl.lit(f"{unit.name}:") + pl.int_range(row, row + n, dtype=pl.Int64).cast(pl.String)).alias(ID))
    if unit.source is not None:
        df = df.with_columns(pl.lit(unit.source, pl.String).alias(SOURCE))
    local = row - unit.first_row
    order = pl.int_range(local, local + n, dtype=pl.UInt64) + pl.lit(unit.index << ORDER_SHIFT, pl.UInt64)
    return df.with_columns(order.alias(ORDER))


def write_parquet(table: pa.Table | pl.DataFrame, path: Path) -> None:
    """Write to a temporary name, then rename: readers see a whole shard or none."""
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow()
    with _atomic(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_text(path: Path, text: str) -> None:
    """A marker, a stats file or a page, written like a shard: whole or not at all."""
    with _atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    yield tmp
    os.replace(tmp, path)


class ShardWriter:
    """Collects batches into one Parquet file under a temporary name; `close` renames it into place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.rows = 0

    def write(self, df: pl.DataFrame) -> None:
        table = df.to_arrow()
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression="zstd")
        elif table.schema != self.schema:
            table = _conform(table, self.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            os.replace(self.tmp, self.path)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Batches of one stream may differ only where a column was all-null in one of them."""
    columns = []
    for field in schema:
        column = table.column(field.name) if field.name in table.column_names else pa.nulls(table.num_rows, field.type)
        columns.append(column.cast(field.type) if column.type != field.type else column)
    return pa.Table.from_arrays(columns, schema=schema)
