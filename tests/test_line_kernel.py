"""The compiled line kernel (filters/_lines.c) against the Polars code it replaced: gopher_repetition's repeated
lines and paragraphs and fineweb_quality's per-line counts, split, exploded, matched and grouped back by Polars;
gopher_quality's lines, '#', ellipses, bullet and ellipsis lines, counted by Polars' regexes.
Every measured column must be the same, floats to the bit, or decisions change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cleanmix.filters import token_tables
from cleanmix.filters.fineweb_quality import FinewebQuality
from cleanmix.filters.fineweb_quality import P as FW
from cleanmix.filters.gopher_quality import _text_counts
from cleanmix.filters.gopher_repetition import ZERO_WIDTH, GopherRepetition, _ngram_fractions
from cleanmix.filters.gopher_repetition import P as GR
from cleanmix.filters.text_units import INVISIBLE, LINE_ENDS_SENTENCE, TOKEN_LISTS, WIDE, cjk_share, lines, token_counts
from cleanmix.pipelines.stage import TEXT, SharedColumns
from conftest import shared_text_columns


def polars_duplicates(df: pl.DataFrame, parts: pl.Expr, name: str, blank: str) -> pl.DataFrame:
    """The replaced gopher_repetition._duplicates."""
    exploded = df.select(parts.alias("_part")).with_row_index("_doc").explode("_part")
    shown = ~pl.col("_part").str.contains(blank).fill_null(True)
    repeat = shown & ~pl.struct("_doc", "_part").is_first_distinct()
    return exploded.group_by("_doc", maintain_order=True).agg(
        (repeat.sum() / pl.max_horizontal(shown.sum(), 1)).alias(f"{GR}dup_{name}_frac"),
        pl.when(repeat).then(pl.col("_part").str.len_chars()).otherwise(0).sum().alias(f"_dup_{name}_chars"),
    )


def gopher_reference(stage: GopherRepetition, df: pl.DataFrame) -> pl.DataFrame:
    """The replaced GopherRepetition.metrics."""
    text = pl.col(TEXT)
    size = text.str.len_chars().cast(pl.Float64)
    paragraphs = text.str.strip_chars().str.replace_all(r"\n{2,}", "\x00").str.split("\x00")
    paras = polars_duplicates(df, paragraphs, "para", INVISIBLE)
    lines = polars_duplicates(df, text.str.replace_all(r"\n+", "\n").str.split("\n"), "line", ZERO_WIDTH)
    toks = TOKEN_LISTS.of(df)
    top_ns = sorted({*stage.max_top_ngram_frac, *stage.cjk_max_top_ngram_frac})
    dup_ns = sorted({*stage.max_dup_ngram_frac, *stage.cjk_max_dup_ngram_frac})
    grams = _ngram_fractions(toks, top_ns, dup_ns)
    parts = [df, paras.drop("_doc"), lines.drop("_doc")] + ([pl.DataFrame(grams)] if grams else [])
    measured = pl.concat(parts, how="horizontal")
    return measured.with_columns(
        (pl.col("_dup_para_chars") / size).alias(GR + "dup_para_char_frac"),
        (pl.col("_dup_line_chars") / size).alias(GR + "dup_line_char_frac"),
        *((pl.col(f"top_{n}") / size).alias(f"{GR}top_{n}_gram") for n in top_ns),
        *((pl.col(f"dup_{n}") / size).alias(f"{GR}dup_{n}_gram") for n in dup_ns),
        cjk_share(df, toks.list.len()).alias(GR + "cjk_share"),
    ).drop("_dup_para_chars", "_dup_line_chars", *grams)


def fineweb_reference(stage: FinewebQuality, df: pl.DataFrame) -> pl.DataFrame:
    """The replaced FinewebQuality.metrics."""
    line = pl.col("_line")
    nonblank = ~line.str.contains(INVISIBLE)
    per_doc = (
        df.select(pl.col(TEXT).str.split("\n").alias("_line"))
        .with_row_index("_doc")
        .explode("_line")
        .group_by("_doc", maintain_order=True)
        .agg(
            nonblank.sum().alias("_lines"),
            (nonblank & line.str.contains(LINE_ENDS_SENTENCE)).sum().alias("_punct"),
            (nonblank & (line.str.len_chars() + line.str.count_matches(WIDE) <= stage.short_line_chars)).sum().alias("_short"),
            pl.when(nonblank & ~line.is_first_distinct()).then(line.str.len_chars()).otherwise(0).sum().alias("_dup_chars"),
        )
    )
    text = pl.col(TEXT)
    n_tokens = token_counts(df)
    return pl.concat([df, per_doc.drop("_doc")], how="horizontal").with_columns(
        (pl.col("_punct") / pl.col("_lines")).alias(FW + "line_punct"),
        (pl.col("_short") / pl.col("_lines")).alias(FW + "short_lines"),
        (pl.col("_dup_chars") / text.str.replace_all("\n", "", literal=True).str.len_chars()).alias(FW + "dup_line_chars"),
        (text.str.count_matches("\n", literal=True) / pl.lit(n_tokens)).alias(FW + "newlines_per_word"),
        cjk_share(df, n_tokens).alias(FW + "cjk_share"),
        (pl.col("_lines") == 0).alias(FW + "empty"),
    ).drop("_lines", "_punct", "_short", "_dup_chars")


def assert_same(texts: pl.Series, short_line_chars: int = 30) -> int:
    """Both stages' metrics, kernel and reference, equal to the bit; returns the number of texts."""
    gopher, fineweb = GopherRepetition(), FinewebQuality(short_line_chars=short_line_chars)
    df = SharedColumns([gopher, fineweb]).attach(pl.DataFrame({TEXT: texts.cast(pl.String)}), 0)
    for stage, reference in ((gopher, gopher_reference), (fineweb, fineweb_reference)):
        kernel, expected = stage.metrics(df), reference(stage, df)
        for column in expected.columns:
            pairs = zip(kernel[column].to_list(), expected[column].to_list())
            row = next((i for i, (a, b) in enumerate(pairs) if a != b and not (a != a and b != b)), None)  # (NaN is NaN)
            if row is not None:
                pytest.fail(f"{column} of {texts[row]!r}: kernel {kernel[column][row]!r} != Polars {expected[column][row]!r}")
        assert_frame_equal(kernel, expected, check_exact=True)
    return len(texts)


