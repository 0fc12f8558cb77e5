"""gopher_quality's per-document token measures (`token_measures` in filters/_tokens.c) against the Polars and
NumPy path they replace, written out here: every count, dtype and null must be the same, or decisions change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanmix.filters.gopher_quality import _token_counts
from cleanmix.filters.text_units import CJK_CHAR, HAS_LETTER, HAS_WORD_CHAR, STOP_WORDS_EN, STOP_WORDS_ZH, tokens
from conftest import shared_text_columns


def reference_counts(tokens: pl.Series, stop_words: list[str], any_case: bool = True) -> dict[str, pl.Series]:
    """The path the kernel replaced, as it was: Polars' regexes and lowercase per token, NumPy sums per document."""
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


def assert_same(lists: pl.Series, stop_words: list[str], any_case: bool) -> None:
    kernel = pl.DataFrame(_token_counts(lists, stop_words, any_case))
    reference = pl.DataFrame(reference_counts(lists, stop_words, any_case))
    assert kernel.schema == reference.schema
    if not kernel.equals(reference):
        row = next(i for i in range(len(kernel)) if kernel.row(i) != reference.row(i))
        pytest.fail(f"{lists[row]!r} {stop_words!r} any_case={any_case}: kernel {kernel.row(row)} != reference {reference.row(row)}")


CHARS = [
    *"abcxyzTHEBEAND019_-.,'’!?#…",
    *"ΣσςΑαΒβΌόΐ",  # Greek with case, the final sigma
    *"ЖжЁёІі",  # Cyrillic
    *"ÀàÉéßÿÆæ",  # Latin-1
    *"İıẞKKǅǄǆ",  # İ (lowercase is two characters), ẞ, the Kelvin sign, a title-case digraph
    *"中的了是文ア의の한ー",  # CJK, kana, Hangul
    *"٣४²Ⅻ\u0301\u200b\u00a0",  # digits of other scripts, a combining mark, zero width, no-break space
    *["😀", "👍🏽", "\U00020000", "𝐀"],
]
TOKENS = st.lists(st.sampled_from(CHARS), max_size=16).map("".join)
STOP_WORD_LISTS = st.one_of(
    st.just(STOP_WORDS_EN + STOP_WORDS_ZH),
    st.just([]),
    st.lists(st.one_of(TOKENS, st.sampled_from(["the", "The", "σ", "ς", "i̇", "k", "ss", "ß", "", "ǆ", "ǅ", "的"])), max_size=8),
)


@st.composite
def token_lists(draw: st.DrawFn, words: list[str]) -> pl.Series:
    """A batch of token lists (some null, some empty) drawn from the stop words and the alphabet, maybe a slice."""
    pieces = st.one_of(TOKENS, st.sampled_from(words or ["x"]), st.sampled_from(words or ["x"]).map(str.upper))
    lists = draw(st.lists(st.one_of(st.none(), st.lists(pieces, max_size=12)), min_size=1, max_size=10))
    series = pl.Series("tokens", lists, dtype=pl.List(pl.String))
    start = draw(st.integers(0, len(series) - 1))
    return series.slice(start) if draw(st.booleans()) else series


@settings(max_examples=1500, deadline=None)
@given(st.data(), STOP_WORD_LISTS, st.booleans())
def test_kernel_is_the_reference(data: st.DataObject, stop_words: list[str], any_case: bool) -> None:
    assert_same(data.draw(token_lists(stop_words)), stop_words, any_case)


@pytest.mark.parametrize("any_case", [True, False])
def test_edge_cases(any_case: bool) -> None:
    lists = pl.Series(
        "tokens",
        [
            *[["The", "THE", "the", "tHe"], ["ΣΑΣ", "σας", "Σ", "İ", "i̇", "K", "KELVIN", "ẞ", "ß"], None, []],
            *[[""], ["_", "__", "a_", "٣", "²"], ["中", "的", "中文", "ー"]],
        ],
        dtype=pl.List(pl.String),
    )
    for words in (STOP_WORDS_EN + STOP_WORDS_ZH, ["σας", "i̇", "k", "ß", "ss", "", "the", "the"], [], ["ΣΑΣ"]):
        assert_same(lists, words, any_case)
        assert_same(lists.slice(1, 4), words, any_case)
        assert_same(pl.concat([lists.slice(0, 3), lists.slice(3)], rechunk=False), words, any_case)
        assert_same(lists.filter(pl.Series([True, False, True, True, False, True, True])), words, any_case)
    assert_same(pl.Series("tokens", [], dtype=pl.List(pl.String)), STOP_WORDS_EN, any_case)
    assert_same(pl.Series("tokens", [None, None], dtype=pl.List(pl.String)), STOP_WORDS_EN, any_case)


def test_null_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="null token"):
        _token_counts(pl.Series("tokens", [["a", None]]), STOP_WORDS_EN)


def test_every_shared_text(shared_data: Path) -> None:
    """Every string column of the project's real data, tokenized: both case modes, the default stop words."""
    columns = 0
    for texts in shared_text_columns(shared_data):
        lists = pl.select(tokens(pl.lit(texts))).to_series()
        for any_case in (True, False):
            assert_same(lists, STOP_WORDS_EN + STOP_WORDS_ZH, any_case)
        columns += 1
    assert columns >= 40
