"""The input planned as units of work and read in batches, whatever its format; atomic writes.

What differs between formats (how a file is looked at without reading it, how a slice is read) is
in `formats.py` and the readers it names; this file cuts units, checks schemas and numbers rows."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.config import InputConfig
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.formats import DAMAGED, POSITION, Survey, Tally, format_of, reader_for
from cleanmix.pipelines.input_checks import check_columns, check_types
from cleanmix.pipelines.order import ORDER, order_of
from cleanmix.pipelines.stage import ID, SOURCE, TEXT, Stage
from cleanmix.pipelines.storage import check_bucket, is_url, map_paths, store_errors, url_of

FILES_PER_UNIT = 1000


@dataclass(frozen=True)
class Slice:
    """A part of one input file: Parquet row groups, a byte range of JSON Lines, or the whole file."""

    path: str
    name: str
    """The file's path relative to its input location (generated ids are `<name>:<position>`)."""
    part: tuple[int, ...]
    first_row: int
    """The file's row (or line, from 0) at which the slice starts."""
    rows: int | None
    """None: not known before the slice is read (JSON Lines, WARC)."""
    format: str = "parquet"
    schema: pa.Schema | None = None
    """The file's own columns, as planning found them."""
    read_as: pa.Schema | None = None
    """The columns the slice is read with where not its own: one schema for every JSON Lines file."""

    @property
    def columns(self) -> pa.Schema | None:
        return self.read_as or self.schema


@dataclass(frozen=True)
class Unit:
    """Input that one worker processes at a time: the grain of parallelism and of resume.

    A slice of a big file, or several small files whole. Rows are numbered across the slices in
    order (`ORDER`), whichever slices turn out readable."""

    index: int
    source: str | None
    slices: tuple[Slice, ...]
    order: int = -1
    """The number its rows' ORDER keys carry (-1: its index). Units cut from one run of a file's
    row groups share their run's number, and start at their first row within it (`within`)."""
    within: int = 0

    @property
    def order_key(self) -> int:
        return self.index if self.order < 0 else self.order

    @property
    def rows(self) -> int | None:
        counts = [s.rows for s in self.slices]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]

    def resolved(self) -> Unit:
        """The same unit with absolute paths (for workers that may not share our working folder)."""
        return replace(self, slices=tuple(s if is_url(s.path) else replace(s, path=str(Path(s.path).resolve())) for s in self.slices))


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
    docs: int | None
    """None: some files are counted only as they are read (JSON Lines, WARC)."""
    bytes: int | None
    roots: list[str] = field(default_factory=list)
    """Folders read as input (searched recursively): an output folder must not lie inside one."""


OUTPUT_MARKER = ".cleanmix-output.json"
"""The file only cleanmix writes into its output folders (`output_folder.MARKER`)."""


def is_cleanmix_output(folder: Path) -> bool:
    """A folder a cleanmix run wrote: its marker, or (runs before the marker) its pipeline and stats or scratch."""
    if (folder / OUTPUT_MARKER).is_file():
        return True
    return (folder / "pipeline.yaml").is_file() and ((folder / "stats" / "summary.json").is_file() or (folder / "_work").is_dir())


def input_files(location: str, configured: str | None = None, options: dict[str, Any] | None = None) -> tuple[list[str], Path | str]:
    """The input files at one location, in a stable order, and the root names are relative to.

    A folder is searched recursively, but of a cleanmix output folder (the one named, or one
    inside it) only the kept documents in `data/` are read: never its rejected rows or scratch.
    A URL (`s3://bucket/prefix`) is listed through fsspec the same way; its files are URLs."""
    if is_url(location):
        files, root = _store_files(location, configured, options)
        _check_found(location, files, configured)
        return files, root
    path = Path(location)
    if path.is_dir():
        if is_cleanmix_output(path) and not (path / "data").is_dir():
            raise UserError(
                f"input path '{location}' is a cleanmix output folder without a data/ folder: its run has not "
                "finished. Finish it (run it again), or point input.path at the raw data."
            )
        root = path / "data" if is_cleanmix_output(path) else path
        files = _data_files(root, configured)
    elif path.is_file():
        files, root = [str(path)], path.parent
    elif glob.has_magic(location):
        files = sorted(p for p in glob.glob(location, recursive=True) if Path(p).is_file())
        root = Path(os.path.commonpath(files)) if files else Path(".")
        root = root.parent if root.is_file() else root
    else:
        raise UserError(f"input path '{location}' does not exist (relative paths are read from {Path.cwd()}).")
    _check_found(location, files, configured)
    return files, root


