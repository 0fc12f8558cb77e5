"""JSON Lines in and out: `.jsonl`/`.json`/`.ndjson`, plain or `.gz`/`.zst`/`.bz2`.

Reading parses blocks of whole lines with Arrow's JSON reader against one schema, inferred at plan
time from the first lines of every file: the fast path for the common case. A block that does not
parse is parsed again line by line, only to name the bad lines (not JSON, not an object, a value
that does not fit the schema, a field the first lines never had): the run stops naming the file and
line, or with `on_error: skip` the line is left out and counted. Rows are numbered by their line
(from 1, as editors count), so generated ids are `<name>:<line>` however the file is cut.

A big uncompressed file is cut into byte ranges at line boundaries so that workers share it; its
lines are counted once at plan time to number each range's first line. A compressed file cannot be
entered in the middle: it is one unit (small ones are grouped).
"""

from __future__ import annotations

import gzip
import io
import json
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.json as pj

from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.formats import POSITION, SMALL_FILE_BYTES, Piece, Survey, Tally, compressed, count, open_stream
from cleanmix.pipelines.storage import is_url
from cleanmix.pipelines.storage import size as file_size

if TYPE_CHECKING:
    from cleanmix.pipelines.config import InputConfig
    from cleanmix.pipelines.shards import Slice

INFER_LINES = 1000
INFER_BYTES = 4 * 2**20
"""The schema is inferred from each file's first lines (at most this many, or this many bytes)."""
UNIT_BYTES = 128 * 2**20
"""Uncompressed files larger than this are cut into ranges of about this size, at line boundaries."""
BLOCK_BYTES = 8 * 2**20
"""Bytes of whole lines parsed at once."""
MALFORMED = "malformed_line"


class JsonLines:
    name = "JSON Lines"

    def survey(self, path: str, config: InputConfig) -> Survey:
        chunks: list[bytes] = []
        held, ended = 0, False
        with open_stream(path, config.storage_options) as stream:
            while not ended and (held < INFER_BYTES or not any(b"\n" in c for c in chunks)):  # a line may be longer
                chunks.append(more := stream.read(2**16))
                held, ended = held + len(more), not more
        data = b"".join(chunks)
        cut = _nth_newline(data, INFER_LINES)
        if cut is None:
            cut = len(data) if ended else data.rfind(b"\n") + 1
        inferred = parse_block(data[:cut], 0, None, path, config, {}).drop_columns([POSITION]).schema
        schema = pa.schema([field.with_type(_as_written(field.type)) for field in inferred])
        text = schema.get_field_index(config.text_column)
        if text < 0 and not data[:cut].strip():
            schema = schema.append(pa.field(config.text_column, pa.string()))  # an empty file: nothing to infer
        elif text >= 0 and pa.types.is_null(schema.field(text).type):
            schema = schema.set(text, pa.field(config.text_column, pa.string()))  # no text in its first lines
        size = file_size(path, config.storage_options)
        pieces = _ranges(path, size, config.storage_options) if not compressed(path) and size > UNIT_BYTES else (Piece((), 0, None),)
        return Survey(schema, pieces, None, None, size / SMALL_FILE_BYTES)

    def read(self, piece: Slice, config: InputConfig, tally: Tally) -> Iterator[pa.Table]:
        schema = piece.columns
        explicit = pa.schema([field for field in schema if not pa.types.is_null(field.type)])
        for first_line, block in _blocks(piece.path, piece.part, config.storage_options):
            table = parse_block(block, piece.first_row + first_line, explicit, piece.path, config, tally)
            yield conform_nulls(table, schema)

    def unify(self, schemas: list[pa.Schema]) -> pa.Schema | None:
        return pa.unify_schemas(schemas, promote_options="permissive")


JSONL = JsonLines()


def _as_written(kind: pa.DataType) -> pa.DataType:
    """Arrow infers timestamps from date-like strings; they stay strings, as the file has them."""
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return pa.string()
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(_as_written(field.type)) for field in kind])
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_as_written(kind.value_type)))
    return kind


