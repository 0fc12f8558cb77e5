"""Input formats: one reader per format, each with a plan-time look at a file and a read of a slice.

The planner (`shards.plan_input`) only ever asks a reader for a `Survey` of a file — its schema and
how it splits — and a worker only asks it for a slice's rows as Arrow tables. Every table a reader
yields carries `POSITION`: the row's number in its file (a Parquet row, a JSON Lines line, a WARC
record), from which generated ids `<name>:<position>` are made, so ids never depend on how the
input was cut into units.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.storage import open_input, parquet_source

if TYPE_CHECKING:
    from cleanmix.pipelines.config import InputConfig
    from cleanmix.pipelines.shards import Slice

POSITION = "_cm_position"
"""A row's number in its file, for generated ids and for errors that name a row or line."""

DAMAGED = (OSError, EOFError, zlib.error, zstandard.ZstdError, pa.ArrowException)
"""What reading a damaged file raises: the file is then an unreadable shard, named or skipped."""

Tally = dict[str, dict[str, int]]


def count(tally: Tally, path: str, why: str, n: int = 1) -> None:
    """`n` more records of `path` left out for `why`."""
    counts = tally.setdefault(path, {})
    counts[why] = counts.get(why, 0) + n
"""Records a reader left out, by file and by why (`summary.input.skipped_records`)."""


@dataclass(frozen=True)
class Piece:
    """A part of a file that one unit of work reads: row groups, or a byte range of whole lines."""

    part: tuple[int, ...]
    first_row: int
    """The file's row (Parquet) or line (JSON Lines, counting from 0) at which the piece starts."""
    rows: int | None
    """Rows in the piece, where the file says so without being read; None: known once read."""
    within: int = 0
    """Its first row in the part of the file whose rows are numbered together (`Unit.order`); 0: it starts one."""


@dataclass(frozen=True)
class Survey:
    """What planning learns of a file without reading its data."""

    schema: pa.Schema
    pieces: tuple[Piece, ...]
    rows: int | None
    text_bytes: int | None
    small: float
    """How much of a small-file group the file fills (≥ 1: a unit of its own)."""


class Reader(Protocol):
    name: str

    def survey(self, path: str, config: InputConfig) -> Survey: ...

    def read(self, piece: Slice, config: InputConfig, tally: Tally) -> Iterator[pa.Table]:
        """The piece's rows, each table with `POSITION`; raises OSError or ArrowException when the
        file is damaged (the caller names it), or `UnreadableSlice` with a message of its own."""
        ...

    def unify(self, schemas: list[pa.Schema]) -> pa.Schema | None:
        """One schema that every file of the format is read with (None: each file its own)."""
        ...


EXTENSIONS = {
    ".parquet": "parquet",
    ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".warc": "warc", ".wet": "warc",
}
COMPRESSIONS = (".gz", ".zst", ".bz2")


def format_of(path: str, configured: str | None = None) -> str | None:
    """The format of an input file: `input.format`, else its extension (under .gz/.zst/.bz2)."""
    if configured is not None:
        return configured
    name = Path(path).name.lower()
    for compression in COMPRESSIONS:
        if name.endswith(compression):
            name = name.removesuffix(compression)
            break
    return EXTENSIONS.get(Path(name).suffix)


def reader_for(kind: str) -> Reader:
    if kind == "parquet":
        return PARQUET
    if kind == "jsonl":
        from cleanmix.pipelines.jsonl import JSONL

        return JSONL
    if kind == "warc":
        from cleanmix.pipelines.warc import WARC

        return WARC
    raise UserError(f"unknown input format '{kind}': expected parquet, jsonl or warc.")


