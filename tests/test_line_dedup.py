"""line_dedup: exact line dedup, boilerplate across shards, CJK, paragraphs, short lines and documents."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from cleanmix.dedup.line_dedup import LineDedup
from cleanmix.pipelines.registry import stage_types
from conftest import run_with_workers, write_shards


def texts(df: pl.DataFrame) -> list[str | None]:
    return df["text"].to_list()


def test_registered_and_validated() -> None:
    assert stage_types()["line_dedup"] is LineDedup
    assert LineDedup().threshold == 2 and LineDedup(keep="first").threshold == 1
    with pytest.raises(ValidationError, match="every line"):
        LineDedup(min_docs=1)


def test_exact_line_dedup_on_a_hand_checked_corpus() -> None:
    """keep: first — each line's first occurrence in input order stays; case, spacing and digits are ignored."""
    df = pl.DataFrame({"id": list("abcde"), "text": [
        "Welcome to our site\nThe river floods every spring.\nContact us today",
        "welcome  to OUR site\nFarmers plant rice after the flood.\nThe river floods every spring.\n",
        "Contact us today\nPrices rose 3% in 2019.\nWelcome to our site",
        "Prices rose 7% in 2020.\nA unique closing line here.",
        "Same line twice\nSame line twice",
    ]})
    result = LineDedup(keep="first", min_remaining_chars=1).process(df)
    assert texts(result.kept) == [
        "Welcome to our site\nThe river floods every spring.\nContact us today",
        "Farmers plant rice after the flood.\n",
        "Prices rose 3% in 2019.",
        "A unique closing line here.",
        "Same line twice",
    ]
    assert result.rejected.height == 0
    assert result.modified == {"line_dedup:lines_removed": 4}
    assert result.examples["top:001"] == [{"text": "Welcome to our site", "truncated": False}]


