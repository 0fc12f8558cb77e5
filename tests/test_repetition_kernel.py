"""The compiled n-gram kernel (filters/_repetition.c) against Gopher's definitions written plainly in Python."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanmix.filters.gopher_repetition import _ngram_fractions

TOP_NS, DUP_NS = [2, 3, 4], [5, 6, 7, 8, 9, 10]


def top_chars(tokens: list[str], n: int) -> int:
    """Characters of the most frequent n-gram (joined with spaces) times its count; the earliest among equals."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0
    counts = Counter(grams)
    best = max(counts.values())
    gram = next(g for g in grams if counts[g] == best)
    return len(" ".join(gram)) * best


def dup_chars(tokens: list[str], n: int) -> int:
    """Gopher's scan: characters of n-grams met before, jumping n tokens past each."""
    seen: set[tuple[str, ...]] = set()
    covered, i = 0, 0
    while i <= len(tokens) - n:
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            covered += sum(len(t) for t in gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return covered


def reference(docs: list[list[str] | None]) -> dict[str, list[int]]:
    lists = [doc or [] for doc in docs]
    return {f"top_{n}": [top_chars(d, n) for d in lists] for n in TOP_NS} | {f"dup_{n}": [dup_chars(d, n) for d in lists] for n in DUP_NS}


def measured(docs: list[list[str] | None], offset: int = 0) -> dict[str, list[int]]:
    series = pl.Series([[], *docs], dtype=pl.List(pl.String)).slice(offset)
    return {key: np.asarray(values).astype(np.int64).tolist() for key, values in _ngram_fractions(series, TOP_NS, DUP_NS).items()}


TOKENS = st.sampled_from(["a", "b", "c", "the", "的", "了", "é", "🙂x"])
DOCS = st.lists(st.one_of(st.none(), st.lists(TOKENS, max_size=60)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(DOCS)
def test_kernel_is_gophers_definition(docs: list[list[str] | None]) -> None:
    assert measured(docs, offset=1) == reference(docs)


def test_kernel_on_known_documents() -> None:
    docs = [["a", "b"] * 4, ["x"], None, list("abcde") * 3]
    found = measured(docs, offset=1)
    assert found["top_2"] == [3 * 4, 0, 0, 3 * 3]  # "a b" four times; "a b" thrice, the earliest of the tied
    assert found["dup_5"] == [5, 0, 0, 10]  # "a b a b a" again at 2; the second "abcde" is seen, jumped, then the third
    assert measured([]) == {key: [0] for key in reference([[]])}
