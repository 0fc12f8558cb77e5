"""Make text comparable before anything measures it: one Unicode form, no control characters,
tidy whitespace, and (optionally) mojibake repaired with ftfy."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Literal

import polars as pl
from pydantic import Field

from cleanmix.filters.text_units import CONTROL_OR_ZERO_WIDTH
from cleanmix.pipelines.stage import TEXT, Mapper

UNTIDY = r"\r|[^\S\n]{2,}|[^\S\n ]| \n|\n |\n{3,}|^\s|\s$"
"""Anything the whitespace rewrite would change: finding it first spares the rewrite on tidy text."""


def _fix_mojibake(text: str | None) -> str | None:
    import ftfy

    return None if text is None else ftfy.fix_text(text, normalization=None)


def _tidy(text: pl.Expr) -> pl.Expr:
    return (
        text.str.replace_all(r"\r\n?", "\n")
        .str.replace_all(r"[^\S\n]+", " ")
        .str.replace_all(r" ?\n ?", "\n")
        .str.replace_all(r"\n{3,}", "\n\n")
        .str.strip_chars()
    )


def _rewrite(texts: pl.Series, needs: pl.Series, rewrite: Callable[[pl.Expr], pl.Expr]) -> tuple[pl.Series, int]:
    """Apply `rewrite` only where `needs` holds; returns the texts and how many changed."""
    rows = needs.fill_null(False).arg_true()
    if rows.is_empty():
        return texts, 0
    before = texts.gather(rows)
    after = pl.select(rewrite(pl.lit(before))).to_series()
    return texts.scatter(rows, after), int((before != after).sum())


class Normalize(Mapper):
    """Unicode form, control characters, whitespace; each change counted as `normalize:<kind>`."""

    type: Literal["normalize"] = "normalize"
    form: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field("NFC", description="Unicode normalization form (none: keep)")
    remove_control: bool = Field(True, description="drop control characters, zero-width spaces and BOMs")
    collapse_whitespace: bool = Field(True, description="runs of spaces/tabs → one space; 3+ newlines → 2; CRLF → LF; trim")
    fix_mojibake: bool = Field(False, description="repair mis-decoded text with ftfy (per document, slower)")

    def transform(self, df: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
        texts = df.get_column(TEXT)
        modified: dict[str, int] = {}
        if self.fix_mojibake:
            texts, modified["mojibake"] = _rewrite(
                texts, texts.is_not_null(), lambda t: t.map_elements(_fix_mojibake, return_dtype=pl.String)
            )
        if self.form:
            form = self.form
            unnormal = texts.str.contains(r"[^\x00-\x7F]") & texts.map_elements(
                lambda text: not unicodedata.is_normalized(form, text), return_dtype=pl.Boolean, skip_nulls=True
            )
            texts, modified["unicode"] = _rewrite(texts, unnormal, lambda t: t.str.normalize(form))
        if self.remove_control:
            has_control = texts.str.contains(CONTROL_OR_ZERO_WIDTH)
            texts, modified["control"] = _rewrite(texts, has_control, lambda t: t.str.replace_all(CONTROL_OR_ZERO_WIDTH, ""))
        if self.collapse_whitespace:
            texts, modified["whitespace"] = _rewrite(texts, texts.str.contains(UNTIDY), _tidy)
        return df.with_columns(texts.alias(TEXT)), {f"{self.label}:{kind}": n for kind, n in modified.items()}