def _check_found(location: str, files: list[str], configured: str | None) -> None:
    if not files:
        raise UserError(
            f"input path '{location}' holds no *.parquet files, nor JSON Lines (*.jsonl, *.json, *.ndjson) or WARC/WET "
            f"(*.warc, *.wet) files, plain or .gz/.zst/.bz2{f' of input.format {configured}' if configured else ''}: "
            "there is nothing to process."
        )


def _store_files(location: str, configured: str | None, options: dict[str, Any] | None) -> tuple[list[str], str]:
    """`input_files` for a URL: the objects under a prefix, one object, or a glob; files inside a
    cleanmix output folder (one with its marker) only from its data/."""
    fs, key = check_bucket(location, options, "input.path")
    with store_errors(location, "input.path"):
        fs.invalidate_cache()  # listings cached by an earlier look are stale
        key = key.rstrip("/")
        if fs.isfile(key):
            return [url_of(fs, key)], url_of(fs, key.rsplit("/", 1)[0])
        if glob.has_magic(key):
            found = sorted(p for p in fs.glob(key) if fs.isfile(p))
            root = os.path.commonpath(found) if found else key.split("*", 1)[0].rsplit("/", 1)[0]
            root = root.rsplit("/", 1)[0] if root in found else root
        elif fs.isdir(key):
            found, root = sorted(fs.find(key)), key
        else:
            raise UserError(f"input path '{location}' does not exist: no object has that key or prefix.")
    outputs = sorted({p.rsplit("/", 1)[0] for p in found if p.rsplit("/", 1)[-1] == OUTPUT_MARKER})
    if root in outputs and not (json.loads(fs.cat_file(f"{root}/{OUTPUT_MARKER}") or b"{}") or {}).get("complete"):
        raise UserError(
            f"input path '{location}' is a cleanmix output folder whose run has not finished (its marker does not say "
            "complete; an object store's output is whole only then). Finish it (run it again), or point input.path at the raw data."
        )
    root = f"{root}/data" if root in outputs else root

    def wanted(path: str) -> bool:
        if not _is_input_name(path.rsplit("/", 1)[-1], configured):
            return False
        return not any(path.startswith(f"{out}/") and not path.startswith(f"{out}/data/") for out in outputs)

    return [url_of(fs, p) for p in found if wanted(p)], url_of(fs, root)


def _relative_name(path: str, root: Path | str) -> str:
    """A file's name relative to its input location (in generated ids and in errors)."""
    if isinstance(root, str):
        return path[len(root) + 1:] if path.startswith(root.rstrip("/") + "/") else path.rsplit("/", 1)[-1]
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else Path(path).name


def _data_files(folder: Path, configured: str | None) -> list[str]:
    """Every file of a known format under `folder` (of `input.format`, when set, by its extension),
    sorted; inside a nested cleanmix output folder, only under its data/."""
    files = []
    for parent, folders, names in os.walk(folder):
        if is_cleanmix_output(Path(parent)):
            folders[:] = ["data"] if "data" in folders else []
            continue
        files += [p for name in names if _is_input_name(name, configured) and os.path.isfile(p := os.path.join(parent, name))]
    return sorted(files)


def _is_input_name(name: str, configured: str | None) -> bool:
    """A file cleanmix reads as input: not hidden, of a known format (of `input.format`, when set)."""
    return not name.startswith(".") and (kind := format_of(name)) is not None and configured in (None, kind)


