"""The NumPy views of Arrow buffers that the kernels and byte counts read, against pyarrow's own answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cleanmix.pipelines import arrow_buffers

VALUES = ["ab", None, "é", "", None, "xyz"] * 3


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()])
@pytest.mark.parametrize(("start", "stop"), [(0, 18), (1, 10), (4, 4), (17, 18)])
def test_views_are_pyarrows_values(kind: pa.DataType, start: int, stop: int) -> None:
    array = pa.array(VALUES, type=kind).slice(start, stop - start)
    offsets, data, valid = arrow_buffers.offsets(array), arrow_buffers.data(array), arrow_buffers.valid(array)
    assert valid.tolist() == [v is not None for v in VALUES[start:stop]]
    lengths = np.where(valid, np.diff(offsets), 0)
    assert lengths.tolist() == pc.binary_length(array).fill_null(0).to_pylist()
    texts = [bytes(data[a:b]) for a, b, ok in zip(offsets[:-1], offsets[1:], valid) if ok]
    assert texts == [v.encode() for v in VALUES[start:stop] if v is not None]


def test_list_offsets_and_an_empty_array() -> None:
    lists = pa.array([["a"], [], ["b", "c"]], type=pa.large_list(pa.string())).slice(1)
    assert arrow_buffers.offsets(lists).tolist() == [1, 1, 3]
    empty = pa.array([], type=pa.large_string())
    assert arrow_buffers.offsets(empty).tolist() == [0] and arrow_buffers.data(empty).size == 0


def test_a_text_column_of_chunks_slices_and_nulls() -> None:
    """What the text kernels take from a Polars column: one array's int64 offsets, bytes and non-null mask."""
    series = pl.concat([pl.Series("text", VALUES[:7]), pl.Series("text", VALUES[7:])], rechunk=False).slice(2, 12)
    offsets, data, valid = arrow_buffers.texts(series)
    assert offsets.dtype == np.int64 and valid.tolist() == [v is not None for v in VALUES[2:14]]
    assert [bytes(data[a:b]).decode() if ok else None for a, b, ok in zip(offsets[:-1], offsets[1:], valid)] == VALUES[2:14]