def test_tables_are_the_installed_polars_classes() -> None:
    """A Polars upgrade with another Unicode version fails here: rerun `python -m cleanmix.filters.token_tables`."""
    assert token_tables.LINE_HEADER.read_text() == token_tables.line_header()


def test_kernel_was_written_for_these_patterns() -> None:
    """_lines.c spells out these patterns by hand (and counts WIDE's characters as taking 2 bytes or more): a change
    to them must change the kernel too."""
    patterns = repr((INVISIBLE, ZERO_WIDTH, LINE_ENDS_SENTENCE, WIDE)).encode()
    assert hashlib.sha256(patterns).hexdigest()[:16] == "8ef338e78ed80bef", "the line patterns changed: update _lines.c"


PIECES = [
    *["a", "b", "ab", "Hi", "x" * 40, "中", "文", "中文", "ｱ", "ー", "한", "é", "e\u0301", "\u0301", "😀", "\U00020000"],
    *["\n", "\n", "\n\n", "\n\n\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f"],
    *[" ", "  ", "\t", "\u00a0", "\u3000", "\u1680", "\u200a", "\u202f", "\u200b", "\ufeff", "\u00ad", "\u2060", "\u180e", "\x00"],
    *[".", "!", "?", "…", "‼", "．", "｡", "﹒", "।", "؟", '"', "'", "”", "’", "»", "“"],
    *["。", "！", "？", "」", "』", "）", "》", "（", "（新华社）", "。（新华社）", "（）", "。”", "!”"],
    *["\u3000", "\u303f", "\uff01", "\uff60", "\uff61", "\u2e80"],
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
LINES = st.sampled_from(["", " ", "a", "Hi.", "\u200b", " \u200b", "\ufeff", "中文。", "\u3000", "\r", "a\u2028b", "x" * 40])
REPEATING = st.lists(st.tuples(LINES, st.sampled_from(["\n", "\n\n", "\n\n\n", "\x00", "\r\n"])), max_size=20).map(
    lambda parts: "".join(line + separator for line, separator in parts)
)
"""Few distinct lines, so that lines and paragraphs repeat."""
SENTENCE_ENDS = st.lists(st.sampled_from([*"。！？.?!（）”’」』》\"'»a中\n ", "\u200b", "\u3000"]), max_size=12).map("".join)
"""Few pieces, so that LINE_ENDS_SENTENCE's alternatives meet often."""


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS, REPEATING), min_size=1, max_size=12), st.sampled_from([0, 1, 2, 3, 5, 30]))
def test_kernel_is_the_polars_code(texts: list[str | None], short_line_chars: int) -> None:
    assert_same(pl.Series(texts, dtype=pl.String), short_line_chars)


