"""Character repetition without word boundaries: `哈哈哈哈哈哈`, `买买买买`, `buybuybuybuy`, `!!!!`.

Gopher's repetition rules count repeated lines and word n-grams; a run of one short unit inside
a line (common in Chinese and Japanese spam and in binary junk) escapes them. Here a character
is "repeated" when it equals the character `period` places before it, for a period of 1 to
`max_period`, along a stretch that repeats the unit at least `min_repeats` times. Spaces do not
count, so indentation and aligned tables are not repetition. The whole batch is one NumPy array
of code points, and only the positions that repeat are looked at: no per-document Python.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters.text_units import code_points
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "char_repetition_"
SPACES = (0xA0, 0x3000)
"""Spaces above U+0020 (no-break, ideographic); everything at or below it is a space or control."""


def _runs(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the runs of consecutive integers in a sorted array."""
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = positions[np.concatenate([[0], breaks])]
    return starts, np.diff(np.concatenate([[0], breaks, [len(positions)]]))


def repetition(texts: pl.Series, max_period: int, min_repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Per document: characters inside repeated-unit stretches, and the longest such stretch."""
    points, offsets = code_points(texts, gap=max_period)  # no comparison reaches into the previous document
    docs = len(offsets)
    visible = (points > 0x20) & (points != SPACES[0]) & (points != SPACES[1])
    begins, ends, longest = [], [], np.zeros(docs, dtype=np.int64)
    for period in range(1, max_period + 1):
        same = np.flatnonzero((points[period:] == points[:-period]) & visible[period:])
        if not len(same):
            continue
        starts, runs = _runs(same)
        long_enough = runs >= period * (min_repeats - 1)
        starts, stretch = starts[long_enough], runs[long_enough] + period
        begins.append(starts)
        ends.append(starts + stretch)  # the unit itself, then the characters equal to it
        np.maximum.at(longest, np.searchsorted(offsets, starts, side="right") - 1, stretch)
    covered = np.zeros(docs)
    begin, end = np.concatenate([[], *begins]).astype(np.int64), np.concatenate([[], *ends]).astype(np.int64)
    if len(begin):
        order = np.argsort(begin, kind="stable")
        begin, end = begin[order], end[order]
        reach = np.maximum.accumulate(end)
        first = np.concatenate([[True], begin[1:] >= reach[:-1]])  # a stretch that overlaps none before it
        seg_begin = begin[first]
        seg_end = np.maximum.reduceat(end, np.flatnonzero(first))
        covered = np.bincount(np.searchsorted(offsets, seg_begin, side="right") - 1, weights=seg_end - seg_begin, minlength=docs)
    return covered, longest


class CharRepetition(Filter):
    type: Literal["char_repetition"] = "char_repetition"
    max_period: int = Field(8, ge=1, le=64, description="longest repeated unit, in characters")
    min_repeats: int = Field(4, ge=2, description="a unit must repeat at least this many times in a row")
    max_repeated: float = Field(0.2, ge=0, le=1, description="largest share of characters inside repeated-unit stretches")
    max_stretch: int = Field(200, ge=1, description="longest repeated-unit stretch, in characters")
    min_chars: int = Field(10, ge=0, description="the share rule applies from this many characters")

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        chars, longest = repetition(df[TEXT], self.max_period, self.min_repeats)
        size = pl.col(TEXT).str.len_chars()
        return df.with_columns(
            pl.when(size >= self.min_chars).then(pl.Series(chars) / size).alias(P + "repeated"),
            pl.Series(P + "longest", longest),
        )

    def rules(self) -> list[Rule]:
        return [
            Rule.above("repeated_chars", P + "repeated", self.max_repeated),
            Rule.above("long_stretch", P + "longest", self.max_stretch),
        ]