def open_stream(path: str, options: dict[str, Any] | None = None) -> BinaryIO:
    """A file's bytes (local, or an object read through fsspec), decompressed by its extension: .gz, .zst, .bz2, or none."""
    lower = path.lower()
    raw = open_input(path, options)
    if lower.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if lower.endswith(".bz2"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if lower.endswith(".zst"):
        return io.BufferedReader(ZstdStream(raw), 2**16)
    return raw


class ZstdStream(io.RawIOBase):
    """Zstandard frames one after another, decompressed; a file cut inside a frame raises EOFError
    (zstandard's own stream reader ends there silently: a shorter file, no error)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.zstd = raw, zstandard.ZstdDecompressor()
        self.frame = self.zstd.decompressobj()
        self.started = False
        self.out = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.out:
            data = self.raw.read(2**16)
            if not data:
                if self.started and not self.frame.eof:
                    raise EOFError("Compressed file ended before the end of its last zstd frame")
                return 0
            while data:
                if self.frame.eof:
                    self.frame = self.zstd.decompressobj()
                self.started = True
                self.out += self.frame.decompress(data)
                data = self.frame.unused_data if self.frame.eof else b""
        size = min(len(buffer), len(self.out))
        buffer[:size], self.out = self.out[:size], self.out[size:]
        return size

    def close(self) -> None:
        self.raw.close()
        super().close()


def compressed(path: str) -> bool:
    return path.lower().endswith(COMPRESSIONS)


UNIT_ROWS = 100_000
"""Rows numbered together (`ORDER`): runs of a Parquet file's row groups of at least this many rows."""
UNIT_TEXT_BYTES = 4 * 2**20
"""A unit of work holds about this much text, or one batch (`batch_rows`), whichever is more: a run
of row groups is cut into equal row ranges (inside row groups where need be), so that the workers
share a big file and finish together. Never less than a batch: every unit has a fixed cost (the
filters ~34 ms a batch, and its unit and scan files; measured: 26 units of 6,700 rows took 18% more
CPU than 9 of 20,000, benchmarks/speed.md). The
ranges keep their run's row numbers, so ORDER, and with it every output, is what whole runs give."""
PART_BATCH_ROWS = 4096
"""Rows decoded at a time for a piece that starts or ends inside a row group (little decoded past its end)."""
SMALL_FILE_ROWS = 256
SMALL_FILE_BYTES = 64 * 2**10
"""Consecutive small files (Parquet: fewer rows; JSON Lines, WARC: fewer bytes on disk) are grouped,
whole, into units of at least this size: a unit of work costs a task, a marker and a few files
(~20 ms), which would dominate a corpus of many tiny shards, while files of a few hundred rows stay
units of their own for parallelism."""


class Parquet:
    """Parquet: the footer gives the schema, rows and row groups; slices are runs of row groups."""

    name = "Parquet"

    def survey(self, path: str, config: InputConfig) -> Survey:
        meta = pq.ParquetFile(parquet_source(path, config.storage_options)).metadata
        schema = meta.schema.to_arrow_schema()
        text = schema.get_field_index(config.text_column)
        groups = [(meta.row_group(rg).num_rows, meta.row_group(rg).column(text).total_uncompressed_size if text >= 0 else 0)
                  for rg in range(meta.num_row_groups)]
        pieces: list[Piece] = []
        run: list[int] = []
        run_rows = first = row = 0
        for rg, (rows, _) in enumerate(groups):
            run.append(rg)
            run_rows += rows
            row += rows
            if run_rows >= UNIT_ROWS or rg == len(groups) - 1:
                pieces += _cut(run, first, groups, config.batch_rows)
                run, run_rows, first = [], 0, row
        if not pieces:
            pieces.append(Piece((), 0, 0))
        return Survey(schema, tuple(pieces), meta.num_rows, sum(n for _, n in groups), meta.num_rows / SMALL_FILE_ROWS)

    def read(self, piece: Slice, config: InputConfig, tally: Tally) -> Iterator[pa.Table]:
        """The piece's rows: its row groups, from its first row (a row group may hold several pieces)."""
        file = pq.ParquetFile(parquet_source(piece.path, config.storage_options))
        if not piece.part:
            return
        sizes = [file.metadata.row_group(rg).num_rows for rg in range(file.num_row_groups)]
        skip = piece.first_row - sum(sizes[: piece.part[0]])
        row, left = piece.first_row, piece.rows
        whole = not skip and left == sum(sizes[rg] for rg in piece.part)
        for batch in file.iter_batches(batch_size=config.batch_rows if whole else min(config.batch_rows, PART_BATCH_ROWS),
                                       row_groups=list(piece.part)):
            table = pa.Table.from_batches([batch]).slice(min(skip, batch.num_rows))
            skip -= batch.num_rows - table.num_rows
            table = table.slice(0, left) if left is not None else table
            if table.num_rows:
                positions = pl.Series(np.arange(row, row + table.num_rows, dtype=np.int64)).to_arrow()  # (pa.array imports pandas)
                yield table.append_column(POSITION, positions)
                row += table.num_rows
                left = left - table.num_rows if left is not None else None
            if left == 0:
                return

    def unify(self, schemas: list[pa.Schema]) -> pa.Schema | None:
        return None


def _cut(run: list[int], first: int, groups: list[tuple[int, int]], batch_rows: int) -> list[Piece]:
    """A run of row groups (from file row `first`) in equal row ranges of about UNIT_TEXT_BYTES of
    text, and at least `batch_rows` rows."""
    rows = sum(groups[rg][0] for rg in run)
    cuts = max(1, min(rows // batch_rows, -(-sum(groups[rg][1] for rg in run) // UNIT_TEXT_BYTES)))
    starts = first + np.cumsum([0] + [groups[rg][0] for rg in run])
    pieces = []
    for k in range(cuts):
        start, stop = first + rows * k // cuts, first + rows * (k + 1) // cuts
        part = tuple(rg for rg, a, b in zip(run, starts, starts[1:]) if a < stop and b > start) if cuts > 1 else tuple(run)
        pieces.append(Piece(part, start, stop - start, start - first))
    return pieces


PARQUET = Parquet()
