"""url_filter: blocked domains with their subdomains and `www.`, URL prefixes, URL words, users'
lists by path, and a missing URL column as a clear error, alone and through `clean run`."""

from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import ValidationError

from cleanmix.filters.url_filter import UrlFilter, split_url
from conftest import assert_user_error, clean, write_pipeline

P = "url_filter_"


def judged(urls: list[str | None], **params) -> list[tuple[str | None, str | None]]:
    frame = pl.DataFrame({"text": ["x"] * len(urls), "url": urls}, schema_overrides={"url": pl.String})
    return UrlFilter(mode="annotate", **params).annotate(frame).select("reason", P + "match").rows()


@pytest.mark.parametrize("url", [
    "https://659queenbet.com/", "http://www.659queenbet.com/slots?x=1", "https://WWW.659QueenBet.COM./", "//m.659queenbet.com",
    "https://user:pw@a.b.659queenbet.com:8443/path#frag", "659queenbet.com/anything", "https://www2.659queenbet.com",
])
def test_a_blocked_domain_blocks_its_subdomains_and_www(url):
    assert judged([url]) == [("url_filter:gambling", "domain:659queenbet.com")]


@pytest.mark.parametrize("url", [
    "https://not659queenbet.com/", "https://659queenbet.com.example.org/", "https://example.org/659queenbet.com",
    "https://www.bbc.co.uk/news/business", "https://news.example/business/casino-stocks-fall", "https://example.org/sex-education",
    "https://1.216.104.145.194.example/", None,
])
def test_other_urls_are_kept(url):
    assert judged([url]) == [(None, None)]


def test_url_prefixes_match_whole_path_segments():
    assert judged(["https://desireplayboys.com/sex-job", "https://www.desireplayboys.com/sex-job/42",
                   "https://desireplayboys.com/sex-jobs", "https://desireplayboys.com/"]) == [
        ("url_filter:adult", "url:desireplayboys.com/sex-job"), ("url_filter:adult", "url:desireplayboys.com/sex-job"),
        (None, None), (None, None),
    ]


def test_url_words_hard_soft_and_in_the_host():
    assert judged(["https://example.com/free-porn/1", "https://example.com/casino/slots-bonus", "https://example.com/casino-news",
                   "https://bestcasinobonus.example/", "https://example.com/XXX/"]) == [
        ("url_filter:adult", "word:porn"), ("url_filter:gambling", "words:bonus,casino,slots"), (None, None),
        ("url_filter:gambling", "host:casino"), ("url_filter:adult", "word:xxx"),
    ]
    assert judged(["https://example.com/free-porn/1"], words=False) == [(None, None)]


def test_categories_choose_the_shipped_lists():
    assert judged(["https://659queenbet.com/", "https://buydutchseeds.com/"], categories=("drugs",), words=False) == [
        (None, None), ("url_filter:drugs", "domain:buydutchseeds.com"),
    ]


def test_a_users_lists_by_path_name_their_category(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("# blocked by us\nspam.example\nwww.ads.example/landing\n", encoding="utf-8")
    rows = judged(["http://deep.spam.example/x", "https://ads.example/landing/1", "https://ads.example/other", "https://659queenbet.com"],
                  lists={"mine": [str(mine)]}, categories=())
    assert rows == [("url_filter:mine", "domain:spam.example"), ("url_filter:mine", "url:ads.example/landing"), (None, None), (None, None)]


def test_split_url_keeps_host_and_path():
    assert split_url("HTTPS://User@WWW.Example.COM.:8080/a/b?q=1#f") == ("example.com", "/a/b")
    assert split_url("example.com") == ("example.com", "")


def test_a_missing_url_column_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"column 'link', which the frame does not have \(columns: text, url\): set url_column"):
        UrlFilter(url_column="link").filter(pl.DataFrame({"text": ["x"], "url": ["https://a.example"]}))
    with pytest.raises(ValidationError, match=r"nope.txt \(category mine\) does not exist"):
        UrlFilter(lists={"mine": [str(tmp_path / "nope.txt")]})
    folder = tmp_path / "in"
    folder.mkdir()
    pl.DataFrame({"id": ["a"], "text": ["x"]}).write_parquet(folder / "a.parquet")
    result = clean("run", str(write_pipeline(tmp_path / "p.yaml", folder, tmp_path / "out", [{"type": "url_filter"}])))
    assert_user_error(result, "has no column 'url', which stages.0 (url_filter) reads", "a.parquet")
    assert not (tmp_path / "out").exists()


def test_clean_run_removes_exactly_the_blocked_pages(tmp_path):
    urls = ["https://www.example.org/news", "https://m.659queenbet.com/", "https://hot-porn.example/1", None,
            "https://desireplayboys.com/sex-job", "https://www.wikipedia.org/wiki/Casino"]
    folder = tmp_path / "in"
    folder.mkdir()
    pl.DataFrame({"id": [f"p{i}" for i in range(6)], "text": ["page"] * 6, "url": urls}).write_parquet(folder / "a.parquet")
    pipeline = write_pipeline(tmp_path / "p.yaml", folder, tmp_path / "out", [{"type": "url_filter"}], workers=1)
    clean("run", str(pipeline), check=True)
    assert pl.read_parquet(tmp_path / "out" / "data")["id"].to_list() == ["p0", "p3", "p5"]
    rejected = pl.read_parquet(tmp_path / "out" / "rejected" / "url_filter").sort("id")
    assert rejected.select("id", "reason", P + "match").rows() == [
        ("p1", "url_filter:gambling", "domain:659queenbet.com"), ("p2", "url_filter:adult", "word:porn"),
        ("p4", "url_filter:adult", "url:desireplayboys.com/sex-job"),
    ]
    summary = json.loads((tmp_path / "out" / "stats" / "summary.json").read_text())
    assert summary["stages"][0]["removed"] == {"url_filter:gambling": 1, "url_filter:adult": 2}
