"""FineWeb's quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.3).

Pages where few lines end a sentence, most lines are short, lines repeat, or there is a line
break every few words are menus, lists and boilerplate. Sentence ends are counted in every script
(`。！？`), also when closing quotes follow (`said.”`, `。」`) or a Chinese credit (`。（新华社）`): the
sentence still ends there. Lines of zero-width spaces are blank. Words are script-aware tokens.
The per-line counts are taken by a compiled kernel (`_lines.c`), one pass per document.

Pages that are mostly CJK get FineWeb-2's multilingual settings (its README, "Data Filtering",
and configs/cmn_Hani.yml): no short-line rule, 10% of characters in repeated lines, and 10.6% of
lines ending a sentence. Its `new_line_ratio` for Chinese (0.178) counts the words of a word
segmenter; here each Han character is a token, two or three to a word, so the English 0.3 stays.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters._lines import line_counts
from cleanmix.filters.text_units import CJK_CHARS, TOKEN_LISTS, cjk_limit, cjk_share, token_counts
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "fineweb_quality_"


class FinewebQuality(Filter):
    type: Literal["fineweb_quality"] = "fineweb_quality"
    shared: ClassVar = (TOKEN_LISTS, CJK_CHARS)
    min_line_punct: float = Field(0.12, ge=0, le=1, description="smallest share of non-blank lines ending a sentence")
    max_short_lines: float = Field(0.67, ge=0, le=1, description="largest share of non-blank lines that are short")
    short_line_chars: int = Field(30, ge=0, description="a line of at most this many columns is short (CJK characters are 2)")
    max_dup_line_chars: float = Field(0.01, ge=0, le=1, description="largest share of characters in repeated lines")
    max_newlines_per_word: float = Field(0.3, ge=0, description="most line breaks per word (lists)")
    cjk_share: float = Field(0.5, ge=0, le=1, description="a page where at least this share of tokens are CJK characters is a CJK page")
    cjk_min_line_punct: float = Field(0.106, ge=0, le=1, description="min_line_punct on CJK pages (FineWeb-2's cmn_Hani value)")
    cjk_max_short_lines: float = Field(1.0, ge=0, le=1, description="max_short_lines on CJK pages (FineWeb-2 dropped the rule)")
    cjk_max_dup_line_chars: float = Field(0.1, ge=0, le=1, description="max_dup_line_chars on CJK pages (FineWeb-2's value)")

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        offsets, data, valid = arrow_buffers.texts(df[TEXT])
        counts = np.empty((6, len(valid)), np.int64)
        line_counts(offsets, data, valid, self.short_line_chars, counts)
        lines, punct, short, dup_chars, breaks, chars = (pl.Series(row) for row in counts)
        n_tokens = token_counts(df)  # (null for a null text, as its line breaks and characters are)
        return df.with_columns(
            (punct / lines).alias(P + "line_punct"),
            (short / lines).alias(P + "short_lines"),
            (dup_chars / chars.scatter(np.flatnonzero(~valid), None)).alias(P + "dup_line_chars"),
            (breaks / n_tokens).alias(P + "newlines_per_word"),
            cjk_share(df, n_tokens).alias(P + "cjk_share"),
            (lines == 0).alias(P + "empty"),
        )

    def rules(self) -> list[Rule]:
        def limit(english: float, cjk: float) -> pl.Expr:
            return cjk_limit(P + "cjk_share", self.cjk_share, english, cjk)

        return [
            Rule("empty", pl.col(P + "empty"), P + "empty"),
            Rule.below("line_punct_ratio", P + "line_punct", self.min_line_punct, limit(self.min_line_punct, self.cjk_min_line_punct)),
            Rule.above("short_line_ratio", P + "short_lines", self.max_short_lines, limit(self.max_short_lines, self.cjk_max_short_lines)),
            Rule.above(
                "char_dup_ratio", P + "dup_line_chars", self.max_dup_line_chars, limit(self.max_dup_line_chars, self.cjk_max_dup_line_chars)
            ),
            Rule.above("list_ratio", P + "newlines_per_word", self.max_newlines_per_word),
        ]
