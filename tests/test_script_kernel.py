"""The compiled script kernel (filters/_script.c) against the Polars code it replaced: language ID's Han, letter
and kana counts of each document's head and the model's input (spaces folded, stripped), and the quality filters'
shared CJK character counts. The counts and the
model's lines must be the same, or scores and decisions change; the stage's columns are then compared whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from cleanmix.filters import token_tables
from cleanmix.filters._script import model_lines, script_counts
from cleanmix.filters.language import Language, _identify_batch, bundled_model, scored
from cleanmix.filters.text_units import CJK_CHAR, cjk_chars
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.stage import TEXT
from conftest import shared_text_columns


def _count_not(others: str) -> pl.Expr:
    head = pl.col("_head")
    return (head.str.len_chars() - head.str.count_matches(others)).cast(pl.Int64)


def regex_metrics(stage: Language, df: pl.DataFrame) -> pl.DataFrame:
    """The replaced Language.metrics (its counts and model input by Polars' regexes; the scoring after them is shared)."""
    path = stage.model_path or bundled_model()
    text = pl.col(TEXT) if stage.max_chars is None else pl.col(TEXT).str.slice(0, stage.max_chars)
    heads = df.select(text.alias("_head"), pl.col(TEXT).is_not_null().alias("_present"))
    present = heads["_present"].to_numpy()
    hans = np.zeros(df.height, dtype=np.int64)
    has_han = heads.select(pl.col("_head").str.contains(r"\p{Han}").fill_null(False)).to_series().to_numpy()
    if has_han.any():
        hans[has_han] = heads.filter(pl.Series(has_han)).select(_count_not(r"\P{Han}")).to_series().to_numpy()
    maybe = present & (hans > 0) if stage.min_han_share > 0 else present
    share = np.zeros(df.height)
    kana = np.zeros(df.height, dtype=bool)
    if maybe.any():
        script = heads.filter(pl.Series(maybe)).select(
            _count_not(r"\P{L}").alias("letters"), pl.col("_head").str.contains(r"[\p{Hiragana}\p{Katakana}]").alias("kana")
        )
        letters = script["letters"].to_numpy()
        share[maybe] = np.where(letters > 0, hans[maybe] / np.maximum(letters, 1), 0.0)
        kana[maybe] = script["kana"].to_numpy()
    han = present & (share >= stage.min_han_share) & ~kana
    settled = han & (share >= max(stage.script_only, stage.min_score))
    run = np.flatnonzero(present & ~settled)
    lines = heads[run].select(pl.col("_head").str.replace_all(r"\s+", " ").str.strip_chars()).to_series()
    return df.hstack(scored(present, han, share, run, _identify_batch(lines.to_list(), path)))


def assert_same_counts(texts: pl.Series, max_chars: int | None = 4000) -> int:
    """The kernel's counts and model lines against Polars' regexes, for every text (no model run: cheap enough for
    all the real data); returns the number of texts."""
    array = texts.cast(pl.String).to_arrow()
    offsets, data, valid = arrow_buffers.offsets(array), arrow_buffers.data(array), arrow_buffers.valid(array)
    counts = np.empty((4, len(array)), np.int64)
    script_counts(offsets, data, valid, -1 if max_chars is None else max_chars, counts)
    head = pl.col(TEXT) if max_chars is None else pl.col(TEXT).str.slice(0, max_chars)
    expected = pl.DataFrame({TEXT: texts.cast(pl.String)}).select(
        head.str.len_bytes().fill_null(0).cast(pl.Int64).alias("bytes"),
        (head.str.len_chars() - head.str.count_matches(r"\P{Han}")).fill_null(0).cast(pl.Int64).alias("hans"),
        (head.str.len_chars() - head.str.count_matches(r"\P{L}")).fill_null(0).cast(pl.Int64).alias("letters"),
        head.str.contains(r"[\p{Hiragana}\p{Katakana}]").fill_null(False).cast(pl.Int64).alias("kana"),
        head.str.replace_all(r"\s+", " ").str.strip_chars().alias("line"),
    )
    found = pl.DataFrame({"bytes": counts[0] - offsets[:-1], "hans": counts[1], "letters": counts[2], "kana": counts[3]})
    rows = np.flatnonzero(valid).astype(np.int64)
    lines = model_lines(offsets, data, valid, rows, counts[0])
    for name in found.columns:
        differ = np.flatnonzero(found[name].to_numpy() != expected[name].to_numpy())
        if differ.size:
            row = int(differ[0])
            pytest.fail(f"{name} of {texts[row]!r:.300}: kernel {found[name][row]} != Polars {expected[name][row]}")
    assert lines == expected["line"].gather(rows).to_list()
    text = pl.col(TEXT)
    cjk = pl.DataFrame({TEXT: texts.cast(pl.String)}).select(cjk_chars(text), text.str.count_matches(CJK_CHAR).alias("regex"))
    assert_series_equal(cjk[TEXT], cjk["regex"], check_names=False)
    return len(texts)


def assert_same_metrics(texts: pl.Series, **parameters: object) -> None:
    stage = Language(languages=["en", "zh"], **parameters)
    df = pl.DataFrame({"id": range(len(texts)), TEXT: texts.cast(pl.String)})
    assert_frame_equal(stage.metrics(df), regex_metrics(stage, df), check_exact=True)


def test_tables_are_the_installed_polars_classes() -> None:
    """A Polars upgrade with another Unicode version fails here: rerun `python -m cleanmix.filters.token_tables`."""
    assert token_tables.SCRIPT_HEADER.read_text() == token_tables.script_header()


PIECES = [
    *["a", "B", "Hi", "é", "e\u0301", "\u0301", "ß", "Ω", "я", "ا", "ก", "한", "😀", "1", ".", ",", "—", "\u200b", "\ufeff"],
    *["中", "文", "中文", "\U00020000", "〇", "々", "⺀", "あ", "カ", "ｱ", "ー", "ゝ", "ヽ", "ㇰ", "𛀀"],
    *[" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u00a0", "\u1680", "\u2000", "\u2028", "\u202f", "\u3000"],
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS), min_size=1, max_size=12), st.sampled_from([None, 0, 1, 3, 7, 4000]))
def test_counts_and_lines_are_the_regex_path(texts: list[str | None], max_chars: int | None) -> None:
    assert_same_counts(pl.Series(texts, dtype=pl.String), max_chars)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.characters(codec="utf-8"), max_size=30).map("".join))
