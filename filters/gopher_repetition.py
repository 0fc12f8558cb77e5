"""Gopher's repetition rules (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams.

Spam and boilerplate repeat; prose does not. The n-grams are over script-aware tokens (a Han
character is a token), so the rules see repetition in Chinese too. Fractions are of the
document's characters, as published. A character n-gram is shorter than a word n-gram, so
documents that are mostly CJK have their own n-gram limits: the published ones, raised to the
99.5th percentile of edited Chinese news (People's Daily 1998, 12-paragraph documents). Lines and
paragraphs are compared by a compiled kernel (`_lines.c`), the n-gram tables built by another
(`_repetition.c`), one document at a time, so no per-document Python runs.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters._lines import repeated_parts
from cleanmix.filters._repetition import ngram_repetition
from cleanmix.filters.text_units import CJK_CHARS, TOKEN_LISTS, cjk_limit, cjk_share
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "gopher_repetition_"
ZERO_WIDTH = r"^[\s\p{Cf}]*\p{Cf}[\s\p{Cf}]*$"
"""A line of zero-width characters (maybe among spaces). Lines of spaces alone stay lines, as in
the reference code, which splits on line breaks only."""


def _duplicates(texts: tuple[np.ndarray, np.ndarray, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """Per document: the share of its paragraphs (`name` "para") or lines ("line") that repeat an earlier one, and
    the characters in them (`_lines.c`). Paragraphs are split at blank lines after stripping, lines at line breaks.
    Invisible paragraphs and zero-width lines (ZERO_WIDTH) are not parts: pages put zero-width spaces between
    paragraphs, and the reference code, which does not see them as space, counts each as a repeat."""
    offsets, data, valid = texts
    frac, chars = np.empty(len(valid)), np.empty(len(valid), np.int64)
    repeated_parts(offsets, data, valid, name == "para", frac, chars)
    return {f"{P}dup_{name}_frac": frac, f"_dup_{name}_chars": chars}


def _ngram_fractions(toks: pl.Series, top_ns: list[int], dup_ns: list[int]) -> dict[str, np.ndarray]:
    """Characters of each document's most frequent n-gram (times its count, joined with spaces)
    and characters covered by n-grams seen earlier in the document (scanning left to right and
    jumping past each repeat, as Gopher's reference code does): `_repetition.c`, one pass per document."""
    lists = toks.to_arrow()  # (one array, whatever the chunks)
    strings = lists.values
    top = np.zeros((len(top_ns), len(lists)), np.int64)
    dup = np.zeros((len(dup_ns), len(lists)), np.float64)
    ngram_repetition(arrow_buffers.offsets(lists), arrow_buffers.offsets(strings), arrow_buffers.data(strings), top_ns, dup_ns, top, dup)
    return {f"top_{n}": row for n, row in zip(top_ns, top)} | {f"dup_{n}": row for n, row in zip(dup_ns, dup)}


TopN = Annotated[int, Field(ge=2, le=4)]
DupN = Annotated[int, Field(ge=5, le=10)]
"""n-gram sizes as plain ints, so they survive the round trip through the resolved pipeline.yaml."""


class GopherRepetition(Filter):
    type: Literal["gopher_repetition"] = "gopher_repetition"
    shared: ClassVar = (TOKEN_LISTS, CJK_CHARS)
    max_dup_para_frac: float = Field(0.3, ge=0, le=1, description="largest share of paragraphs that repeat an earlier one")
    max_dup_para_char_frac: float = Field(0.2, ge=0, le=1, description="largest share of characters in repeated paragraphs")
    max_dup_line_frac: float = Field(0.3, ge=0, le=1, description="largest share of lines that repeat an earlier one")
    max_dup_line_char_frac: float = Field(0.2, ge=0, le=1, description="largest share of characters in repeated lines")
    max_top_ngram_frac: dict[TopN, float] = Field(
        {2: 0.20, 3: 0.18, 4: 0.16},
        description="n (2..4) → largest character share of the most frequent n-gram; omit n to skip it",
    )
    max_dup_ngram_frac: dict[DupN, float] = Field(
        {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n (5..10) → largest character share covered by repeated n-grams; omit n to skip it",
    )

    cjk_share: float = Field(
        0.5, ge=0, le=1, description="a document with at least this share of CJK-character tokens is measured by the cjk_ limits"
    )
    cjk_max_top_ngram_frac: dict[TopN, float] = Field(
        {2: 0.20, 3: 0.22, 4: 0.20}, description="the top n-gram limits for CJK documents (n-grams of characters)"
    )
    cjk_max_dup_ngram_frac: dict[DupN, float] = Field(
        {5: 0.30, 6: 0.25, 7: 0.22, 8: 0.20, 9: 0.18, 10: 0.16},
        description="the repeated n-gram limits for CJK documents (n-grams of characters)",
    )

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        size = text.str.len_chars().cast(pl.Float64)
        texts = arrow_buffers.texts(df[TEXT])
        parts = _duplicates(texts, "para") | _duplicates(texts, "line")
        toks = TOKEN_LISTS.of(df)
        top_ns = sorted({*self.max_top_ngram_frac, *self.cjk_max_top_ngram_frac})
        dup_ns = sorted({*self.max_dup_ngram_frac, *self.cjk_max_dup_ngram_frac})
        grams = _ngram_fractions(toks, top_ns, dup_ns)
        measured = pl.concat([df, pl.DataFrame(parts | grams)], how="horizontal")
        return measured.with_columns(
            (pl.col("_dup_para_chars") / size).alias(P + "dup_para_char_frac"),
            (pl.col("_dup_line_chars") / size).alias(P + "dup_line_char_frac"),
            *((pl.col(f"top_{n}") / size).alias(f"{P}top_{n}_gram") for n in top_ns),
            *((pl.col(f"dup_{n}") / size).alias(f"{P}dup_{n}_gram") for n in dup_ns),
            cjk_share(df, toks.list.len()).alias(P + "cjk_share"),
        ).drop("_dup_para_chars", "_dup_line_chars", *grams)

    def rules(self) -> list[Rule]:
        rules = [Rule("empty", pl.col(TEXT).str.contains(r"^\s*$"))]
        rules += [
            Rule.above(name, P + name, limit)
            for name, limit in (
                ("dup_para_frac", self.max_dup_para_frac),
                ("dup_para_char_frac", self.max_dup_para_char_frac),
                ("dup_line_frac", self.max_dup_line_frac),
                ("dup_line_char_frac", self.max_dup_line_char_frac),
            )
        ]
        for kind, limits, cjk_limits in (
            ("top", self.max_top_ngram_frac, self.cjk_max_top_ngram_frac),
            ("dup", self.max_dup_ngram_frac, self.cjk_max_dup_ngram_frac),
        ):
            for n in sorted({*limits, *cjk_limits}):
                name, limit = f"{kind}_{n}_gram", limits.get(n)
                rules.append(Rule.above(name, P + name, limit, cjk_limit(P + "cjk_share", self.cjk_share, limit, cjk_limits.get(n))))
        return rules
