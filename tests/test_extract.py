"""`extract`: HTML pages to their main text — English and Chinese template pages lose their
navigation, ads, related links and footers; pages without main content are removed with a reason;
bytes in GBK, GB2312 or Windows-1252 are decoded by their declared charset; a real `clean run`;
F1 on the real article-extraction benchmark pages at least the goal."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from pydantic import ValidationError

from cleanmix.filters.extract import Extract, decode
from cleanmix.pipelines.registry import stage_types
from conftest import clean, write_pipeline, write_shards

EN_TITLE = "City council approves new riverside park after two years of debate"
EN_BODY = [
    "The city council voted eight to three on Tuesday night to approve a new riverside park on the site of the "
    "old freight yard, ending two years of public hearings and legal challenges from nearby businesses.",
    "The plan turns eleven acres of cracked concrete into lawns, a wetland that filters storm water before it "
    "reaches the river, and a cycle path that links the park to the existing greenway along the east bank.",
    "Supporters packed the chamber and applauded when the vote was read out. Opponents argued that the city "
    "should have sold the land to developers and used the money to repair roads in the outer districts.",
    "Construction is expected to begin next spring and to take about three years, the parks department said, "
    "with the first section near the old pump house opening to the public in the summer after next.",
]
EN_BOILERPLATE = ["Subscribe", "Sign in", "Sponsored", "Best mattress deals", "Most read", "Cookie", "All rights reserved",
                  "School board delays", "Privacy policy", "Newsletter"]

ZH_TITLE = "全市推进老旧小区改造工程"
ZH_BODY = [
    "本报讯 记者从市住房和城乡建设局获悉，今年全市将启动老旧小区改造项目一百二十个，涉及居民四万余户，"
    "重点解决屋顶漏水、管道老化、缺少电梯和停车位等群众反映强烈的问题。",
    "市住建局有关负责人介绍，改造将坚持居民自愿、先民生后提升的原则，每个小区的方案都要经过居民议事会讨论，"
    "并在小区内公示不少于七天，确保群众的知情权和参与权。",
    "据了解，去年全市已完成改造小区八十六个，新增停车位三千余个，加装电梯二百一十部，居民满意率达到百分之九十五以上。",
]
ZH_BOILERPLATE = ["首页", "财经", "登录", "广告", "热点排行", "相关新闻", "版权所有", "京ICP", "扫码关注", "春季家电"]


def english_page() -> str:
    nav = "".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in ["News", "Sport", "Business", "Culture", "Weather"])
    related = "".join(f'<li><a href="/story/{i}">{t}</a></li>' for i, t in enumerate(
        ["School board delays vote on new timetable", "Bridge repairs to close main road for a month",
         "Local bakery wins national award"]))
    body = "".join(f"<p>{p}</p>" for p in EN_BODY)
    return (
        f"<!DOCTYPE html><html lang='en-GB'><head><meta charset='utf-8'><title>{EN_TITLE} | The Daily Courier</title></head><body>"
        "<div id='cookie-banner'>Cookie notice: we use cookies to improve your experience. <button>Accept</button></div>"
        f"<header><a class='logo' href='/'>The Daily Courier</a><nav><ul>{nav}</ul></nav>"
        "<a href='/subscribe'>Subscribe</a> <a href='/login'>Sign in</a></header>"
        f"<main><article><h1>{EN_TITLE}</h1><p class='byline'>By Jane Holloway, 4 March 2026</p>{body}</article>"
        "<div class='ad'><span>Sponsored</span>"
        "<a href='https://ads.example.com/c/1'>Best mattress deals of the year, up to 60% off</a></div>"
        f"<section class='related'><h2>Most read</h2><ul>{related}</ul></section>"
        "<div class='newsletter'><h3>Newsletter</h3><p>Get the morning briefing in your inbox.</p>"
        "<input type='email'><button>Sign up</button></div>"
        "</main><footer><p>© 2026 The Daily Courier Ltd. All rights reserved.</p>"
        "<p><a href='/privacy'>Privacy policy</a> | <a href='/terms'>Terms</a> | <a href='/contact'>Contact us</a></p>"
        "</footer></body></html>"
    )


def chinese_page(charset: str = "utf-8", body: list[str] = ZH_BODY, title: str = ZH_TITLE) -> str:
    nav = "".join(f'<li><a href="/{i}/">{w}</a></li>' for i, w in enumerate(["首页", "时政", "财经", "科技", "体育", "教育"]))
    related = "".join(f'<li><a href="/n/{i}.html">{t}</a></li>' for i, t in enumerate(
        ["市政府召开常务会议研究部署春季农业生产", "全市中小学新学期开学工作有序推进", "我市举办迎新春文艺演出"]))
    paragraphs = "".join(f"<p>{p}</p>" for p in body)
    return (
        f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="{charset}"><title>{title}_新闻中心_城市网</title></head><body>'
        '<div class="top"><a href="/login">登录</a> | <a href="/reg">注册</a></div>'
        f'<div class="nav"><ul>{nav}</ul></div><div class="crumb">当前位置：<a href="/">首页</a> &gt; 新闻</div>'
        f'<div class="main"><h1>{title}</h1><div class="info">2026-03-04 来源：城市日报</div>'
        '<div class="ad"><a href="http://ad.example.cn/1">广告：春季家电节，全场低至五折</a></div>'
        f'<div class="article-content">{paragraphs}</div>'
        f'<div class="related"><h3>相关新闻</h3><ul>{related}</ul></div></div>'
        f'<div class="side"><h3>热点排行</h3><ol>{related}</ol><p>扫码关注城市网微信公众号</p></div>'
        '<div class="footer"><p>城市网版权所有，未经授权禁止转载</p><p>京ICP备12345678号</p></div></body></html>'
    )


def table_layout_page() -> str:
    """An older Chinese site: the whole page is a table, paragraphs are `<br>`-separated runs."""
    channels = "".join(f'<tr><td><a href="/list/{i}.htm">{w}</a></td></tr>' for i, w in enumerate(["时政", "财经", "科技", "体育"]))
    body = "<br><br>".join("&nbsp;&nbsp;&nbsp;&nbsp;" + p for p in ZH_BODY)
    return (
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"><title>{ZH_TITLE}</title></head><body>'
        '<table width="960"><tr><td colspan="2"><a href="/">首页</a> | <a href="/news/">新闻中心</a> | <a href="/login">登录</a></td></tr>'
        f'<tr><td width="180"><table><tr><td><b>栏目导航</b></td></tr>{channels}</table></td><td>'
        f'<table width="100%"><tr><td align="center"><b>{ZH_TITLE}</b></td></tr><tr><td>{body}</td></tr>'
        '<tr><td>上一篇：<a href="/a/1.htm">我市举办迎新春文艺演出</a></td></tr></table></td></tr>'
        '<tr><td colspan="2">城市网版权所有 京ICP备12345678号</td></tr></table></body></html>'
    )


def login_page() -> str:
    nav = "".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in ["Home", "News", "Sport", "About", "Contact"])
    return (f"<html><head><title>Sign in</title></head><body><nav><ul>{nav}</ul></nav><div class='login'><h2>Sign in</h2>"
            "<form><label>Email</label><input name='email'><label>Password</label><input type='password'><button>Sign in</button></form>"
            "<a href='/forgot'>Forgot your password?</a></div><footer>© 2026 Example Ltd. All rights reserved.</footer></body></html>")


def index_page() -> str:
    links = "".join(f'<li><a href="/a/{i}">第{i}条：市政府召开会议讨论明年的财政预算方案</a></li>' for i in range(20))
    return (f'<html><head><meta charset="utf-8"><title>新闻列表</title></head><body><div class="nav"><a href="/">首页</a>'
            f'<a href="/n">新闻</a></div><h2>最新新闻</h2><ul>{links}</ul><div class="footer">版权所有 © 2026</div></body></html>')


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_english_page_keeps_the_article_and_drops_the_boilerplate() -> None:
    out = Extract().filter(pl.DataFrame({"id": ["en"], "html": [english_page()]}))
    text = out.get_column("text")[0]
    assert lines(text) == [EN_TITLE, *EN_BODY], text  # the headline, not the byline
    assert [word for word in EN_BOILERPLATE if word in text] == []
    assert out.get_column("page_title").to_list() == [EN_TITLE]
    assert out.get_column("page_lang").to_list() == ["en"]


def test_chinese_page_keeps_the_article_and_drops_the_boilerplate() -> None:
    out = Extract().filter(pl.DataFrame({"id": ["zh"], "html": [chinese_page()]}))
    assert lines(out.get_column("text")[0]) == ZH_BODY
    assert out.get_column("page_lang").to_list() == ["zh"]


@pytest.mark.parametrize("favor", ["balanced", "recall"])
def test_other_favors_keep_the_article_and_more_around_it(favor: str) -> None:
    """Short pages fall back to more of the page: the breadcrumb or the QR-code line may come back,
    never the menus, ads, related links or footer."""
    text = Extract(favor=favor).filter(pl.DataFrame({"id": ["zh"], "html": [chinese_page()]})).get_column("text")[0]
    assert lines(text)[:3] == ZH_BODY
    assert [word for word in ZH_BOILERPLATE if word in text and word not in ("首页", "扫码关注")] == []


def test_short_chinese_news_is_kept() -> None:
    """jusText-style extractors drop Chinese pages without Chinese stop words; one short paragraph stays."""
    body = ["国务院办公厅发出通知，要求各地做好春节期间安全生产工作。"]
    out = Extract().filter(pl.DataFrame({"id": ["short"], "html": [chinese_page(body=body, title="通知")]}))
    text = lines(out.get_column("text")[0])
    assert text[0] == body[0] and set(text) <= {body[0], "通知", "2026-03-04 来源：城市日报"}  # headline and byline may come along


def test_layout_tables_are_unwrapped_and_their_menus_dropped() -> None:
    page = table_layout_page().encode("gb2312")
    text = Extract().filter(pl.DataFrame({"id": ["old"], "html": [page]})).get_column("text")[0]
    assert lines(text) == ZH_BODY, text


def test_pages_without_main_content_are_removed_with_a_reason() -> None:
    frame = pl.DataFrame({"id": ["login", "index", "empty", "null", "article"],
                          "html": [login_page(), index_page(), "", None, english_page()]})
    result = Extract().process(frame.with_columns(text=pl.lit(None, pl.String)))
    assert result.kept.get_column("id").to_list() == ["article"]
    assert dict(zip(result.rejected.get_column("id"), result.rejected.get_column("reason"))) == dict.fromkeys(
        ["login", "index", "empty", "null"], "extract:no_content")
    assert result.modified == {"extract:extracted": 1}
    assert Extract(min_chars=10_000).annotate(frame.tail(1)).get_column("reason").to_list() == ["extract:no_content"]
    assert Extract(min_chars=1).annotate(frame.slice(1, 1)).get_column("text").to_list() == ["最新新闻"]  # a lone heading


def test_a_row_without_a_page_keeps_its_text() -> None:
    """A WET record has the crawler's text and no page: it passes through, unchanged and uncounted."""
    frame = pl.DataFrame({"id": ["wet", "none"], "html": [None, None], "text": ["Text a crawler extracted.", None]})
    result = Extract().process(frame)
    assert result.kept.select("id", "text").rows() == [("wet", "Text a crawler extracted.")]
    assert result.rejected.get_column("reason").to_list() == ["extract:no_content"]
    assert result.modified == {}


