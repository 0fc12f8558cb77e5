"""Parquet in and out: plan the input as units of work, stream them in batches, write atomically."""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cleanmix.pipelines.config import InputConfig
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.order import ORDER, order_of
from cleanmix.pipelines.stage import ID, SOURCE, TEXT, Filter, Stage

UNIT_ROWS = 100_000
"""Rows per unit of work: big files are split at row-group boundaries so workers share them."""


SMALL_FILE_ROWS = 256
"""Consecutive files with fewer rows are grouped, whole, into units of at least this many rows: a
unit of work costs a task, a marker and a few files (~20 ms), which would dominate a corpus of
many tiny shards, while files of a few hundred rows stay units of their own for parallelism."""
FILES_PER_UNIT = 1000


@dataclass(frozen=True)
class Slice:
    """Row groups of one input file."""

    path: str
    name: str
    """The file's path relative to its input location (generated ids are `<name>:<row>`)."""
    row_groups: tuple[int, ...]
    first_row: int
    """The file's row at which the slice starts."""
    rows: int


@dataclass(frozen=True)
class Unit:
    """Input that one worker processes at a time: the grain of parallelism and of resume.

    A slice of a big file, or several small files whole. Rows are numbered across the slices in
    order (`ORDER`), whichever slices turn out readable."""

    index: int
    source: str | None
    slices: tuple[Slice, ...]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.slices)

    def resolved(self) -> Unit:
        """The same unit with absolute paths (for workers that may not share our working folder)."""
        return replace(self, slices=tuple(replace(s, path=str(Path(s.path).resolve())) for s in self.slices))