def plan_input(config: InputConfig, limit: int | None = None, columns: Collection[str] = frozenset(),
               added: Mapping[str, Stage | None] | None = None, text_maker: str | None = None) -> InputPlan:
    """Look at every file without reading its data (a Parquet footer, a JSON Lines file's first
    lines): units, row counts where known, and unreadable files early.

    `columns` must be in every file (a mapping names the stage that reads each, for the error);
    `added` (`PipelineConfig.output_columns()`) must not be."""
    units: list[Unit] = []
    all_files: list[str] = []
    types: dict[str, tuple[str, str, str]] = {}
    roots: list[str] = []
    skipped: dict[str, str] = {}
    schemas: dict[str, list[pa.Schema]] = {}
    total_rows: int | None = 0
    total_bytes: int | None = 0
    small: list[Slice] = []
    filled = 0.0
    orders = 0  # ORDER numbers given so far: one per unit, but one per run of row groups that is cut into several

    def flush_small(source: str | None) -> None:
        nonlocal filled, orders
        if small:
            units.append(Unit(len(units), source, tuple(small), orders))
            orders += 1
            small.clear()
            filled = 0.0

    for source, location in config.locations().items():
        files, root = input_files(location, config.format, config.storage_options)
        one_file = files == [location] if is_url(location) else Path(location).is_file()
        if not one_file:
            roots.append(str(root))
        all_files += files
        for path, surveyed in zip(files, _surveys(files, config)):
            kind = format_of(path, config.format)
            if kind is None:
                raise UserError(
                    f"input file {path}: cannot tell its format from its name (known: .parquet, .jsonl, .json, .ndjson, "
                    ".warc, .wet, plain or .gz/.zst/.bz2). Rename it, or set input.format: parquet | jsonl | warc."
                )
            reader = reader_for(kind)
            if isinstance(surveyed, UserError):
                raise surveyed
            if isinstance(surveyed, Exception):  # any unreadable file is the same user problem
                if config.on_error == "skip":
                    skipped[path] = one_line(surveyed)
                    continue
                raise UserError(
                    f"input file {path} is not a readable {reader.name} file ({one_line(surveyed)}). "
                    "Fix or remove it, or set input.on_error: skip to skip unreadable shards and count them."
                ) from None
            survey = surveyed
            _check_survey(path, survey, config, added or {}, types, columns, text_maker)
            schemas.setdefault(kind, []).append(survey.schema)
            name = _relative_name(path, root)
            name = f"{source}/{name}" if source is not None else name
            total_rows = None if total_rows is None or survey.rows is None else total_rows + survey.rows
            total_bytes = None if total_bytes is None or survey.text_bytes is None else total_bytes + survey.text_bytes
            pieces = [Slice(path, name, p.part, p.first_row, p.rows, kind, survey.schema) for p in survey.pieces]
            if len(pieces) == 1 and survey.small < 1:
                small.append(pieces[0])
                filled += survey.small
                if filled >= 1 or len(small) >= FILES_PER_UNIT:
                    flush_small(source)
                continue
            flush_small(source)  # units stay in file order: input order is what `keep: first` and the output follow
            for piece, surveyed_piece in zip(pieces, survey.pieces):
                orders += not surveyed_piece.within
                units.append(Unit(len(units), source, (piece,), orders - 1, surveyed_piece.within))
        flush_small(source)
    units = _one_schema_per_format(units, schemas)
    if limit is not None:
        units, total_rows = _limit(units, limit, config), limit if total_rows is None else min(total_rows, limit)
    return InputPlan(units, all_files, skipped, total_rows, total_bytes, roots)


def _surveys(files: list[str], config: InputConfig) -> Iterator[Survey | Exception | None]:
    """Each file's survey, or what surveying it raised (None: no known format), in file order;
    objects in a store several at once (`storage.map_paths`)."""

    def look(path: str) -> Survey | Exception | None:
        kind = format_of(path, config.format)
        if kind is None:
            return None
        try:
            return reader_for(kind).survey(path, config)
        except Exception as error:  # noqa: BLE001 - handed back to the planner, which names the file
            return error

    return map_paths(look, files)


def _check_survey(path: str, survey: Survey, config: InputConfig, added: Mapping[str, Stage | None],
                  types: dict[str, tuple[str, str, str]], columns: Collection[str], text_maker: str | None) -> None:
    check_columns(path, survey.schema, config, added, text_maker)
    check_types(path, survey.schema, config, types)
    missing = sorted(set(columns) - set(survey.schema.names))
    if missing:
        readers = sorted({columns[c] for c in missing}) if isinstance(columns, Mapping) else ["a stage of the pipeline"]
        raise UserError(
            f"input file {path} has no column {', '.join(repr(c) for c in missing)}, which {' and '.join(readers)} "
            f"reads (its columns: {', '.join(survey.schema.names)}). Point the stage at a column the input has "
            "(its `*_column` parameter), or add the column."
        )


def _one_schema_per_format(units: list[Unit], schemas: dict[str, list[pa.Schema]]) -> list[Unit]:
    """Formats without a schema of their own per file (JSON Lines) read every file with one schema:
    the union of what planning inferred, so a field missing from one file's first lines is null there."""
    unified = {kind: reader_for(kind).unify(found) for kind, found in schemas.items()}
    return [replace(u, slices=tuple(replace(s, read_as=unified[s.format]) for s in u.slices)) for u in units]