@settings(max_examples=500, deadline=None)
@given(st.lists(SENTENCE_ENDS, min_size=1, max_size=12), st.sampled_from([0, 1, 2, 3, 5]))
def test_kernel_is_the_polars_code_where_sentence_ends_meet(texts: list[str], short_line_chars: int) -> None:
    assert_same(pl.Series(texts), short_line_chars)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "\n\n",
        " \t\n\r\n\u3000",
        "a\n\na\n\n\na",
        "a\x00a\n\x00\n\na",
        "\u200b\n\n\u200b\n\n \u200b \n\n\ufeff",
        "Hi.\nHi.”\nHi.”’\nHi”.\n中文。\n中文。」\n中文。」』\n中文」\n中文。（新华社）\n中文。（）\n中文。（）)\n中文。（））\n中文。（（））\n中文！（a\u200b）",
        "\u3000\u3000中文。\n\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01\uff01",
    ],
)
def test_kernel_is_the_polars_code_on_edge_cases(text: str) -> None:
    for short_line_chars in (0, 2, 4, 30):
        assert_same(pl.Series([text, None, text]), short_line_chars)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.characters(codec="utf-8"), max_size=30).map("".join))
def test_kernel_is_the_polars_code_on_any_characters(text: str) -> None:
    assert_same(pl.Series([text, text + "\n" + text, "\n\n".join([text] * 3)]))


def test_nulls_slices_chunks_and_long_documents() -> None:
    texts = pl.Series([None, "a\nb\na", "", None, "\n\n", " \u200b\n\u200b", "x\n\ny\n\nx"] * 3)
    assert_same(texts)
    assert_same(texts.slice(3, 10))
    assert_same(pl.concat([texts.slice(0, 5), texts.slice(5)], rechunk=False))
    assert_same(pl.Series([None, None], dtype=pl.String))
    assert_same(pl.Series([], dtype=pl.String))
    assert_same(pl.Series(["\n".join(f"line {i % 997}." for i in range(20_000)), "x" * 100_000 + "\n" + "x" * 100_000]))
    many = [str(i) for i in range(70_000)] * 2  # (more distinct parts than a table starts with: it grows)
    assert_same(pl.Series(["\n".join(many), "\n\n".join(many)]))


def test_every_shared_text(shared_data: Path) -> None:
    """Every text column of the project's real data (web pages, raw HTML, Chinese news and reviews, 75 languages, PII, benchmarks)."""
    texts = sum(assert_same(column) for column in shared_text_columns(shared_data))
    assert texts >= 150_000, texts


def polars_text_counts(texts: pl.Series) -> pl.DataFrame:
    """The replaced gopher_quality expressions: lines, '#', ellipses, bullet lines, ellipsis lines."""
    t = pl.col(TEXT)
    return pl.DataFrame({TEXT: texts}).select(
        lines(t).list.len().alias("lines"),
        t.str.count_matches("#", literal=True).alias("hashes"),
        t.str.count_matches(r"\.\.\.|…").alias("ellipses"),
        t.str.count_matches(r"(?m)^[^\S\n]*[•\-]").alias("bullet_lines"),
        t.str.count_matches(r"(?m)(?:\.\.\.|…)[^\S\n]*$").alias("ellipsis_lines"),
    )


def assert_same_text_counts(texts: pl.Series) -> int:
    found = pl.DataFrame(_text_counts(pl.DataFrame({TEXT: texts.cast(pl.String)})))
    expected = polars_text_counts(texts.cast(pl.String))
    for column in expected.columns:
        differ = (found[column] != expected[column]) | (found[column].is_null() != expected[column].is_null())
        if differ.any():
            row = int(differ.arg_true()[0])
            pytest.fail(f"{column} of {texts[row]!r:.300}: kernel {found[column][row]} != Polars {expected[column][row]}")
    assert_frame_equal(found, expected, check_exact=True)
    return len(texts)


GOPHER_PIECES = [*PIECES, "#", "##", "...", "....", "..", "…", "……", "-", "•", " -", "\t•", "\u3000-", "\r-", "a-", "- ", "... ", "…\t"]
GOPHER_TEXTS = st.lists(st.sampled_from(GOPHER_PIECES), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.none(), GOPHER_TEXTS), min_size=1, max_size=12))
def test_gopher_quality_counts_are_the_polars_code(texts: list[str | None]) -> None:
    assert_same_text_counts(pl.Series(texts, dtype=pl.String))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.characters(codec="utf-8"), max_size=30).map("".join))
def test_gopher_quality_counts_are_the_polars_code_on_any_characters(text: str) -> None:
    assert_same_text_counts(pl.Series([text, text + "\n" + text, "\r\n".join([text] * 3)]))


def test_gopher_quality_counts_of_every_shared_text(shared_data: Path) -> None:
    assert sum(assert_same_text_counts(column) for column in shared_text_columns(shared_data)) >= 150_000
