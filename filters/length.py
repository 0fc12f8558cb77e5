"""Drop documents that are too short or too long, by characters and by lines."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from cleanmix.pipelines.stage import TEXT, Filter, Rule


class Length(Filter):
    type: Literal["length"] = "length"
    min_chars: int = Field(1, ge=0, description="fewest characters a document may have")
    max_chars: int | None = Field(None, ge=1, description="most characters (none: no limit)")
    min_lines: int = Field(0, ge=0, description="fewest non-empty lines")
    max_lines: int | None = Field(None, ge=1, description="most non-empty lines (none: no limit)")

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        return df.with_columns(
            text.str.len_chars().alias("length_chars"),
            text.str.count_matches(r"(?m)^[^\S\n]*\S").alias("length_lines"),
        )

    def rules(self) -> list[Rule]:
        chars, lines = pl.col("length_chars"), pl.col("length_lines")
        rules = [Rule("too_short", chars < self.min_chars, "length_chars", self.min_chars)]
        if self.max_chars is not None:
            rules.append(Rule("too_long", chars > self.max_chars, "length_chars", self.max_chars))
        rules.append(Rule("too_few_lines", lines < self.min_lines, "length_lines", self.min_lines))
        if self.max_lines is not None:
            rules.append(Rule("too_many_lines", lines > self.max_lines, "length_lines", self.max_lines))
        return rules
