"""Gopher's quality rules (Rae et al. 2021, "Scaling Language Models", appendix A, table A1).

The published English defaults, with tokens counted per script (filters/text_units.py): a Han or
kana character is a word, so Chinese documents are measured instead of failing every rule. Mean
word length is a property of alphabetic words; it is measured on the non-CJK words and checked
only on documents that are mostly not CJK.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from filters.text_units import CJK_CHAR, HAS_LETTER, HAS_WORD_CHAR, STOP_WORDS_EN, STOP_WORDS_ZH, lines, tokens
from pipelines.stage import TEXT, Filter, Rule

P = "gopher_quality_"


class GopherQuality(Filter):
    type: Literal["gopher_quality"] = "gopher_quality"
    min_words: int = Field(50, ge=0, description="fewest words (a CJK character counts as a word)")
    max_words: int = Field(100_000, ge=1, description="most words")
    min_mean_word_length: float = Field(3.0, ge=0, description="shortest mean length of non-CJK words, in characters")
    max_mean_word_length: float = Field(10.0, ge=0, description="longest mean length of non-CJK words")
    max_cjk_share_for_word_length: float = Field(
        0.5, ge=0, le=1, description="word-length rules apply only where CJK characters are at most this share of words"
    )
    max_hash_ratio: float = Field(0.1, ge=0, description="most '#' per token")
    max_ellipsis_ratio: float = Field(0.1, ge=0, description="most ellipses ('...', '…') per token")
    max_bullet_lines: float = Field(0.9, ge=0, le=1, description="largest share of lines starting with a bullet (•, -)")
    max_ellipsis_lines: float = Field(0.3, ge=0, le=1, description="largest share of lines ending with an ellipsis")
    min_alpha_words: float = Field(0.8, ge=0, le=1, description="smallest share of words holding a letter")
    alpha_share_of: Literal["words", "tokens"] = Field(
        "words", description="words: punctuation marks are not words (Gopher); tokens: they are (datatrove, spaCy tokens)"
    )
    min_stop_words: int = Field(2, ge=0, description="fewest distinct stop words present")
    stop_words: list[str] = Field(
        STOP_WORDS_EN + STOP_WORDS_ZH, description="stop words (Gopher's English eight, Chinese function characters and FineWeb-2's cmn_Hani list)"
    )

    def measure(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        toks, words, n_lines = pl.col("_toks"), pl.col("_words"), pl.col("_lines")
        n_tokens = toks.list.len()
        is_cjk = pl.element().str.contains(f"^{CJK_CHAR}$")
        alpha_words = words.list.eval(pl.element().filter(~is_cjk))
        return (
            df.with_columns(
                tokens(text).alias("_toks"),
                lines(text).list.len().alias("_lines"),
            )
            .with_columns(toks.list.eval(pl.element().filter(pl.element().str.contains(HAS_WORD_CHAR))).alias("_words"))
            .with_columns(
                words.list.len().alias(P + "words"),
                (words.list.eval(is_cjk.cast(pl.UInt32)).list.sum() / words.list.len()).alias(P + "cjk_share"),
                alpha_words.list.eval(pl.element().str.len_chars()).list.mean().alias(P + "mean_word_length"),
                (text.str.count_matches("#", literal=True) / n_tokens).alias(P + "hash_ratio"),
                (text.str.count_matches(r"\.\.\.|…") / n_tokens).alias(P + "ellipsis_ratio"),
                (text.str.count_matches(r"(?m)^[^\S\n]*[•\-]") / n_lines).alias(P + "bullet_lines"),
                (text.str.count_matches(r"(?m)(?:\.\.\.|…)[^\S\n]*$") / n_lines).alias(P + "ellipsis_lines"),
                (toks if self.alpha_share_of == "tokens" else words)
                .list.eval(pl.element().str.contains(HAS_LETTER).cast(pl.UInt32))
                .list.mean()
                .alias(P + "alpha_words"),
                toks.list.set_intersection(pl.lit(self.stop_words, pl.List(pl.String))).list.len().alias(P + "stop_words"),
            )
            .drop("_toks", "_words", "_lines")
        )

    def rules(self) -> list[Rule]:
        m = {name: pl.col(P + name) for name in ("words", "mean_word_length", "hash_ratio", "ellipsis_ratio")}
        alphabetic = pl.col(P + "cjk_share") <= self.max_cjk_share_for_word_length
        return [
            Rule("too_few_words", m["words"] < self.min_words, P + "words", self.min_words),
            Rule("too_many_words", m["words"] > self.max_words, P + "words", self.max_words),
            Rule("short_words", alphabetic & (m["mean_word_length"] < self.min_mean_word_length), P + "mean_word_length", self.min_mean_word_length),
            Rule("long_words", alphabetic & (m["mean_word_length"] > self.max_mean_word_length), P + "mean_word_length", self.max_mean_word_length),
            Rule("hashes", m["hash_ratio"] > self.max_hash_ratio, P + "hash_ratio", self.max_hash_ratio),
            Rule("ellipses", m["ellipsis_ratio"] > self.max_ellipsis_ratio, P + "ellipsis_ratio", self.max_ellipsis_ratio),
            Rule("bullet_lines", pl.col(P + "bullet_lines") > self.max_bullet_lines, P + "bullet_lines", self.max_bullet_lines),
            Rule("ellipsis_lines", pl.col(P + "ellipsis_lines") > self.max_ellipsis_lines, P + "ellipsis_lines", self.max_ellipsis_lines),
            Rule("few_alpha_words", pl.col(P + "alpha_words") < self.min_alpha_words, P + "alpha_words", self.min_alpha_words),
            Rule("few_stop_words", pl.col(P + "stop_words") < self.min_stop_words, P + "stop_words", self.min_stop_words),
        ]
