"""Arrow arrays' buffers as NumPy views: what the compiled kernels and byte counts read.

Why not pyarrow's `to_numpy` or `pc` with a scalar: both import pandas (0.2 s of every run), and a
view of a buffer copies nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

LARGE = (pa.types.is_large_string, pa.types.is_large_binary, pa.types.is_large_list)
"""Types whose offsets are 64-bit."""


def offsets(array: pa.Array) -> np.ndarray:
    """A string, binary or list array's offsets (int32 or int64, as its type has them), as a view."""
    width = np.int64 if any(large(array.type) for large in LARGE) else np.int32
    buffer = array.buffers()[1]
    if buffer is None:  # (an empty array may have none)
        return np.zeros(1, width)
    return np.frombuffer(buffer, width)[array.offset : array.offset + len(array) + 1]


def data(array: pa.Array) -> np.ndarray:
    """A string or binary array's bytes (all of its data buffer: index it by `offsets`), as a view."""
    buffer = array.buffers()[2]
    return np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)


def texts(series: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text column as the compiled kernels read it: (int64 offsets, bytes, True where not null), views
    of one large_string array (Polars joins the chunks)."""
    array = series.cast(pl.String).to_arrow()
    return offsets(array), data(array), valid(array)


def valid(array: pa.Array) -> np.ndarray:
    """True where the array's value is not null."""
    if not array.null_count:
        return np.ones(len(array), bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(bool)


class _Exported:
    """An Arrow array behind the C data interface only."""

    def __init__(self, array: pa.Array) -> None:
        self.array = array

    def __arrow_c_array__(self, requested_schema: object | None = None) -> object:
        return self.array.__arrow_c_array__(requested_schema)


def series(name: str, array: pa.Array) -> pl.Series:
    """A kernel's Arrow array as a Polars Series, handed over by the C data interface (no copy): given a pyarrow
    array, Polars imports `pyarrow.compute` first (30 ms of a run's start)."""
    return pl.Series(name, _Exported(array))


def numbers(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """A NumPy array of numbers as an Arrow array (no copy), null where `valid` is False. `pa.array` imports pandas
    on its first call, whatever it is given (0.15 s of a run's start)."""
    values = np.ascontiguousarray(values)
    bitmap = None if valid is None or valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [bitmap, pa.py_buffer(values)])


def empty_table(schema: pa.Schema) -> pa.Table:
    """`schema.empty_table()`, which builds its columns through `pa.array` (see `numbers`)."""
    return pa.Table.from_arrays([pa.nulls(0, field.type) for field in schema], schema=schema)
