"""Gopher's quality rules (Rae et al. 2021, "Scaling Language Models", appendix A, table A1).

The published English defaults, with tokens counted per script (filters/text_units.py): a Han or
kana character is a word, so Chinese documents are measured instead of failing every rule. Mean
word length is a property of alphabetic words; it is measured on the non-CJK words and checked
only on documents that are mostly not CJK. The stop-word rule ("at least two of the following
English words: the, be, to, of, and, that, have, with") counts distinct words in any case: `The`
opens most English sentences. datatrove matches the exact case (`stop_words_case_sensitive`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters._lines import gopher_text_counts
from cleanmix.filters._tokens import token_measures
from cleanmix.filters.text_units import STOP_WORDS_EN, STOP_WORDS_ZH, TOKEN_LISTS
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "gopher_quality_"
MEASURES = ("tokens", "words", "cjk", "letters", "alpha_chars", "stop_words")
"""The kernel's rows of per-document counts, in its order."""


def _token_counts(tokens: pl.Series, stop_words: list[str], any_case: bool = True) -> dict[str, pl.Series]:
    """Per document: tokens, words (tokens with a letter or digit), CJK characters, tokens with a
    letter, characters of the non-CJK words, distinct stop words (null without text). One pass over each
    document's tokens by the compiled kernel (`token_measures` in _tokens.c), reading Polars' string views;
    the few short tokens whose lowercase needs more than A-Z → a-z are lowercased by Polars."""
    lists = tokens.to_arrow(compat_level=pl.CompatLevel.newest())  # (one array, whatever the chunks)
    views = lists.values
    if views.null_count:
        raise ValueError("a token list holds a null token")
    targets = list(dict.fromkeys(w.lower() if any_case else w for w in stop_words))
    encoded = [w.encode() for w in targets]
    target_offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)

    def resolve(folded: list[str]) -> np.ndarray:
        """The kernel's tokens with non-ASCII case, lowercased by Polars: each one's target (-1: none)."""
        lowered = pl.Series(folded, dtype=pl.String).str.to_lowercase()
        return lowered.replace_strict(targets, list(range(len(targets))), default=-1, return_dtype=pl.Int64).to_numpy()

    out = np.zeros((len(MEASURES), len(lists)), np.uint32)
    validity = lists.buffers()[0] if lists.null_count else None
    data = tuple(views.buffers()[2:])
    view_buffer = views.buffers()[1]
    token_measures(
        arrow_buffers.offsets(lists), validity, lists.offset, view_buffer if view_buffer is not None else b"", views.offset, data,
        b"".join(encoded), target_offsets, max(map(len, targets), default=0), any_case, out, resolve,
    )
    measured = pl.DataFrame(dict(zip(MEASURES, out)))
    return measured.select(pl.when(pl.lit(tokens.is_not_null())).then(pl.all()).name.keep()).to_dict()  # no text: nothing measured


TEXT_COUNTS = ("lines", "hashes", "ellipses", "bullet_lines", "ellipsis_lines")
"""The line kernel's rows for gopher_quality (`gopher_text_counts` in _lines.c), in its order."""


def _text_counts(df: pl.DataFrame) -> list[pl.Series]:
    r"""Per document: its lines (`text_units.lines(text).list.len()`), `#` (`count_matches("#")`), ellipses
    (`count_matches(r"\.\.\.|…")`), lines starting with a bullet (`count_matches(r"(?m)^[^\S\n]*[•\-]")`) and
    lines ending with an ellipsis (`count_matches(r"(?m)(?:\.\.\.|…)[^\S\n]*$")`), null without text: one pass of
    the line kernel, where Polars split every text into lines and matched four regexes."""
    offsets, data, valid = arrow_buffers.texts(df[TEXT])
    counts = np.empty((len(TEXT_COUNTS), len(valid)), np.int64)
    gopher_text_counts(offsets, data, valid, counts)
    nulls = np.flatnonzero(~valid)
    return [pl.Series(name, row, pl.UInt32).scatter(nulls, None) for name, row in zip(TEXT_COUNTS, counts)]


class GopherQuality(Filter):
    type: Literal["gopher_quality"] = "gopher_quality"
    shared: ClassVar = (TOKEN_LISTS,)
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
    min_stop_words: int = Field(
        2, ge=0, description="fewest distinct stop words present (Gopher: \"at least two of the following words\": `the the` is one)"
    )
    stop_words_case_sensitive: bool = Field(
        False, description="false: `The` is the stop word `the` (Gopher's rule); true: exact case only (datatrove)"
    )
    stop_words: list[str] = Field(
        STOP_WORDS_EN + STOP_WORDS_ZH,
        description="stop words (Gopher's English eight, Chinese function characters and FineWeb-2's cmn_Hani list)",
    )

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        n_lines, hashes, ellipses, bullet_lines, ellipsis_lines = (pl.lit(c) for c in _text_counts(df))
        found = _token_counts(TOKEN_LISTS.of(df), self.stop_words, not self.stop_words_case_sensitive)
        counts = {name: pl.lit(values) for name, values in found.items()}
        n_tokens, words, cjk, letters = counts["tokens"], counts["words"], counts["cjk"], counts["letters"]
        alpha_words = words - cjk
        share_of = n_tokens if self.alpha_share_of == "tokens" else words
        return df.with_columns(
            words.alias(P + "words"),
            (cjk / words).alias(P + "cjk_share"),
            pl.when(alpha_words > 0).then(counts["alpha_chars"] / alpha_words).alias(P + "mean_word_length"),
            (hashes / n_tokens).alias(P + "hash_ratio"),
            (ellipses / n_tokens).alias(P + "ellipsis_ratio"),
            (bullet_lines / n_lines).alias(P + "bullet_lines"),
            (ellipsis_lines / n_lines).alias(P + "ellipsis_lines"),
            (letters / pl.when(share_of > 0).then(share_of)).alias(P + "alpha_words"),
            counts["stop_words"].alias(P + "stop_words"),
        )

    def rules(self) -> list[Rule]:
        length = pl.col(P + "mean_word_length")
        alphabetic = pl.col(P + "cjk_share") <= self.max_cjk_share_for_word_length
        return [
            Rule.below("too_few_words", P + "words", self.min_words),
            Rule.above("too_many_words", P + "words", self.max_words),
            Rule("short_words", alphabetic & (length < self.min_mean_word_length), P + "mean_word_length", self.min_mean_word_length),
            Rule("long_words", alphabetic & (length > self.max_mean_word_length), P + "mean_word_length", self.max_mean_word_length),
            Rule.above("hashes", P + "hash_ratio", self.max_hash_ratio),
            Rule.above("ellipses", P + "ellipsis_ratio", self.max_ellipsis_ratio),
            Rule.above("bullet_lines", P + "bullet_lines", self.max_bullet_lines),
            Rule.above("ellipsis_lines", P + "ellipsis_lines", self.max_ellipsis_lines),
            Rule.below("few_alpha_words", P + "alpha_words", self.min_alpha_words),
            Rule.below("few_stop_words", P + "stop_words", self.min_stop_words),
        ]
