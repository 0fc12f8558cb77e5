"""An example third-party stage: declared under the `cleanmix.stages` entry points, it is listed by
`clean stages`, validated and run like a built-in one."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from cleanmix.pipelines.stage import TEXT, Filter, Rule


class Shouting(Filter):
    """Drop documents whose letters are mostly capitals (SPAM BANNERS, ALL-CAPS POSTS)."""

    type: Literal["shouting"] = "shouting"
    max_upper_share: float = Field(0.5, ge=0, le=1, description="largest share of cased letters that may be capitals")
    min_letters: int = Field(20, ge=1, description="a document with fewer cased letters is never judged")

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        letters = pl.col(TEXT).str.count_matches(r"[\p{Lu}\p{Ll}\p{Lt}]")
        upper = pl.col(TEXT).str.count_matches(r"[\p{Lu}\p{Lt}]")
        return df.with_columns(pl.when(letters >= self.min_letters).then(upper / letters).alias("shouting_upper_share"))

    def rules(self) -> list[Rule]:
        return [Rule.above("uppercase", "shouting_upper_share", self.max_upper_share)]