@pytest.mark.parametrize(
    ("page", "encoding"),
    [
        (chinese_page("gbk").encode("gbk"), "gb18030"),
        (chinese_page("GB2312").encode("gb2312"), "gb18030"),
        (chinese_page("utf-8").encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + chinese_page("utf-8").encode("utf-8"), "utf-8"),
    ],
)
def test_bytes_are_decoded_by_their_declared_charset(page: bytes, encoding: str) -> None:
    assert decode(page) == (page.decode(encoding).removeprefix("\ufeff"), encoding)
    result = Extract().process(pl.DataFrame({"id": ["zh"], "html": [page], "text": [None]}, schema_overrides={"text": pl.String}))
    assert [line for line in lines(result.kept.get_column("text")[0]) if line != ZH_TITLE] == ZH_BODY
    assert result.tallies == {"encodings": {encoding: 1}}


def test_latin1_labels_read_as_windows_1252() -> None:
    """Browsers read `iso-8859-1` as cp1252: curly quotes (0x93, 0x94) are quotes, not control characters."""
    page = english_page().replace("charset='utf-8'", "charset='iso-8859-1'").replace("applauded", "\u201capplauded\u201d")
    text = Extract().filter(pl.DataFrame({"id": ["1252"], "html": [page.encode("cp1252")]})).get_column("text")[0]
    assert "\u201capplauded\u201d" in text


