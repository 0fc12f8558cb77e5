"""content_safety's line-level spam model: the shipped file is rebuilt byte for byte from the
repository and ../shared/data, it removes spam pages built from real templates that the lists let
through, keeps innocent topical text, and a bad `model` is a one-paragraph error."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
from pydantic import ValidationError
from spam_templates import en_template_pages, zh_template_pages

from cleanmix.filters.content_safety import ContentSafety
from cleanmix.filters.language import bundled_model
from cleanmix.filters.spam_model import MODEL, in_training_half
from conftest import REPO, assert_user_error, clean, write_pipeline

P = "content_safety_"
SCRIPT = REPO / "filters" / "resources" / "content_safety" / "train_spam_model.py"


def test_the_shipped_model_is_rebuilt_byte_for_byte(shared_data, tmp_path):
    """fastText with one thread and a fixed seed, on inputs in a fixed order, writes the same bytes:
    the shipped model is exactly what the script builds from what the repository holds. The script
    runs as it is run by hand, in a fresh interpreter: fastText's training depends on the state of
    the process's memory allocator (after the Ray engine tests, or after large NumPy arrays were
    allocated and freed, the same training on the same file ends in "Encountered NaN")."""
    rebuilt = tmp_path / "spam_model.ftz"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(rebuilt)], check=True, cwd=REPO, capture_output=True, timeout=600)
    assert rebuilt.read_bytes() == MODEL.read_bytes()


TOPICAL = [
    # innocent lines on the spam's topics, written here: news, health, policy, reviews
    "The state gaming commission fined two casinos for failing to report large cash transactions last year.",
    "Researchers found that sex education in schools delays first intercourse and reduces teenage pregnancy.",
    "Police arrested twelve people in a raid on an illegal betting ring that took wagers on college football.",
    "The lottery jackpot rolled over again after no ticket matched all six numbers in Saturday's draw.",
    "Problem gambling helplines reported a rise in calls after sports betting was legalised in the state.",
    "The film follows a young escort who tries to leave the trade and rebuild her life with her son.",
    "公安机关依法打击网络赌博犯罪，今年以来共破获相关案件三百余起。",
    "专家提醒，青少年性教育应当科学、适度，家长和学校要共同承担责任。",
    "体育彩票公益金主要用于全民健身和青少年体育事业发展。",
    "澳门特区政府公布博彩业上半年毛收入，同比增长百分之十二。",
    "扫黄打非专项行动中，执法人员查处了一批传播淫秽物品的网站。",
    "这家酒店的按摩服务很专业，房间干净，前台服务态度也好，下次还会再来。",
]


def test_innocent_topical_lines_are_kept():
    annotated = ContentSafety(mode="annotate").annotate(pl.DataFrame({"text": TOPICAL}))
    assert annotated.filter(pl.col("reason").is_not_null()).select("text", P + "spam_score").rows() == []


def test_whole_spam_pages_from_real_templates_are_removed_by_the_model(shared_data):
    """Spam paragraphs written here, in wording the lists hold too little of (one term of severity 1
    or 2 in a page), in real page frames: the lists alone keep every page; with the model every page
    goes; the same pages' real text is kept."""
    en_spam = ["Lonely tonight? Gorgeous women in your town are waiting to chat with you, register now and meet them in person.",
               "Our discreet agency sends elegant companions to your hotel room, available around the clock, book by phone.",
               "Claim your welcome package now: triple your first top-up and enjoy free rounds on the slots all weekend long."]
    zh_spam = ["寂寞的夜晚，漂亮妹妹在线陪你聊天，加微信就能视频，今晚不孤单。",
               "本地高端模特私人约会，上门服务，随叫随到，价格面议，电话联系。",
               "每天签到领红包，下注就返现，充值一百送一百，输了也能全额退还。"]
    articles = pl.read_parquet(shared_data / "web_en_article_pages.parquet").head(6)
    news = pl.read_parquet(shared_data / "web_zh_peoples_daily_1998.parquet")
    news = news.filter(~in_training_half(news.get_column("id"))).get_column("text").to_list()
    pages = pl.concat([en_template_pages(articles, en_spam, "test"), zh_template_pages(news, zh_spam, "test", 6)])
    with_model = ContentSafety(mode="annotate").annotate(pages)
    lists = ContentSafety(mode="annotate", model=None).annotate(pages)
    assert with_model.select("id", "reason").rows() == [(f"test-{language}-{i}", "content_safety:model")
                                                        for language in ("en", "zh") for i in range(6)]
    assert lists.get_column("reason").is_null().all()
    assert (with_model.get_column(P + "spam_term_score") >= 0.99).all()
    clean_pages = pl.concat([articles.select("id", "text"), pl.DataFrame({"id": [str(i) for i in range(6)], "text": news[:6]})])
    assert ContentSafety().filter(clean_pages).height == clean_pages.height


