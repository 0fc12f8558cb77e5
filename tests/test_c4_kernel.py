"""c4_quality's line kernel (`_tokens.c` `c4_lines`) against the Polars path it replaces, kept here as the reference:
every measured column must be the same for every parameter combination, or decisions change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cleanmix.filters.c4_quality import CITATION, ENDS_LINE, JOINED, POLICY, SENTENCE_ABBREVIATION, SENTENCE_END, C4Quality, P
from cleanmix.filters.text_units import CJK, CJK_CHAR, cjk_share, lines
from cleanmix.pipelines.stage import TEXT
from conftest import shared_text_columns


def reference_sentences(line: pl.Expr) -> pl.Expr:
    text = line.str.replace_all(r"\.{2,}", "…")
    ends = text.str.count_matches(SENTENCE_END) + text.str.count_matches(JOINED) - text.str.count_matches(SENTENCE_ABBREVIATION)
    return pl.max_horizontal(ends, pl.lit(1, pl.UInt32))


def reference_long_word(stage: C4Quality, texts: pl.Series) -> pl.Series:
    long_lines = texts.str.len_chars() > stage.max_word_length
    if not long_lines.any():
        return long_lines
    longest = texts.filter(long_lines).str.extract_all(rf"[^\s{CJK}]+").list.eval(pl.element().str.len_chars()).list.max()
    return long_lines.scatter(long_lines.arg_true(), longest.fill_null(0) > stage.max_word_length)


def reference_metrics(stage: C4Quality, df: pl.DataFrame) -> pl.DataFrame:
    """C4Quality.metrics before the kernel: every line split, exploded, stripped, matched and grouped by Polars."""
    line = pl.col("_line").str.strip_chars()
    cited, lower = pl.col("_cited"), pl.col("_lower")
    candidate = ~pl.col("_long_word") & (pl.col("_words") >= stage.min_words_per_line)
    if stage.terminal_punctuation:
        candidate = candidate & cited.str.contains(ENDS_LINE) & ~cited.str.ends_with("...")
    javascript = lower.str.contains("javascript", literal=True) if stage.javascript else pl.lit(False)
    policy = lower.str.contains(POLICY) if stage.policy else pl.lit(False)
    kept = pl.col("_candidate") & ~javascript & ~policy
    per_line = df.select(lines(pl.col(TEXT)).alias("_line")).with_row_index("_doc").explode("_line")
    per_line = per_line.with_columns(
        reference_long_word(stage, per_line["_line"]).alias("_long_word"),
        (line.str.replace_all(CITATION, "") if stage.remove_citations else line).alias("_cited"),
        line.str.count_matches(rf"{CJK_CHAR}|[^\s{CJK}]+").alias("_words"),
    ).with_columns(candidate.fill_null(False).alias("_candidate"))
    candidates = (
        per_line.filter("_candidate")
        .with_columns(cited.str.to_lowercase().alias("_lower"))
        .group_by("_doc")
        .agg(
            lower.str.contains("lorem ipsum", literal=True).any().alias(P + "lorem_ipsum"),
            (~javascript & cited.str.contains("{", literal=True)).any().alias(P + "curly_bracket"),
            kept.sum().alias(P + "kept_lines"),
            pl.when(kept).then(reference_sentences(cited)).otherwise(0).sum().alias(P + "sentences"),
        )
    )
    per_doc = (
        per_line.group_by("_doc", maintain_order=True)
        .agg(pl.col("_words").sum())
        .join(candidates, on="_doc", how="left", maintain_order="left")
        .with_columns(
            pl.col(P + "lorem_ipsum", P + "curly_bracket").fill_null(False), pl.col(P + "kept_lines", P + "sentences").fill_null(0)
        )
        .select(P + "lorem_ipsum", P + "curly_bracket", P + "kept_lines", P + "sentences", "_words")
    )
    return pl.concat([df, per_doc], how="horizontal").with_columns(cjk_share(df, pl.col("_words")).alias(P + "cjk_share")).drop("_words")


STAGES = [
    C4Quality(),
    C4Quality(min_words_per_line=0, terminal_punctuation=False),
    C4Quality(min_words_per_line=0, max_word_length=1),
    C4Quality(min_words_per_line=1, max_word_length=4, remove_citations=False),
    C4Quality(min_words_per_line=2, max_word_length=8, javascript=False, policy=False),
    C4Quality(terminal_punctuation=False, remove_citations=False, javascript=False),
    C4Quality(min_words_per_line=0, policy=False, lorem_ipsum=False, curly_bracket=False),
]
"""The defaults, and each line rule off or at its edges (lorem_ipsum and curly_bracket change no metric)."""


def assert_same(texts: pl.Series, stages: list[C4Quality] = STAGES) -> None:
    df = pl.DataFrame({TEXT: texts.cast(pl.String)})
    for stage in stages:
        kernel, reference = stage.metrics(df), reference_metrics(stage, df)
        if not kernel.equals(reference):
            row = next(i for i, (a, b) in enumerate(zip(kernel.iter_rows(), reference.iter_rows())) if a != b)
            pytest.fail(f"{stage!r} on {texts[row]!r:.300}: kernel {kernel.row(row)[1:]} != reference {reference.row(row)[1:]}")
        assert_frame_equal(kernel, reference, check_exact=True)


def test_kernel_was_written_for_these_patterns() -> None:
    """`c4_lines` spells out the line rules by hand: a change to them must change the kernel too."""
    patterns = repr((CITATION, POLICY, ENDS_LINE, SENTENCE_END, JOINED, SENTENCE_ABBREVIATION)).encode()
    assert hashlib.sha256(patterns).hexdigest()[:16] == "3b75e67c8028d1b1", "c4_quality's patterns changed: update _tokens.c's c4_lines"


PIECES = [
    *"abcdeijklmoprstuvxyzACDEIJKMNOPRSUXZ019_{}[]().!?\"'”’…,;:-",
    *[" ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029"],
    *["\u00a0", "\u3000", "\u200b", "\ufeff", "\u1680", "\u202f"],
    *[
        "A. ",
        "B. ",
        "C.",
        "Mr. ",
        "Mrs. ",
        "Dr. ",
        "St.",
        "e.g. ",
        "i.e. ",
        "U.S. ",
        "etc. ",
        "No. ",
        "vs. ",
        "Co. ",
        "Prof. ",
        "Inc.",
        "Ltd. ",
    ],
    *["...", "..", "....", "!!", "?!", '."', ".'", ".”", ".)", ".]", "end.The", "a.B", "x!Y", "é.É", "ß?Σ"],
    *["。", "！", "？", "。」", "」", "』", "）", "（", "。」』", "（新华社）", "。（新华社）", "新华社", "中文", "ア", "ー", "한"],
    *["javascript", "JavaScript", "JAVASCRIPT", "Cookie Policy", "\u212aookie policy", "coo\u212aies", "use cookies", "uses cookies"],
    *["terms of use", "Terms Of Use", "privacy policy", "PRIVACY POLICY", "use of cookies", "\u0130", "İ", "ı", "Σ", "σς"],
    *[
        "lorem ipsum",
        "Lorem Ipsum",
        "LOREM IPSUM",
        "lorem  ipsum",
        "{",
        "[1]",
        "[12]",
        "[]",
        "[٣]",
        "[edit]",
        "[Edit]",
        "[citation needed]",
    ],
    *["[citation", "needed]", "[[1]]", "[1", "word", "words", "longword", "longerwords", "supercalifragilistic", "x" * 12],
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS), min_size=1, max_size=12))
def test_kernel_is_the_polars_path(texts: list[str | None]) -> None:
    assert_same(pl.Series(TEXT, texts, dtype=pl.String))


LINES = st.lists(
    st.one_of(
        st.sampled_from(["Mr. Smith went home.", "The U.S. team won. ", "A. B. C. D.", "It is done... Next one.", "See [1] here."]),
        st.sampled_from(["他说。」", "今天天气很好！", "新闻（新华社）。", "结束。（新华社）", "Use JavaScript.", "{ code }."]),
    ),
    max_size=8,
).map("\n".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(LINES, min_size=1, max_size=8))
def test_kernel_is_the_polars_path_on_sentences(texts: list[str]) -> None:
    assert_same(pl.Series(TEXT, texts))


PHRASES = ["javascript", "JavaScript", "Lorem Ipsum", "lorem  ipsum", "lorem İpsum", "Cookie Policy", "coo\u212aie policy", "coo\u212aies"]
PHRASES += ["USES COOKIES", "use of coo\u212aies", "Terms of Use", "terms of us", "PRIVACY POLICY", "İ", "\u0307", "{", "Σ", " ", "a", "x"]
"""The phrases the kernel looks for in lowercased lines, in other cases, with characters that lowercase to ASCII letters, or broken."""
PHRASE_LINES = st.lists(st.sampled_from(PHRASES), max_size=6).map(lambda pieces: "".join(pieces) + " ends here.")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(PHRASE_LINES, max_size=4).map("\n".join), min_size=1, max_size=8))
def test_kernel_is_the_polars_path_on_phrases(texts: list[str]) -> None:
    assert_same(pl.Series(TEXT, texts))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.characters(codec="utf-8"), max_size=30).map("".join))
def test_kernel_is_the_polars_path_on_any_characters(text: str) -> None:
    assert_same(pl.Series(TEXT, [text]))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "\n\n\n",
        "\r\n",
        "\r\r\n\n",
        "a b c.\u2028d e f.\u2029g h i.\x85j k l.\x0bm n o.\x0cp q r.\x1cs t u.\x1dv w x.\x1ey z z.\x1f",
        "One two three. Four five six! Seven eight nine?\nMr. A. Smith e.g. this. U.S. Dr. Who. etc. No. 5 is here.",
        "A. B. C. D. E. F. G.\nA.  B.  C. five words here.\n Mr. Mrs. Ms. Dr. St. Jr. Sr. Prof. vs. etc."
        " e.g. i.e. U.S. No. Inc. Ltd. Co. x.",
        'Wait... what?! He said "done." Then.) And.] x.\'y end.The next.One',
        "这是第一句。这是第二句！第三句？」结束。（新华社）\n一二三（新华社）\n四五六。」』）\n七八九。（记者 张三）",
        "Please enable JavaScript to view this page.\nThis site uses cookies. By using it you agree.\nWe value your privacy policy here.",
        'Lorem ipsum dolor sit amet, consectetur.\n{ "a": 1 } is code here.\nThe \u212aelvin sign in coo\u212aie policy is here.',
        "Cited claim here.[1] Another claim[edit]. Needed one.[citation needed]\nEnds with citation [2]\nEnds cited.[12][13]",
        "  padded line with words.  \n\t\ttabbed line with words.\t\n\u3000ideographic space line with words.\u3000",
        "x" * 1000 + " a b.\n" + "y" * 1001 + " c d.\n" + "z" * 999 + "中" + "w" * 999 + " e.",
    ],
)
def test_kernel_is_the_polars_path_on_edge_cases(text: str) -> None:
    assert_same(pl.Series(TEXT, [text]))


def test_nulls_slices_and_chunks() -> None:
    texts = pl.Series(TEXT, [None, "One two three. Four five six.", "", None, "Mr. Smith is here.\nLorem ipsum is it.", "\n"] * 3)
    assert_same(texts)
    assert_same(texts.slice(3, 10))  # (an Arrow offset into the validity bitmap)
    assert_same(pl.concat([texts.slice(0, 5), texts.slice(5)], rechunk=False))
    assert_same(pl.Series(TEXT, [None, None], dtype=pl.String))
    assert_same(pl.Series(TEXT, [], dtype=pl.String))


def test_every_shared_text(shared_data: Path) -> None:
    """Every string column of the project's real data (web pages, raw HTML, Chinese news and reviews, 75 languages, PII, benchmarks)."""
    columns = 0
    for texts in shared_text_columns(shared_data):
        assert_same(texts)
        columns += 1
    assert columns >= 40
