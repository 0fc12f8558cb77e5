"""The compiled tokenizer (filters/_tokens.c) against the regex path it replaces: text_units' INFIXES rewrites
then TOKEN's matches, run by Polars' own regex engine. Every token list must be the same, or decisions change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanmix.filters import text_units, token_tables
from cleanmix.filters.text_units import CLOSING, INFIXES, OPENING, TOKEN, token_count, tokens
from conftest import shared_text_columns


def regex_tokens(text: pl.Expr) -> pl.Expr:
    """The reference: the five rewrites (each inserts spaces) then every match of TOKEN."""
    for pattern, spaced in INFIXES:
        text = text.str.replace_all(pattern, spaced)
    return text.str.extract_all(TOKEN)


def assert_same(texts: pl.Series) -> None:
    kernel = pl.select(tokens(pl.lit(texts))).to_series()
    reference = pl.select(regex_tokens(pl.lit(texts))).to_series()
    assert kernel.dtype == reference.dtype == pl.List(pl.String)
    if not kernel.equals(reference):
        first = next(i for i, (a, b) in enumerate(zip(kernel.to_list(), reference.to_list())) if a != b)
        pytest.fail(f"{texts[first]!r}: kernel {kernel[first].to_list()} != regex {reference[first].to_list()}")
    counts = pl.select(token_count(pl.lit(texts))).to_series()
    assert counts.equals(reference.list.len())


def test_tables_are_the_installed_polars_classes() -> None:
    """A Polars upgrade with another Unicode version fails here: rerun `python -m cleanmix.filters.token_tables`."""
    assert token_tables.HEADER.read_text() == token_tables.header()


def test_kernel_was_written_for_these_patterns() -> None:
    """_tokens.c spells out TOKEN and INFIXES by hand: a change to them must change the kernel too."""
    patterns = repr((TOKEN, INFIXES)).encode()
    assert hashlib.sha256(patterns).hexdigest()[:16] == "b24f69276aa3bd9b", "text_units' patterns changed: update _tokens.c"


PIECES = [
    *"abcdnstlrmveABMSZxyz019_",
    *OPENING,
    *CLOSING,
    *".-–—…,:;!?'’\"“”/<>=+*^$%#&_§~",
    *[" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u200b", "\ufeff"],
    *["http://", "https://", "http", "://", "www", "www.example.com", "http://x.org/a_b?c=d", ".com", "/"],
    *["Mr.", "Mrs.", "Sept.", "Sep", "vs.", "Inc", "U.S.", "e.g.", "A.", "n't", "n’t", "'s", "’re", "'ll", "’d", "'m", "'ve"],
    *["...", "..", "--", "…", "……", "——", "—", "2+2", "6-4", "key=value", "and/or", "end.Next", "well-known"],
    *["中", "文", "中文", "ア", "の", "ー", "ｱ", "한", "국", "Σ", "σ", "ς", "Ж", "ж", "é", "e\u0301", "\u0301", "ǅ", "ª"],
    *["٣", "४", "²", "Ⅻ", "😀", "👍🏽", "\U00020000", "𝐀", "ǆ", "\x00", "\x7f", "ß", "İ"],
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
DENSE = [*"htps:/.,;!?)]\"'’(nsrtlvmdaAMU1+=-—…<> 中ー", "http://", "https://", "Mr", "’s", "n't"]
"""Few pieces, so that the patterns' edges (a web address's last character, a tail's boundary) meet often."""
DENSE_TEXTS = st.lists(st.sampled_from(DENSE), max_size=30).map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS), min_size=1, max_size=12))
def test_kernel_is_the_regex_path(texts: list[str | None]) -> None:
    assert_same(pl.Series("text", texts, dtype=pl.String))


@settings(max_examples=1000, deadline=None)
@given(st.lists(DENSE_TEXTS, min_size=1, max_size=12))
def test_kernel_is_the_regex_path_where_patterns_meet(texts: list[str]) -> None:
    assert_same(pl.Series("text", texts))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.characters(codec="utf-8"), max_size=30).map("".join))
def test_kernel_is_the_regex_path_on_any_characters(text: str) -> None:
    assert_same(pl.Series("text", [text]))


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \n\t",
        "Hello, world! Don't, it's: U.S.A. Mr. Smith's e-mail a...b c…d wait...what 6-4 2+2 and/or key=value end.Next",
        "see https://example.com/a.b, (http://x.org/y). http:// x https://)). ahttp://b e-http://foo-bar http://a-b...c",
        "http://x? http://x! http://x) http://x] http://x\" http://x' http://x; http://x: http://x, http://x. http://x/?q=1.",
        "中文テスト、ですよ。한국어 ἀλήθεια Привет—мир ٣-٤ ¿Qué? «quoted» “curly” ‘single’ (paren) [bracket] {brace}",
        "isn't nn't 'sup rock'n'roll it’s o'clock we'd I'm you're they'll we've don’t DON'T can't's x'sy 's 'S",
        "Mrs. Sept. Sep. vs. Inc. St.Louis e.g. i.e. A.B.C. a.b.c.d.e Prof.X No. Co.Ltd. Jan.Feb.",
        "--- — —— …… .... ----x x---- a--b a—b a——b",
        "x\u200by a\u00a0b c\u3000d \ufeffe",
    ],
)
def test_kernel_is_the_regex_path_on_edge_cases(text: str) -> None:
    assert_same(pl.Series("text", [text]))


def test_nulls_slices_and_chunks() -> None:
    texts = pl.Series("text", [None, "a b", "", None, "c-d e's", "f"] * 3)
    assert_same(texts)
    assert_same(texts.slice(3, 10))  # (an Arrow offset into the validity bitmap)
    assert_same(pl.concat([texts.slice(0, 5), texts.slice(5)], rechunk=False))
    assert_same(pl.Series("text", [None, None], dtype=pl.String))
    assert_same(pl.Series("text", [], dtype=pl.String))
    out = pl.DataFrame({"text": ["a b", None]}).select(tokens(pl.col("text")))
    assert out.schema == pl.Schema({"text": pl.List(pl.String)}) and out["text"].to_list() == [["a", "b"], None]


def test_batches_over_the_view_limit_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_units, "VIEW_LIMIT", 20)
    assert_same(pl.Series("text", ["one two three", None, "four-five six's", "", "http://x.y/z. seven"] * 3))


def test_every_shared_text(shared_data: Path) -> None:
    """Every string column of the project's real data (web pages, raw HTML, Chinese news and reviews, 75 languages, PII, benchmarks)."""
    columns = 0
    for texts in shared_text_columns(shared_data):
        assert_same(texts)
        columns += 1
    assert columns >= 40