def test_undeclared_non_utf8_bytes_are_detected() -> None:
    page = chinese_page().replace('<meta charset="utf-8">', "").encode("gb18030")
    text, encoding = decode(page)
    assert encoding == "gb18030" and ZH_BODY[0] in text


def test_arrow_in_arrow_out_and_bad_columns() -> None:
    table = pa.table({"id": ["en"], "html": [english_page().encode("utf-8")]})
    out = Extract().filter(table)
    assert isinstance(out, pa.Table) and EN_BODY[-1] in out.column("text")[0].as_py()
    with pytest.raises(ValueError, match="no 'page' column"):
        Extract(html_column="page").filter(pl.DataFrame({"id": ["x"], "html": ["<p>x</p>"]}))
    with pytest.raises(TypeError, match="holds Int64"):
        Extract().filter(pl.DataFrame({"id": ["x"], "html": [1]}))
    with pytest.raises(ValidationError, match="favor"):
        Extract(favor="everything")
    assert stage_types()["extract"] is Extract


def test_clean_run_extracts_html_shards(tmp_path: Path) -> None:
    """A Parquet of pages (bytes, GBK among them) with an empty text column, through the CLI."""
    pages = [english_page().encode("utf-8"), chinese_page("gbk").encode("gbk"), login_page().encode("utf-8"), None]
    data = write_shards(tmp_path / "in", [[None] * 4], html=[pages])
    pipeline = write_pipeline(tmp_path / "p.yaml", data, tmp_path / "out", [{"type": "extract"}, {"type": "length", "min_chars": 50}],
                              workers=1)
    clean("run", str(pipeline), "--quiet", check=True)
    kept = pl.read_parquet(tmp_path / "out" / "data")
    assert kept.get_column("id").to_list() == ["doc-0-0", "doc-0-1"]
    assert sorted(kept.columns) == ["html", "id", "page_lang", "page_title", "text"]
    assert kept.get_column("page_lang").to_list() == ["en", "zh"]
    assert EN_BODY[0] in kept.get_column("text")[0] and ZH_BODY[0] in kept.get_column("text")[1]
    rejected = pl.read_parquet(tmp_path / "out" / "rejected" / "extract")
    reasons = dict(zip(rejected.get_column("id"), rejected.get_column("reason")))
    assert reasons == dict.fromkeys(["doc-0-2", "doc-0-3"], "extract:no_content")
    stage = json.loads((tmp_path / "out" / "stats" / "summary.json").read_text())["stages"][0]
    counts = (stage["docs_in"], stage["docs_out"], stage["removed"], stage["modified"])
    assert counts == (4, 2, {"extract:no_content": 2}, {"extract:extracted": 2})
    assert json.loads((tmp_path / "out" / "stats" / "extract.json").read_text())["tallies"]["encodings"] == {"utf-8": 2, "gb18030": 1}