def conform_nulls(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns every sampled line had null (left out of the parse) come back as all-null columns."""
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select([*schema.names, POSITION])


def _nth_newline(data: bytes, n: int) -> int | None:
    """The end of the n-th line of `data`, or None when it has fewer."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    return int(ends[n - 1]) + 1 if len(ends) >= n else None


def _ranges(path: str, size: int, options: dict[str, Any] | None = None) -> tuple[Piece, ...]:
    """Byte ranges of about UNIT_BYTES at line boundaries, each with the number of lines before it."""
    if is_url(path):
        return _ranges_streamed(path, size, options)
    pieces = []
    start = lines = 0
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        while start < size:
            newline = data.find(b"\n", start + UNIT_BYTES - 1) if start + UNIT_BYTES < size else -1
            end = newline + 1 if newline >= 0 else size
            pieces.append(Piece((start, end), lines, None))
            for at in range(start, end, BLOCK_BYTES):
                lines += int(np.count_nonzero(np.frombuffer(data, np.uint8, min(BLOCK_BYTES, end - at), at) == 10))
            start = end
    return tuple(pieces)


def _ranges_streamed(path: str, size: int, options: dict[str, Any] | None) -> tuple[Piece, ...]:
    """`_ranges` for an object, which cannot be memory-mapped: the same cuts, in one sequential read."""
    pieces = []
    start = lines = at = seen = 0  # seen: newlines in [start, at)
    with open_stream(path, options) as stream:
        while block := stream.read(BLOCK_BYTES):
            ends = at + np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
            while start + UNIT_BYTES < size and len(after := ends[ends >= start + UNIT_BYTES - 1]):
                end = int(after[0]) + 1
                pieces.append(Piece((start, end), lines, None))
                lines += seen + int(np.count_nonzero((ends >= start) & (ends < end)))
                start, seen = end, 0
            seen += int(np.count_nonzero(ends >= start))
            at += len(block)
    if start < size:
        pieces.append(Piece((start, size), lines, None))
    return tuple(pieces)


def _blocks(path: str, part: tuple[int, ...], options: dict[str, Any] | None = None) -> Iterator[tuple[int, bytes]]:
    """Blocks of whole lines of the file (or of its byte range), each with the lines before it."""
    start, end = part if part else (0, None)
    with open_stream(path, options) as stream:
        if start:
            stream.seek(start)
        left = None if end is None else end - start
        carry, line = b"", 0
        while True:
            chunk = stream.read(BLOCK_BYTES if left is None else min(BLOCK_BYTES, left))
            if left is not None:
                left -= len(chunk)
            if not chunk:
                if carry:
                    yield line, carry
                return
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            yield line, block
            line += block.count(b"\n")


def parse_block(block: bytes, first_line: int, schema: pa.Schema | None, path: str, config: InputConfig, tally: Tally) -> pa.Table:
    """A block of whole lines as a table with each row's line number (from 1) in `POSITION`.

    `schema` None: inferred (plan time). A line that does not parse stops the run, or with
    `on_error: skip` is left out and counted in `tally`."""
    starts, ends = _lines(block)
    keep = ends > starts
    for index in np.flatnonzero(keep & (ends - starts < 8)):
        keep[index] = bool(block[starts[index]:ends[index]].strip())  # short lines may be blank: JSON skips them
    try:
        table = _parse(block, schema)
        if table.num_rows != int(keep.sum()):
            raise pa.ArrowInvalid("rows do not match lines")
    except pa.ArrowInvalid:
        for index in np.flatnonzero(keep):
            line = block[starts[index]:ends[index]]
            why = _why(line, schema) if line.strip() else None
            if not line.strip():
                keep[index] = False
            if why is None:
                continue
            where = f"input file {path}, line {first_line + index + 1}"
            if config.on_error != "skip":
                raise UserError(
                    f"{where}: {why}. Fix the line, or set input.on_error: skip to leave out such lines and count them "
                    "(summary.input.skipped_records)."
                ) from None
            count(tally, path, MALFORMED)
            keep[index] = False
        block = b"".join(block[starts[i]:ends[i]] + b"\n" for i in np.flatnonzero(keep))
        table = _parse(block, schema)
    return table.append_column(POSITION, arrow_buffers.numbers((first_line + 1 + np.flatnonzero(keep)).astype(np.int64)))


def _lines(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    if not block.endswith(b"\n") and block:
        ends = np.append(ends, len(block))
    starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else ends
    return starts, ends


def _parse(block: bytes, schema: pa.Schema | None) -> pa.Table:
    if not block.strip():
        return arrow_buffers.empty_table(schema or pa.schema([]))
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error") if schema is not None else None
    read = pj.ReadOptions(use_threads=False, block_size=max(len(block) + 1, 2**20))
    return pj.read_json(io.BytesIO(block), read_options=read, parse_options=parse)


def _why(line: bytes, schema: pa.Schema | None) -> str | None:
    """Why one line does not parse (None: it does)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as error:
        return f"not valid JSON ({one_line(error)})"
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object"
    if schema is not None and (new := [key for key in value if key not in schema.names]):
        return (f"field {new[0]!r} is not in the input's schema, which is inferred from the first {INFER_LINES:,} lines of each "
                f"file (fields: {', '.join(schema.names)})")
    try:
        _parse(line + b"\n", schema)
    except pa.ArrowInvalid as error:
        return f"a value does not fit the input's schema, inferred from the first {INFER_LINES:,} lines of each file ({one_line(error)})"
    return None


class JsonlShardWriter:
    """An output shard as compressed JSON Lines, written under a temporary name and renamed whole.

    Compression is deterministic (gzip without a time stamp or name, zstd at a fixed level), so the
    same rows give the same bytes."""

    def __init__(self, path: Path, compression: str) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.compression = compression
        self.file: BinaryIO | None = None
        self.stream: BinaryIO | None = None

    def write(self, rows: pl.DataFrame | pa.Table) -> None:
        df = rows if isinstance(rows, pl.DataFrame) else pl.from_arrow(rows)
        if self.stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in close/discard
            if self.compression == "gz":
                self.stream = gzip.GzipFile(filename="", fileobj=self.file, mode="wb", compresslevel=6, mtime=0)  # type: ignore[assignment]
            else:
                import zstandard

                self.stream = zstandard.ZstdCompressor(level=3).stream_writer(self.file, closefd=False)  # type: ignore[assignment]
        if df.height:  # type: ignore[union-attr]
            self.stream.write(df.write_ndjson().encode())  # type: ignore[union-attr]

    def close(self) -> None:
        if self.stream is None:
            self.write(pl.DataFrame())
        self.stream.close()  # type: ignore[union-attr]
        self.file.close()  # type: ignore[union-attr]
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.file.close()  # type: ignore[union-attr]
            self.stream = None
            self.tmp.unlink(missing_ok=True)
