"""Word salad: real words in random order (spun SEO text, shuffled or machine-mangled pages).

It passes every published rule: the words, their lengths, the stop words and even the periods
are real. What it breaks is the sentence: in cased scripts a sentence starts with a capital,
so after `. ` comes an upper-case letter nearly always in prose (the median page has no
exception; abbreviations such as `e.g. the` make a few), while in salad the word after a period
is any word, mostly lower-case. Caseless scripts (Chinese, Japanese, Arabic...) are not measured.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from pipelines.stage import TEXT, Filter, Rule

P = "word_salad_"
AFTER_END = r"[.!?][\"'”’)]?\s+"


class WordSalad(Filter):
    type: Literal["word_salad"] = "word_salad"
    max_lowercase_starts: float = Field(0.5, ge=0, le=1, description="largest share of sentences (after . ! ?) starting lower-case")
    min_sentence_starts: int = Field(5, ge=1, description="the rule applies from this many sentence starts with a letter")

    def measure(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        lower = text.str.count_matches(AFTER_END + r"\p{Ll}")
        starts = lower + text.str.count_matches(AFTER_END + r"[\p{Lu}\p{Lt}]")
        return df.with_columns(pl.when(starts >= self.min_sentence_starts).then(lower / starts).alias(P + "lowercase_starts"))

    def rules(self) -> list[Rule]:
        limit = self.max_lowercase_starts
        return [Rule("lowercase_starts", pl.col(P + "lowercase_starts") > limit, P + "lowercase_starts", limit)]