def _limit(units: list[Unit], limit: int, config: InputConfig) -> list[Unit]:
    """The units that hold the first `limit` rows, the last one cut short. Slices whose rows are
    not known before reading are read here, up to the rows still wanted (a quick run reads little)."""
    kept: list[Unit] = []
    left = limit
    for unit in units:
        slices = []
        for piece in unit.slices:
            if left <= 0:
                break
            rows = piece.rows if piece.rows is not None else _count_rows(piece, config, left)
            slices.append(replace(piece, rows=min(rows, left)))
            left -= rows
        if not slices:
            break
        kept.append(replace(unit, slices=tuple(slices)))
    return kept


def _count_rows(piece: Slice, config: InputConfig, wanted: int) -> int:
    rows = 0
    try:
        for table in reader_for(piece.format).read(piece, config, {}):
            rows += table.num_rows
            if rows >= wanted:
                break
    except DAMAGED:
        pass  # a damaged file: reading it in the run says so (or skips it)
    return rows


def read_unit(unit: Unit, config: InputConfig, skip: Collection[str] = (), tally: Tally | None = None) -> Iterator[pl.DataFrame]:
    """The unit's rows in batches, with canonical column names, a stable `id` and the `ORDER` key.

    Slices whose path is in `skip` are left out (their rows keep their numbers where known); a
    slice that cannot be read raises UnreadableSlice. Records a reader leaves out (a malformed JSON
    line with `on_error: skip`, a WARC record that is no page) are counted in `tally`. Batches of a
    unit's files share one schema (their own, unified), so a column that is all null in one file
    keeps its type from another. A unit with no rows still yields one empty batch, so its columns
    reach the output."""
    renames = config.renames()
    tally = {} if tally is None else tally
    slices = [s for s in unit.slices if s.path not in skip]
    schema = _unit_schema(slices)
    local, yielded = 0, False
    pending: list[pl.DataFrame] = []
    pending_rows = 0
    for piece in unit.slices:
        if piece.path in skip:
            local += piece.rows or 0
            continue
        own = schema  # a file without ids gets generated ones, not the nulls of a unified column
        if config.id_column in schema.names and piece.schema is not None and config.id_column not in piece.schema.names:
            own = schema.remove(schema.get_field_index(config.id_column))
        left = piece.rows
        try:
            for table in reader_for(piece.format).read(piece, config, tally):
                if left is not None and left <= 0:
                    break
                table = table.slice(0, left) if left is not None else table
                for batch in table.combine_chunks().to_batches(max_chunksize=config.batch_rows):
                    _check_utf8(batch, piece.format)
                    df = _canonical(pl.from_arrow(conform(pa.Table.from_batches([batch]), own.append(_POSITION_FIELD))),
                                    renames, unit, piece, local)  # type: ignore[arg-type]
                    pending.append(df)
                    pending_rows += df.height
                    if pending_rows >= config.batch_rows:
                        yield pl.concat(pending, how="diagonal_relaxed")
                        pending, pending_rows, yielded = [], 0, True
                    local += df.height
                    left = left - df.height if left is not None else None
        except DAMAGED as error:
            where = f"row groups {piece.part[0]}–{piece.part[-1]}" if piece.format == "parquet" and piece.part else (
                "its footer" if piece.format == "parquet" else f"bytes {piece.part[0]}–{piece.part[1]}" if piece.part else "")
            raise UnreadableSlice(piece.path, f"input file {piece.path} could not be read{f' ({where})' if where else ''}: "
                                  f"{one_line(error)}") from None
        local += left or 0
    if pending:  # the rows of small files, gathered: one batch, not one per file
        yield pl.concat(pending, how="diagonal_relaxed")
    elif not yielded and slices:
        empty = arrow_buffers.empty_table(schema.append(_POSITION_FIELD))
        yield _canonical(pl.from_arrow(empty), renames, unit, slices[-1], local)  # type: ignore[arg-type]


_POSITION_FIELD = pa.field(POSITION, pa.int64())


def _unit_schema(slices: list[Slice]) -> pa.Schema:
    found = [s.columns for s in slices if s.columns is not None]
    if not found:
        return pa.schema([])
    if len(found) == 1 or all(schema.equals(found[0]) for schema in found[1:]):
        return found[0]
    return pa.unify_schemas(found, promote_options="permissive")


POSITION_NAMES = {"parquet": "row", "jsonl": "line", "warc": "record"}


