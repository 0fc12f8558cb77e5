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

from cleanmix.filters.text_units import CJK_CHAR, HAS_LETTER, HAS_WORD_CHAR, STOP_WORDS_EN, STOP_WORDS_ZH, TOKEN_LISTS, lines
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "gopher_quality_"


def _token_counts(tokens: pl.Series, stop_words: list[str], any_case: bool = True) -> dict[str, pl.Series]:
    """Per document: tokens, words (tokens with a letter or digit), CJK characters, tokens with a
    letter, characters of the non-CJK words, distinct stop words (null without text). One pass over
    all the batch's tokens at once, summed per document by NumPy."""
    counts = tokens.list.len().fill_null(0).to_numpy()
    ends = np.cumsum(counts)
    flat = tokens.explode().drop_nulls()
    letter = flat.str.contains(HAS_LETTER).to_numpy()
    length = flat.str.len_chars().to_numpy()
    word = _where(letter.copy(), ~letter, flat, HAS_WORD_CHAR)  # a letter is a word character: only the rest are looked at
    cjk = _where(np.zeros_like(letter), length == 1, flat, CJK_CHAR)  # a CJK token is one character
    alpha_chars = np.where(word & ~cjk, length, 0)
    targets = [w.lower() for w in stop_words] if any_case else stop_words
    # lowercasing never shortens a word: only tokens as short as the longest stop word can be one
    short = np.flatnonzero(length <= max((len(w) for w in targets), default=0))
    candidates = flat.gather(short)
    folded = candidates.str.to_lowercase() if any_case else candidates
    stop = folded.is_in(targets).to_numpy()
    doc = np.repeat(np.arange(len(tokens)), counts)
    distinct_stops = pl.DataFrame({"doc": doc[short[stop]], "token": folded.filter(stop)}).unique()["doc"].to_numpy()

    def per_doc(values: np.ndarray) -> np.ndarray:
        running = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
        return (running[ends] - running[ends - counts]).astype(np.uint32)

    measured = pl.DataFrame(
        {
            "tokens": counts.astype(np.uint32),
            "words": per_doc(word),
            "cjk": per_doc(cjk),
            "letters": per_doc(letter),
            "alpha_chars": per_doc(alpha_chars),
            "stop_words": np.bincount(distinct_stops, minlength=len(tokens)).astype(np.uint32),
        }
    )
    return measured.select(pl.when(pl.lit(tokens.is_not_null())).then(pl.all()).name.keep()).to_dict()  # no text: nothing measured


def _where(found: np.ndarray, rows: np.ndarray, tokens: pl.Series, pattern: str) -> np.ndarray:
    """`found`, set at the `rows` whose token contains `pattern` (one regex call per row looked at)."""
    at = np.flatnonzero(rows)
    found[at] = tokens.gather(at).str.contains(pattern).to_numpy()
    return found


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
        text = pl.col(TEXT)
        n_lines = lines(text).list.len()
        found = _token_counts(TOKEN_LISTS.of(df), self.stop_words, not self.stop_words_case_sensitive)
        counts = {name: pl.lit(values) for name, values in found.items()}
        n_tokens, words, cjk, letters = counts["tokens"], counts["words"], counts["cjk"], counts["letters"]
        alpha_words = words - cjk
        share_of = n_tokens if self.alpha_share_of == "tokens" else words
        return df.with_columns(
            words.alias(P + "words"),
            (cjk / words).alias(P + "cjk_share"),
            pl.when(alpha_words > 0).then(counts["alpha_chars"] / alpha_words).alias(P + "mean_word_length"),
            (text.str.count_matches("#", literal=True) / n_tokens).alias(P + "hash_ratio"),
            (text.str.count_matches(r"\.\.\.|…") / n_tokens).alias(P + "ellipsis_ratio"),
            (text.str.count_matches(r"(?m)^[^\S\n]*[•\-]") / n_lines).alias(P + "bullet_lines"),
            (text.str.count_matches(r"(?m)(?:\.\.\.|…)[^\S\n]*$") / n_lines).alias(P + "ellipsis_lines"),
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