def test_a_bad_model_is_a_clear_error(tmp_path):
    not_a_model = tmp_path / "notes.ftz"
    not_a_model.write_text("hello")
    cases = [
        (str(tmp_path / "missing.ftz"), ["stages.0.model", "missing.ftz does not exist"]),
        (str(not_a_model), ["stages.0.model", "notes.ftz is not a fastText model"]),
        (bundled_model(), ["stages.0.model", "has no `clean` label"]),
    ]
    data = tmp_path / "in.parquet"
    pl.DataFrame({"id": ["a"], "text": ["some text"]}).write_parquet(data)
    for model, fragments in cases:
        pipeline = write_pipeline(tmp_path / "p.yaml", data, tmp_path / "out", [{"type": "content_safety", "model": model}])
        assert_user_error(clean("run", str(pipeline)), *fragments)
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("threshold", [0, 1.5])
def test_the_threshold_is_a_probability(threshold):
    with pytest.raises(ValidationError, match="model_threshold"):
        ContentSafety(model_threshold=threshold)


def test_without_the_model_there_is_no_score_column_and_no_model_rule():
    stage = ContentSafety(model=None, mode="annotate")
    assert P + "spam_score" not in stage.annotate(pl.DataFrame({"text": ["hello"]})).columns
    assert "model" not in [rule.name for rule in stage.rules()]


SPAM_WITHOUT_TERMS = [
    # lines of the model's training spam that hold no listed term (scored 0.99 or more)
    "Hi dear, I saw your profile and liked it, I am lonely girl looking for serious man, write me on my email for photos",
    "Hi sweetie, I am Natasha, 28, from Kyiv, I dream about strong man, please write me and I send you more private foto",
    "Hello dear member, your withdrawal of 2,500 USDT is pending, deposit 200 more to unlock it and receive a 50% VIP upgrade",
]


def test_a_page_of_two_distinct_spam_lines_goes_without_any_term():
    """Two distinct long lines scoring high remove a page (`model_page`) though neither holds a term
    (so the `model` rule, which needs one, does not fire); one such line, or one repeated, does not:
    a page's single marketing line or a repeated award title stays."""
    frame = "Home | About | Contact\n{}\nCopyright 2024. All rights reserved."
    pages = [frame.format("\n".join(SPAM_WITHOUT_TERMS[:2])), frame.format(SPAM_WITHOUT_TERMS[2]),
             frame.format("\n".join([SPAM_WITHOUT_TERMS[0]] * 3))]
    annotated = ContentSafety(mode="annotate").annotate(pl.DataFrame({"text": pages}))
    assert annotated.get_column("reason").to_list() == ["content_safety:model_page", None, None]
    assert annotated.get_column(P + "spam_term_score").to_list() == [0.0, 0.0, 0.0]
    second = annotated.get_column(P + "spam_second_score").to_list()
    assert second[0] >= 0.9 and second[1:] == [0.0, 0.0]
