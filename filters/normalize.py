"""Make text comparable before anything measures it: one Unicode form, no control characters,
tidy whitespace, and (optionally) mojibake repaired with ftfy."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from pipelines.stage import TEXT, Mapper

CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]"
"""C0 controls except tab/newline/CR, DEL, zero-width space and BOM."""


def _fix_mojibake(text: str | None) -> str | None:
    import ftfy

    return None if text is None else ftfy.fix_text(text, normalization=None)


class Normalize(Mapper):
    type: Literal["normalize"] = "normalize"
    form: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field("NFC", description="Unicode normalization form (none: keep)")
    remove_control: bool = Field(True, description="drop control characters, zero-width spaces and BOMs")
    collapse_whitespace: bool = Field(True, description="runs of spaces/tabs → one space; 3+ newlines → 2; CRLF → LF; trim")
    fix_mojibake: bool = Field(False, description="repair mis-decoded text with ftfy (per document, slower)")

    def transform(self, df: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
        steps: list[tuple[str, pl.Expr]] = []
        if self.fix_mojibake:
            steps.append(("mojibake", pl.col(TEXT).map_elements(_fix_mojibake, return_dtype=pl.String)))
        if self.form:
            steps.append(("unicode", pl.col(TEXT).str.normalize(self.form)))
        if self.remove_control:
            steps.append(("control", pl.col(TEXT).str.replace_all(CONTROL, "")))
        if self.collapse_whitespace:
            collapsed = (
                pl.col(TEXT)
                .str.replace_all(r"\r\n?", "\n")
                .str.replace_all(r"[^\S\n]+", " ")
                .str.replace_all(r" ?\n ?", "\n")
                .str.replace_all(r"\n{3,}", "\n\n")
                .str.strip_chars()
            )
            steps.append(("whitespace", collapsed))
        modified: dict[str, int] = {}
        for kind, expr in steps:
            before = df.get_column(TEXT)
            df = df.with_columns(expr.alias(TEXT))
            modified[f"{self.label}:{kind}"] = int((before != df.get_column(TEXT)).sum())
        return df, modified