def test_boilerplate_across_shards_through_clean_run_same_bytes_with_1_or_2_workers(tmp_path: Path) -> None:
    """Three shards of 260 pages (several units, several batches each): header and footer go, the
    pages left with nothing but a stub are removed with a reason, and the report escapes the lines."""
    header, footer = "Home | News | Sport <Live> & More", "© {year} Example Media. All rights reserved."

    def body(shard: int, row: int) -> tuple[str, str]:
        tag = "".join(chr(97 + (shard * 260 + row) // 26**k % 26) for k in range(3))
        return f"The {tag} report covers the harbour and its fishing fleet.", f"Readers of {tag} wrote back about the tides."

    pages, expected = [], []
    for shard in range(3):
        shard_pages = []
        for row in range(260):
            first, second = body(shard, row)
            stub = row == 7
            shard_pages.append(f"{header}\n\n{'Ok.' if stub else first + chr(10) + second}\n\n{footer.format(year=2017 + shard)}")
            if not stub:
                expected.append(f"{first}\n{second}")
        pages.append(shard_pages)
    source = write_shards(tmp_path / "in", pages)
    out = run_with_workers(tmp_path, source, [{"type": "line_dedup"}], input={"batch_rows": 100})
    assert texts(pl.read_parquet(out / "data")) == expected
    stage = json.loads((out / "stats" / "summary.json").read_text())["stages"][0]
    assert stage["removed"] == {"line_dedup:too_little_text": 3}
    assert stage["modified"] == {"line_dedup:lines_removed": 777}
    details = json.loads((out / "stats" / "line_dedup.json").read_text())["details"]
    assert (details["lines_removed"], details["repeated"]) == (1560, 2)
    assert [(t["docs"], t["occurrences"]) for t in details["top_lines"]] == [(780, 780), (780, 780)]
    assert pl.read_parquet(out / "rejected" / "line_dedup")["reason"].to_list() == ["line_dedup:too_little_text"] * 3
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Home | News | Sport &lt;Live&gt; &amp; More" in report and "<Live>" not in report


def test_cjk_boilerplate_without_spaces() -> None:
    """Chinese lines need no spaces: 版权所有人民日报社 and 版权所有 人民日报社 are one line."""
    df = pl.DataFrame({"id": ["z1", "z2", "z3"], "text": [
        "人民网首页\n国务院召开常务会议部署稳就业工作\n版权所有人民日报社\n上一篇下一篇",
        "人民网首页\n今年夏粮再获丰收总产量创历史新高\n版权所有 人民日报社\n上一篇 下一篇",
        "人民网首页\n北京冬奥会筹备工作进展顺利\n版权所有人民日报社\n上一篇下一篇",
    ]})
    result = LineDedup(min_remaining_chars=10).process(df)
    assert texts(result.kept) == ["国务院召开常务会议部署稳就业工作", "今年夏粮再获丰收总产量创历史新高", "北京冬奥会筹备工作进展顺利"]
    assert result.modified == {"line_dedup:lines_removed": 3}


def test_paragraph_unit_compares_whole_paragraphs() -> None:
    df = pl.DataFrame({"id": ["p1", "p2", "p3"], "text": [
        "Subscribe to our newsletter for\nweekly updates.\n\nFirst story paragraph one.\nIt continues here.\n\nShare this story",
        "Subscribe to our newsletter for\nweekly updates.\n\nSecond story, different text.\n\nShare this story",
        "weekly updates.\n\nThird story stands alone.\nSubscribe to our newsletter for",
    ]})
    by_paragraph = LineDedup(unit="paragraph", min_remaining_chars=1).process(df)
    assert texts(by_paragraph.kept) == [
        "First story paragraph one.\nIt continues here.",
        "Second story, different text.",
        "weekly updates.\n\nThird story stands alone.\nSubscribe to our newsletter for",
    ]
    assert by_paragraph.modified == {"line_dedup:paragraphs_removed": 2}
    by_line = LineDedup(min_remaining_chars=1).process(df)
    assert texts(by_line.kept) == [
        "First story paragraph one.\nIt continues here.", "Second story, different text.", "Third story stands alone."
    ]


def test_short_lines_are_ignored_and_min_docs_is_a_threshold() -> None:
    df = pl.DataFrame({"id": ["a", "b", "c"], "text": [
        "Yes.\nThe first answer is long enough.\nSeen in two documents",
        "Yes.\nAnother, different answer here.\nSeen in two documents",
        "Yes.\nA third answer, also different.",
    ]})
    assert texts(LineDedup(min_docs=3, min_remaining_chars=1).process(df).kept) == df["text"].to_list()
    assert texts(LineDedup(min_docs=3, min_chars=1, min_remaining_chars=1).process(df).kept) == [
        "The first answer is long enough.\nSeen in two documents",
        "Another, different answer here.\nSeen in two documents",
        "A third answer, also different.",
    ]
    assert texts(LineDedup(min_remaining_chars=1).process(df).kept) == [
        "Yes.\nThe first answer is long enough.",
        "Yes.\nAnother, different answer here.",
        "Yes.\nA third answer, also different.",
    ]


def test_a_document_left_too_short_is_removed_with_a_reason() -> None:
    df = pl.DataFrame({"id": ["long", "stub", "none"], "text": [
        "Cookie settings and privacy choices\nA long article about the harbour, its boats and the people who fish there.",
        "Cookie settings and privacy choices\nOk.",
        None,
    ]})
    annotated = LineDedup().annotate(df)
    assert annotated.to_dicts() == [
        {"id": "long", "text": "A long article about the harbour, its boats and the people who fish there.", "reason": None},
        {"id": "stub", "text": "Cookie settings and privacy choices\nOk.", "reason": "line_dedup:too_little_text"},
        {"id": "none", "text": None, "reason": None},
    ]


def test_article_text_survives_on_real_pages(shared_data: Path) -> None:
    """The article pages with their human `article_body`: ≥ 99% of its text stays, much of the rest goes."""
    df = pl.read_parquet(shared_data / "web_en_article_pages.parquet", columns=["id", "text", "article_body"])
    kept = dict(LineDedup().process(df.select("id", "text")).kept.select("id", "text").iter_rows())
    article = boiler = article_kept = boiler_kept = 0
    for doc, text, body in df.iter_rows():
        left = {s for line in (kept.get(doc) or "").split("\n") if (s := line.strip())}
        for line in filter(None, (line.strip() for line in text.split("\n"))):
            size = len(line.encode())
            if line in body:
                article, article_kept = article + size, article_kept + size * (line in left)
            else:
                boiler, boiler_kept = boiler + size, boiler_kept + size * (line in left)
    assert article_kept / article >= 0.99
    assert 1 - boiler_kept / boiler >= 0.4