class UnreadableSlice(Exception):
    """A slice of input that cannot be read (damaged file, invalid UTF-8): named, with why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass
class InputPlan:
    units: list[Unit]
    files: list[str]
    skipped: dict[str, str]
    docs: int
    bytes: int
    roots: list[str] = field(default_factory=list)
    """Folders read as input (searched recursively): an output folder must not lie inside one."""


OUTPUT_MARKER = ".cleanmix-output.json"
"""The file only cleanmix writes into its output folders (`output_folder.MARKER`)."""


def is_cleanmix_output(folder: Path) -> bool:
    """A folder a cleanmix run wrote: its marker, or (runs before the marker) its pipeline and stats or scratch."""
    if (folder / OUTPUT_MARKER).is_file():
        return True
    return (folder / "pipeline.yaml").is_file() and ((folder / "stats" / "summary.json").is_file() or (folder / "_work").is_dir())


def input_files(location: str) -> tuple[list[str], Path]:
    """The Parquet files at one location, in a stable order, and the root names are relative to.

    A folder is searched recursively, but of a cleanmix output folder (the one named, or one
    inside it) only the kept documents in `data/` are read: never its rejected rows or scratch."""
    path = Path(location)
    if path.is_dir():
        if is_cleanmix_output(path) and not (path / "data").is_dir():
            raise UserError(
                f"input path '{location}' is a cleanmix output folder without a data/ folder: its run has not "
                "finished. Finish it (run it again), or point input.path at the raw data."
            )
        root = path / "data" if is_cleanmix_output(path) else path
        files = _parquet_files(root)
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


def _parquet_files(folder: Path) -> list[str]:
    """Every *.parquet under `folder`, sorted; inside a nested cleanmix output folder, only under its data/."""
    files = []
    for parent, folders, names in os.walk(folder):
        if is_cleanmix_output(Path(parent)):
            folders[:] = ["data"] if "data" in folders else []
            continue
        files += [p for name in names if name.endswith(".parquet") and os.path.isfile(p := os.path.join(parent, name))]
    return sorted(files)


def plan_input(config: InputConfig, limit: int | None = None, columns: set[str] = frozenset(),  # type: ignore[assignment]
               added: Mapping[str, Stage | None] | None = None) -> InputPlan:
    """Read every file's footer (not its data): units, row counts, and unreadable files early.

    `columns` must be in every file; `added` (`PipelineConfig.output_columns()`) must not be."""
    units: list[Unit] = []
    all_files: list[str] = []
    types: dict[str, tuple[str, str, str]] = {}
    roots: list[str] = []
    skipped: dict[str, str] = {}
    total_rows = 0
    total_bytes = 0
    small: list[Slice] = []

    def flush_small(source: str | None) -> None:
        if small:
            units.append(Unit(len(units), source, tuple(small)))
            small.clear()

    for source, location in config.locations().items():
        files, root = input_files(location)
        if not Path(location).is_file():
            roots.append(str(root))
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
            check_columns(path, schema, config, added or {})
            check_types(path, schema, config, types)
            missing = sorted(columns - set(schema.names))
            if missing:
                raise UserError(
                    f"input file {path} has no column {', '.join(repr(c) for c in missing)}, which a stage of "
                    f"the pipeline reads (its columns: {', '.join(schema.names)})."
                )
            name = str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else Path(path).name
            name = f"{source}/{name}" if source is not None else name
            text_column = schema.get_field_index(config.text_column)
            total_bytes += sum(meta.row_group(rg).column(text_column).total_uncompressed_size for rg in range(meta.num_row_groups))
            total_rows += meta.num_rows
            if meta.num_rows < SMALL_FILE_ROWS:
                small.append(Slice(path, name, tuple(range(meta.num_row_groups)), 0, meta.num_rows))
                if sum(s.rows for s in small) >= SMALL_FILE_ROWS or len(small) >= FILES_PER_UNIT:
                    flush_small(source)
                continue
            flush_small(source)  # units stay in file order: input order is what `keep: first` and the output follow
            group: list[int] = []
            group_rows = first = row = 0
            for rg in range(meta.num_row_groups):
                rows = meta.row_group(rg).num_rows
                group.append(rg)
                group_rows += rows
                row += rows
                if group_rows >= UNIT_ROWS or rg == meta.num_row_groups - 1:
                    units.append(Unit(len(units), source, (Slice(path, name, tuple(group), first, group_rows),)))
                    group, group_rows, first = [], 0, row
        flush_small(source)
    if limit is not None:
        units, total_rows = _limit(units, limit), min(total_rows, limit)
    return InputPlan(units, all_files, skipped, total_rows, total_bytes, roots)


def _limit(units: list[Unit], limit: int) -> list[Unit]:
    """The units that hold the first `limit` rows, the last one cut short."""
    kept: list[Unit] = []
    left = limit
    for unit in units:
        slices = []
        for piece in unit.slices:
            if left <= 0:
                break
            slices.append(replace(piece, rows=min(piece.rows, left)))
            left -= piece.rows
        if not slices:
            break
        kept.append(replace(unit, slices=tuple(slices)))
    return kept


def check_columns(path: str, schema: pa.Schema, config: InputConfig, added: Mapping[str, Stage | None] = {}) -> None:  # noqa: B006
    """The text column holds strings, and no column has a name cleanmix uses or a stage adds."""
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
        if name == SOURCE and config.sources is not None:
            raise UserError(
                f"input file {path} has a column '{SOURCE}', but input.sources sets every document's source "
                f"and would overwrite it. Rename the column in the input, or set input.source_column: {SOURCE} instead."
            )
        if name.startswith(RESERVED_PREFIX):
            raise UserError(
                f"input file {path} has a column '{name}': cleanmix reserves names starting with '{RESERVED_PREFIX}'. Rename it."
            )
        if name in added and name not in renamed:
            _check_added(path, name, schema.field(name).type, added[name])


def check_types(path: str, schema: pa.Schema, config: InputConfig, seen: dict[str, tuple[str, str, str]]) -> None:
    """Columns of one name hold one type in every file, up to lossless differences (see `_family`):
    all files end in one output, and a silent conversion would change the user's values.

    `seen` maps each column to its family, the first file that has it and the type shown there."""
    kinds = {field.name: (field.type, str(field.type)) for field in schema}
    if config.id_column not in kinds:
        kinds[config.id_column] = (pa.string(), f"string (generated: that file has no '{config.id_column}' column)")
    for name, (kind, shown) in kinds.items():
        if pa.types.is_null(kind):
            continue  # all null: fits any type
        family = _family(kind)
        first = seen.setdefault(name, (family, path, shown))
        if first[0] != family:
            raise UserError(
                f"input files {first[1]} and {path} both have a column '{name}', of different types: {first[2]} in "
                f"the first, {shown} in the second. cleanmix writes every file into one output and will not convert "
                "values silently: write the column with one type in every file (integers of any width, floats of any "
                "width, or strings of any kind mix freely)."
            )


def _family(kind: pa.DataType) -> str:
    """A type up to the differences a lossless cast removes: integer and float widths (not
    uint64, which int64 cannot hold), string and binary flavours, dictionary encoding, list
    flavours; struct fields and list elements compared the same way."""
    t = pa.types
    if t.is_dictionary(kind):
        return _family(kind.value_type)
    if t.is_signed_integer(kind) or kind in (pa.uint8(), pa.uint16(), pa.uint32()):
        return "integer"
    if t.is_floating(kind):
        return "float"
    if t.is_string(kind) or t.is_large_string(kind) or t.is_string_view(kind):
        return "string"
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_binary_view(kind):
        return "binary"
    if t.is_list(kind) or t.is_large_list(kind) or t.is_list_view(kind) or t.is_large_list_view(kind):
        return f"list<{_family(kind.value_type)}>"
    if t.is_struct(kind):
        return "struct<" + ", ".join(f"{field.name}: {_family(field.type)}" for field in kind) + ">"
    return str(kind)


RESERVED_PREFIX = "_cm_"
"""cleanmix's working columns (the order key, shared token lists, dedup's joins) start with this."""


def _check_added(path: str, name: str, kind: pa.DataType, stage: Stage | None) -> None:
    """An input column a stage would overwrite is refused, unless it is an earlier measurement of
    the same kind that a filter measures again (`Filter.metric_types`)."""
    if stage is None:
        raise UserError(
            f"input file {path} has a column '{name}': cleanmix writes why a document was removed under that "
            f"name and would overwrite it. Rename the column in the input (e.g. to 'input_{name}'), or drop it."
        )
    measured = stage.metric_types.get(name) if isinstance(stage, Filter) else None
    expected = _kind(pl.Series(dtype=measured).to_arrow().type) if measured is not None else None
    if expected is not None and _kind(kind) == expected:
        return
    again = (
        f" (a column of this name holding {expected} would be taken as an earlier measurement and measured "
        f"again; this one holds {_kind(kind)}: {kind})" if expected is not None else ""
    )
    raise UserError(
        f"input file {path} has a column '{name}', which stage '{stage.label}' ({stage.type}) adds to its output "
        f"and would overwrite{again}. Rename the column in the input (e.g. to 'input_{name}'), or drop it."
    )


def _kind(kind: pa.DataType) -> str:
    """What a re-measured column must hold: numbers, strings or booleans (any width)."""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numbers"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "strings"
    return "booleans" if pa.types.is_boolean(kind) else "other values"


def read_unit(unit: Unit, config: InputConfig, skip: Collection[str] = ()) -> Iterator[pl.DataFrame]:
    """The unit's rows in batches, with canonical column names, a stable `id` and the `ORDER` key.

    Slices whose path is in `skip` are left out (their rows keep their numbers); a slice that
    cannot be read raises UnreadableSlice. Batches of a unit's files share one schema (their own,
    unified), so a column that is all null in one file keeps its type from another. A unit with
    no rows still yields one empty batch, so its columns reach the output."""
    renames = {config.text_column: TEXT, config.id_column: ID}
    if config.source_column:
        renames[config.source_column] = SOURCE
    slices = [s for s in unit.slices if s.path not in skip]
    schema: pa.Schema | None = None
    local, yielded = 0, False
    pending: list[pl.DataFrame] = []
    pending_rows = 0
    for piece in unit.slices:
        if piece.path in skip:
            local += piece.rows
            continue
        try:
            file = pq.ParquetFile(piece.path)
            if schema is None:
                schema = _unit_schema(slices, file.schema_arrow)
            own = schema  # a file without ids gets generated ones, not the nulls of a unified column
            if config.id_column in schema.names and config.id_column not in file.schema_arrow.names:
                own = schema.remove(schema.get_field_index(config.id_column))
            batches = file.iter_batches(batch_size=config.batch_rows, row_groups=list(piece.row_groups)) if piece.row_groups else iter(())
            row, left = piece.first_row, piece.rows
            for batch in batches:
                if left <= 0:
                    break
                batch = batch.slice(0, left)
                _check_utf8(batch, row)
                df = _canonical(pl.from_arrow(conform(pa.Table.from_batches([batch]), own)), renames, unit, piece, row, local)  # type: ignore[arg-type]
                pending.append(df)
                pending_rows += df.height
                if pending_rows >= config.batch_rows:
                    yield pl.concat(pending, how="diagonal_relaxed")
                    pending, pending_rows, yielded = [], 0, True
                row, left, local = row + df.height, left - df.height, local + df.height
        except (OSError, pa.ArrowException) as error:
            groups = f"row groups {piece.row_groups[0]}–{piece.row_groups[-1]}" if piece.row_groups else "its footer"
            raise UnreadableSlice(piece.path, f"input file {piece.path} could not be read ({groups}): {one_line(error)}") from None
        local += left
    if pending:  # the rows of small files, gathered: one batch, not one per file
        yield pl.concat(pending, how="diagonal_relaxed")
    elif not yielded and schema is not None:
        yield _canonical(pl.from_arrow(schema.empty_table()), renames, unit, slices[-1], 0, local)  # type: ignore[arg-type]


def _unit_schema(slices: list[Slice], first: pa.Schema) -> pa.Schema:
    if len(slices) == 1:
        return first
    return pa.unify_schemas([first, *(pq.read_schema(s.path) for s in slices[1:])], promote_options="permissive")


def _check_utf8(batch: pa.RecordBatch, first_row: int) -> None:
    """Parquet readers trust string columns to hold UTF-8; an invalid one would panic Polars later or
    pass into shards nobody can read. A bad batch raises ArrowInvalid: the unreadable-input path."""
    try:
        batch.validate(full=True)
    except pa.ArrowInvalid:
        for name, column in zip(batch.schema.names, batch.columns):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid as error:
                at = re.search(r"string index (\d+)", str(error))
                flat = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                where = f"row {first_row + int(at.group(1))}" if at and flat else f"rows {first_row}–{first_row + batch.num_rows - 1}"
                raise pa.ArrowInvalid(
                    f"column '{name}' holds text that is not valid UTF-8 at {where} of the file (counting from 0)"
                ) from None
        raise


def _canonical(df: pl.DataFrame, renames: dict[str, str], unit: Unit, piece: Slice, row: int, local: int) -> pl.DataFrame:
    """`row`: the batch's first row in its file; `local`: in its unit."""
    df = df.rename({k: v for k, v in renames.items() if k in df.columns})
    n = df.height
    if ID not in df.columns:
        df = df.with_columns((pl.lit(f"{piece.name}:") + pl.int_range(row, row + n, dtype=pl.Int64).cast(pl.String)).alias(ID))
    if unit.source is not None:
        df = df.with_columns(pl.lit(unit.source, pl.String).alias(SOURCE))
    return df.with_columns(order_of(unit.index, local, n).alias(ORDER))


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

    def write(self, rows: pl.DataFrame | pa.Table) -> None:
        table = rows.to_arrow() if isinstance(rows, pl.DataFrame) else rows
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression="zstd")
        elif table.schema != self.schema:
            table = conform(table, self.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """Give up the file: nothing is renamed into place, the temporary file goes."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.tmp.unlink(missing_ok=True)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Batches of one stream may differ only where a column was all-null in one of them."""
    columns = []
    for wanted in schema:
        column = table.column(wanted.name) if wanted.name in table.column_names else pa.nulls(table.num_rows, wanted.type)
        columns.append(column.cast(wanted.type) if column.type != wanted.type else column)
    return pa.Table.from_arrays(columns, schema=schema)