def _check_utf8(batch: pa.RecordBatch, kind: str) -> None:
    """Readers trust string columns to hold UTF-8; an invalid one would panic Polars later or pass
    into shards nobody can read. A bad batch raises ArrowInvalid: the unreadable-input path."""
    try:
        batch.validate(full=True)
    except pa.ArrowInvalid:
        positions = batch.column(POSITION).to_pylist()
        what = POSITION_NAMES[kind]
        for name, column in zip(batch.schema.names, batch.columns):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid as error:
                at = re.search(r"string index (\d+)", str(error))
                flat = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                where = f"{what} {positions[int(at.group(1))]}" if at and flat else f"{what}s {positions[0]}–{positions[-1]}"
                raise pa.ArrowInvalid(
                    f"column '{name}' holds text that is not valid UTF-8 at {where} of the file"
                    + (" (counting from 0)" if what != "line" else "")
                ) from None
        raise


def _canonical(df: pl.DataFrame, renames: dict[str, str], unit: Unit, piece: Slice, local: int) -> pl.DataFrame:
    """`local`: the batch's first row in its unit; each row's number in its file is in POSITION."""
    df = df.rename({k: v for k, v in renames.items() if k in df.columns})
    if TEXT not in df.columns:  # pages whose text a first stage writes (extract)
        df = df.with_columns(pl.lit(None, pl.String).alias(TEXT))
    if ID not in df.columns:
        df = df.with_columns((pl.lit(f"{piece.name}:") + pl.col(POSITION).cast(pl.String)).alias(ID))
    if unit.source is not None:
        df = df.with_columns(pl.lit(unit.source, pl.String).alias(SOURCE))
    return df.drop(POSITION).with_columns(order_of(unit.order_key, unit.within + local, df.height).alias(ORDER))


SCRATCH = "lz4"
"""Compression of the run's own scratch files (read once or twice, then gone): half zstd's cost to
write and to read, ~20% larger. Output shards are zstd."""


def write_parquet(table: pa.Table | pl.DataFrame, path: Path, dictionary: bool = True) -> None:
    """A scratch file, written to a temporary name, then renamed: readers see a whole file or none.
    `dictionary`: as for `ShardWriter`."""
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow()
    with _atomic(path) as tmp:
        pq.write_table(table, tmp, compression=SCRATCH, use_dictionary=dictionary)


def remove_in_background(folder: Path) -> None:
    """The scratch folder a decide is done with (a thousand small files), removed by a thread while the
    next pass runs: its unlinks need not hold up the run. It is renamed first, so its name is free at
    once; what the thread has not removed when the run ends goes with the run's scratch. (Not for a
    pass's rows: unlinked in a thread beside the output's compaction, they slowed it by 10–50% at 200 MB.)"""
    trash = folder.with_name(f"{folder.name}.removing")
    shutil.rmtree(trash, ignore_errors=True)  # an earlier attempt's
    folder.rename(trash)
    threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True).start()


def remove_scratch(paths: list[Path]) -> None:
    """Scratch files and folders (any of them may be gone already)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """A marker, a stats file or a page, written like a shard: whole or not at all."""
    with _atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_text(data: Any, indent: int | None = 2) -> str:
    """How cleanmix writes JSON files (markers, stats, manifests): the same bytes on disk and in a store.
    `indent=None` for the run's own work files that nobody reads: Python encodes indented JSON in Python,
    unindented in C (a unit's marker, with every stage's histograms, 6 ms → 1 ms)."""
    return json.dumps(data, indent=indent, ensure_ascii=False, default=str) + "\n"


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    write_text(path, json_text(data, indent))


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    yield tmp
    os.replace(tmp, path)


class ShardWriter:
    """Collects batches into one Parquet file under a temporary name; `close` renames it into place.
    A scratch file unless `compression` says otherwise (output shards: zstd).

    `dictionary=False` for files of distinct numbers (hashes, MinHash bands and shingles): Parquet's
    dictionary encoding would hash every value to find no repeats, ten times the cost of the write."""

    def __init__(self, path: Path, dictionary: bool = True, compression: str = SCRATCH) -> None:
        self.path = path
        self.dictionary = dictionary
        self.compression = compression
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None

    def write(self, rows: pl.DataFrame | pa.Table) -> None:
        table = rows.to_arrow() if isinstance(rows, pl.DataFrame) else rows
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression=self.compression, use_dictionary=self.dictionary)
        elif table.schema != self.schema:
            table = conform(table, self.schema)
        self.writer.write_table(table)

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