def test_pages_without_a_text_column_run_when_extract_comes_first(tmp_path: Path) -> None:
    """A Parquet of pages only (id, html): extract first writes `text`; anywhere else, refused."""
    folder = tmp_path / "in"
    folder.mkdir()
    pl.DataFrame({"id": ["en", "login"], "html": [english_page(), login_page()]}).write_parquet(folder / "pages.parquet")
    pipeline = write_pipeline(tmp_path / "p.yaml", folder, tmp_path / "out", [{"type": "extract"}], workers=1)
    clean("run", str(pipeline), "--quiet", check=True)
    kept = pl.read_parquet(tmp_path / "out" / "data")
    assert kept.get_column("id").to_list() == ["en"] and EN_BODY[0] in kept.get_column("text")[0]
    summary = json.loads((tmp_path / "out" / "stats" / "summary.json").read_text())
    assert summary["stages"][0]["removed"] == {"extract:no_content": 1}
    wrong = write_pipeline(tmp_path / "q.yaml", folder, tmp_path / "out2", [{"type": "length"}, {"type": "extract"}])
    result = clean("run", str(wrong))
    assert result.returncode == 2 and "has no text column 'text'" in result.stderr and "type: extract` first" in result.stderr

WORDS = re.compile(r"\w+")


def _shingles(text: str | None) -> Counter[tuple[str, ...]]:
    tokens = WORDS.findall(text or "")
    return Counter(tuple(tokens[i : i + 4]) for i in range(max(1, len(tokens) - 3)) if tokens[i : i + 4])


