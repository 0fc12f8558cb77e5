"""The line-level spam model beside `content_safety`'s word lists: a small fastText classifier that
scores each line of a page as adult spam, gambling spam or clean.

Why a model as well as lists: spam worded otherwise than the lists escapes them (each round of list
tuning raised the set it was tuned on and the next unseen set fell back, `benchmarks/content_safety.md`);
a classifier trained on spam and clean lines learns the wording around the terms too. Lines, not
pages: spam is planted as paragraphs into real pages, and a page's average dilutes it.

A line is scored in the form the lists see (`content_safety.fold`: NFKC, lower case, disguises
undone), Han characters and kana split apart as the `classifier` stage's `cjk: chars` does; lines
of fewer than `MIN_WORDS` words (menu items, titles) are not scored, and longer ones are cut to `MAX_CHARS`.
The score of a line is 1 − P(clean). The shipped model is built by
`resources/content_safety/train_spam_model.py` (run by hand; its data and figures are in the README there).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import xxhash

from cleanmix.filters.classifier import prepare, score_texts

MODEL = Path(__file__).parent / "resources" / "content_safety" / "spam_model.ftz"
CLEAN = "clean"
MIN_WORDS = 10
"""Lines of fewer words (Han characters and kana counting one each) are not scored: menu items, titles."""
MAX_CHARS = 1000
LONG_WORDS = 20
"""Lines of at least this many words count towards `content_safety`'s page rule (two distinct such
lines scoring high): award titles and menu lines that score high stay out of it."""


def in_training_half(ids: pl.Series) -> pl.Series:
    """Whether a document of ../shared/data is in the half the shipped model was trained on: xxh64 of
    its id is even (stable across versions and machines); the other half measures false positives."""
    return pl.Series([xxhash.xxh64_intdigest(str(i).encode()) % 2 == 0 for i in ids.to_list()], dtype=pl.Boolean)


def model_text(folded: pl.Expr) -> pl.Expr:
    """A folded line as the model reads it (training and scoring alike)."""
    return prepare(folded.str.slice(0, MAX_CHARS), lowercase=False, cjk="chars")


def words(prepared: pl.Expr) -> pl.Expr:
    """The number of words fastText reads in a prepared line."""
    return prepared.str.count_matches(" ") + 1


def line_scores(lines: pl.Series, path: str) -> pl.Series:
    """1 − P(clean) for each prepared line, in one pass of the loaded model."""
    return 1.0 - score_texts(lines, path, CLEAN)


def scored_lines(lines: pl.DataFrame, path: str) -> pl.DataFrame:
    """`row`, `paragraph`, `text` (prepared), `words` and `score` of every line long enough to score;
    `lines` has `row`, `paragraph` and `folded` (content_safety.split_lines)."""
    prepared = lines.select("row", "paragraph", text=model_text(pl.col("folded")))
    scored = prepared.with_columns(words=words(pl.col("text"))).filter(pl.col("words") >= MIN_WORDS)
    return scored.with_columns(score=line_scores(scored.get_column("text"), path))
