"""Word salad: real words in random order (spun SEO text, shuffled or machine-mangled pages).

It passes every published rule: the words, their lengths, the stop words and even the periods
are real. What it breaks is the sentence: in cased scripts a sentence starts with a capital,
so after `. ` comes an upper-case letter nearly always in prose (the median page has no
exception; abbreviations such as `e.g. the` make a few), while in salad the word after a period
is any word, mostly lower-case.

Chinese has no case and no spaces; there the sign is the characters' neighbours. In prose, half
of all pairs of adjacent Han characters are pairs found inside common words (中国, 发展, 經濟); in
shuffled text, under a tenth are (filters/resources/zh_word_pairs.txt, from jieba's dictionary).
Registers far from modern written Chinese score lower: classical Chinese and written Cantonese
come out near 0.11, just above the 0.1 limit.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters.text_units import code_points
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "word_salad_"
AFTER_END = r"[.!?][\"'”’)]?\s+"
HAN_RANGES = ((0x3400, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3FFFF))
KANA = (0x3040, 0x30FF)


@cache
def word_pairs() -> np.ndarray:
    """The common in-word Han pairs as sorted keys (first code point << 21 | second)."""
    text = (resources.files("cleanmix.filters") / "resources" / "zh_word_pairs.txt").read_text(encoding="utf-8")
    return np.sort(np.array([ord(pair[0]) << 21 | ord(pair[1]) for pair in text.split()], dtype=np.int64))


def han_pairs(texts: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per document: adjacent pairs of Han characters, how many of them are common in-word pairs,
    and kana characters (Japanese kanji compounds and names are not in a Chinese word list)."""
    points, offsets = code_points(texts)
    docs = len(offsets)
    han = np.zeros(len(points), dtype=bool)
    for low, high in HAN_RANGES:
        han |= (points >= low) & (points <= high)
    at = np.flatnonzero(han[:-1] & han[1:])  # (a separator follows every document: no pair spans two)
    keys = points[at].astype(np.int64) << 21 | points[at + 1]
    known = word_pairs()
    found = known[np.minimum(np.searchsorted(known, keys), len(known) - 1)] == keys
    doc = np.searchsorted(offsets, at, side="right") - 1
    kana = np.searchsorted(offsets, np.flatnonzero((points >= KANA[0]) & (points <= KANA[1])), side="right") - 1
    return np.bincount(doc, minlength=docs), np.bincount(doc[found], minlength=docs), np.bincount(kana, minlength=docs)


class WordSalad(Filter):
    type: Literal["word_salad"] = "word_salad"
    max_lowercase_starts: float = Field(0.5, ge=0, le=1, description="largest share of sentences (after . ! ?) starting lower-case")
    min_sentence_starts: int = Field(5, ge=1, description="the rule applies from this many sentence starts with a letter")
    min_word_pairs: float = Field(0.1, ge=0, le=1, description="smallest share of adjacent Han pairs that are common in-word pairs")
    min_han_pairs: int = Field(
        100, ge=1, description="the Han pair rule applies from this many adjacent Han pairs, in text with kana under 1% of them"
    )

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        lower = text.str.count_matches(AFTER_END + r"\p{Ll}")
        starts = lower + text.str.count_matches(AFTER_END + r"[\p{Lu}\p{Lt}]")
        pairs, in_words, kana = han_pairs(df.get_column(TEXT))
        chinese = (pairs >= self.min_han_pairs) & (kana * 100 < pairs)  # a few kana (の, emoticons) do not make it Japanese
        return df.with_columns(
            pl.when(starts >= self.min_sentence_starts).then(lower / starts).alias(P + "lowercase_starts"),
            pl.when(pl.lit(chinese)).then(pl.lit(in_words) / pl.lit(pairs)).alias(P + "word_pairs"),
        )

    def rules(self) -> list[Rule]:
        return [
            Rule.above("lowercase_starts", P + "lowercase_starts", self.max_lowercase_starts),
            Rule.below("few_word_pairs", P + "word_pairs", self.min_word_pairs),
        ]