def benchmark_f1(truths: list[str], predictions: list[str | None]) -> float:
    """scrapinghub/article-extraction-benchmark's metric (see benchmarks/bench_extract.py)."""
    precisions, recalls = [], []
    for truth, predicted in zip(truths, predictions):
        gold, got = _shingles(truth), _shingles(predicted)
        tp, fp, fn = sum((gold & got).values()), sum((got - gold).values()), sum((gold - got).values())
        if tp + fp:
            precisions.append(1.0 if fp == fn == 0 else tp / (tp + fp))
        if tp + fn:
            recalls.append(1.0 if fp == fn == 0 else tp / (tp + fn))
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return 2 * p * r / (p + r)


def test_f1_on_the_real_article_extraction_benchmark(shared_data: Path) -> None:
    pages = pl.read_parquet(shared_data / "html_article_extraction_benchmark.parquet")
    out = Extract().annotate(pages.select("id", "html"))
    assert out.get_column("reason").null_count() == pages.height
    assert benchmark_f1(pages.get_column("article_body").to_list(), out.get_column("text").to_list()) >= 0.96


def test_a_page_the_extractor_fails_on_is_removed_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from cleanmix.filters import extract

    def fragile(markup: str, options: object) -> tuple[str | None, str | None, str | None]:
        if "boom" in markup:
            raise RecursionError("maximum recursion depth exceeded")
        return "Some main text of the page, long enough.", None, None

    monkeypatch.setattr(extract, "extract", fragile)
    rows = Extract().annotate(pl.DataFrame({"id": ["ok", "bad"], "html": ["<p>fine</p>", "<p>boom</p>"]}))
    assert rows.get_column("reason").to_list() == [None, "extract:failed"]


def test_a_missing_trafilatura_is_named_when_the_pipeline_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trafilatura" else find_spec(name, *a))
    with pytest.raises(ValidationError, match=re.escape("pip install 'cleanmix[html]'")):
        Extract()