def test_counts_and_lines_are_the_regex_path_on_any_characters(text: str) -> None:
    assert_same_counts(pl.Series([text, " " + text + " ", text * 3]), 20)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS), min_size=1, max_size=8),
       st.sampled_from([{}, {"max_chars": 5}, {"max_chars": None}, {"min_han_share": 0.0}, {"script_only": 0.3, "min_score": 0.2},
                        {"min_han_share": 0.9, "script_only": 1.0}]))
def test_the_stage_measures_what_it_did(texts: list[str | None], parameters: dict) -> None:
    assert_same_metrics(pl.Series(texts, dtype=pl.String), **parameters)


def test_nulls_slices_and_chunks() -> None:
    texts = pl.Series([None, "中文 かな", "", "  Hello  world \n", None, "中文中文中文 English"] * 3)
    assert_same_counts(texts)
    assert_same_counts(texts.slice(3, 10), 3)
    assert_same_counts(pl.concat([texts.slice(0, 5), texts.slice(5)], rechunk=False))
    assert_same_counts(pl.Series([None, None], dtype=pl.String))
    assert_same_counts(pl.Series([], dtype=pl.String))
    assert_same_metrics(pl.concat([texts.slice(0, 5), texts.slice(5)], rechunk=False))
    with pytest.raises(ValueError, match="outside the texts"):
        array = texts.to_arrow()
        offsets = arrow_buffers.offsets(array)
        model_lines(offsets, arrow_buffers.data(array), arrow_buffers.valid(array), np.array([len(texts)]), offsets[1:].copy())


def test_every_shared_text(shared_data: Path) -> None:
    """Every text column of the project's real data: the counts and model lines of all of it, and the stage's
    columns (model run) on the first 300 texts of each column."""
    count = 0
    for column in shared_text_columns(shared_data):
        count += assert_same_counts(column)
        assert_same_metrics(column.head(300))
    assert count >= 150_000, count
