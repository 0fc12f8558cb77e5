"""Each rule of the quality stages on crafted documents: the exact reason, and no crash on odd input."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from cleanmix.filters.c4_quality import C4Quality
from cleanmix.filters.char_repetition import CharRepetition
from cleanmix.filters.cjk_junk import CjkJunk
from cleanmix.filters.fineweb_quality import FinewebQuality
from cleanmix.filters.garbled import Garbled
from cleanmix.filters.gopher_quality import GopherQuality
from cleanmix.filters.gopher_repetition import GopherRepetition
from cleanmix.filters.language import Language
from cleanmix.filters.text_units import tokens
from cleanmix.filters.word_salad import WordSalad
from cleanmix.pipelines.registry import stage_types
from cleanmix.pipelines.stage import Filter

PROSE = (
    "The committee met on Tuesday to review the budget for the coming year. "
    "Members agreed that the library needs a new roof and that the work should start in spring. "
    "The treasurer said the town has saved enough money to pay for it without raising taxes. "
    "Several residents spoke in favour of the plan, and one asked about the cost of repairs to the bridge. "
    "The chair promised a full report at the next meeting, which will be held in March."
)
PROSE_ZH = (
    "今年春天，这个小镇的图书馆进行了一次全面的修缮。"
    "工人们更换了屋顶，并且把阅览室的窗户都换成了新的。"
    "馆长说，修缮的费用来自镇上多年的积蓄，没有增加居民的负担。"
    "许多居民在开放日那天来到图书馆，对新的环境表示满意。"
    "一位老人说，他在这里读书已经有四十年了，这是他见过的最好的一次变化。"
    "镇政府表示，明年还将对桥梁进行维修，并会在下次会议上公布详细的计划。"
)
ALL_STAGES = [GopherQuality, GopherRepetition, C4Quality, FinewebQuality, Garbled, CjkJunk, CharRepetition, WordSalad]


def reason(stage: Filter, text: str | None) -> str | None:
    return stage.annotate(pl.DataFrame({"id": ["x"], "text": [text]}, schema={"id": pl.String, "text": pl.String}))["reason"][0]


@pytest.mark.parametrize("cls", ALL_STAGES)
def test_clean_prose_passes_every_stage(cls: type[Filter]) -> None:
    for text in (PROSE, PROSE_ZH, PROSE + "\n" + PROSE_ZH):
        assert reason(cls(), text) is None, (cls.__name__, text[:30])


@pytest.mark.parametrize("cls", ALL_STAGES)
def test_odd_input_never_crashes(cls: type[Filter]) -> None:
    odd = [None, "", " \n\n ", "x", "\x00\x01\x02" * 100, "a" * 2_000_000, "中" * 3, "🙂" * 50, "\r\n".join(["é"] * 10)]
    df = pl.DataFrame({"id": [str(i) for i in range(len(odd))], "text": odd})
    out = cls().annotate(df)
    assert out.height == len(odd)
    assert out["reason"][0] == f"{cls().type}:no_text"


def test_registry_finds_the_stages() -> None:
    types = stage_types()
    for name in ("language", "gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "garbled", "cjk_junk",
                 "char_repetition", "word_salad"):
        assert name in types


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("word " * 20, "gopher_quality:too_few_words"),
        ("a an it is " * 40, "gopher_quality:short_words"),
        (" ".join(["extraordinarily", "uncharacteristically", "incomprehensibilities", "the", "of"] * 20), "gopher_quality:long_words"),
        (PROSE + " #tag" * 30, "gopher_quality:hashes"),
        (PROSE + " wait..." * 30, "gopher_quality:ellipses"),
        ("\n".join("- " + PROSE[i * 40 : i * 40 + 40] for i in range(10)), "gopher_quality:bullet_lines"),
        ("\n".join(PROSE[i * 40 : i * 40 + 40] + "..." for i in range(10)) + "\n" + PROSE, "gopher_quality:ellipsis_lines"),
        (PROSE + " 1234 5678 9012" * 20, "gopher_quality:few_alpha_words"),
        ("cat dog bird house tree river mountain " * 10, "gopher_quality:few_stop_words"),
    ],
)
def test_gopher_quality_reasons(text: str, expected: str) -> None:
    assert reason(GopherQuality(), text) == expected


def test_gopher_quality_alpha_share_of_tokens_counts_punctuation() -> None:
    text = PROSE.replace(" ", " , ")
    assert reason(GopherQuality(), text) is None
    assert reason(GopherQuality(alpha_share_of="tokens"), text) == "gopher_quality:few_alpha_words"


def test_gopher_quality_measures_chinese_per_character() -> None:
    out = GopherQuality().annotate(pl.DataFrame({"text": [PROSE_ZH]}))
    assert out["gopher_quality_words"][0] > 150  # one word per Han character
    assert out["gopher_quality_stop_words"][0] >= 2
    assert out["reason"][0] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "gopher_repetition:empty"),
        ("\n\n".join([PROSE] * 3 + ["other words here."]), "gopher_repetition:dup_para_frac"),
        ("\n".join(["Buy cheap shoes now and save."] * 5 + [PROSE]), "gopher_repetition:dup_line_frac"),
        (PROSE + " " + " ".join(["cheap shoes"] * 40), "gopher_repetition:top_2_gram"),
        (PROSE + " " + PROSE[:250], "gopher_repetition:dup_5_gram"),
        (PROSE_ZH + "便宜的鞋子" * 30, "gopher_repetition:top_2_gram"),
    ],
)
def test_gopher_repetition_reasons(text: str, expected: str) -> None:
    assert reason(GopherRepetition(), text) == expected


def test_gopher_repetition_zh_limits_apply_to_cjk_only() -> None:
    out = GopherRepetition().annotate(pl.DataFrame({"text": [PROSE_ZH]}))
    assert out["gopher_repetition_cjk_share"][0] > 0.8
    # a limit of 0 fails every document it applies to: each limit set reaches only its own script
    assert [reason(GopherRepetition(max_top_ngram_frac={2: 0.0}), t) for t in (PROSE, PROSE_ZH)] == ["gopher_repetition:top_2_gram", None]
    cjk_only = GopherRepetition(cjk_max_top_ngram_frac={2: 0.0})
    assert [reason(cjk_only, t) for t in (PROSE, PROSE_ZH)] == [None, "gopher_repetition:top_2_gram"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PROSE + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4_quality:lorem_ipsum"),
        (PROSE + "\nfunction f(x) { return x + 1; }.", "c4_quality:curly_bracket"),
        ("Only two sentences here. This is the second one.", "c4_quality:too_few_sentences"),
        ("\n".join(["Home", "About us", "Contact", "Products and services"]), "c4_quality:too_few_sentences"),
    ],
)
def test_c4_reasons(text: str, expected: str) -> None:
    assert reason(C4Quality(), text) == expected


def test_c4_ignores_javascript_and_policy_lines_but_keeps_the_page() -> None:
    text = PROSE + "\nPlease enable JavaScript to view this page.\nRead our privacy policy here."
    out = C4Quality().annotate(pl.DataFrame({"text": [text]}))
    assert out["reason"][0] is None and out["c4_quality_kept_lines"][0] == 1


def test_c4_counts_chinese_sentences_and_asks_none_of_chinese_pages_by_default() -> None:
    texts = [PROSE_ZH, "今天天气很好。我们去公园。", "Today is fine. We go to the park. Mixed 中文."]
    out = C4Quality().annotate(pl.DataFrame({"text": texts}))
    assert out["c4_quality_sentences"].to_list() == [6, 2, 3]
    assert out["reason"].to_list() == [None, None, "c4_quality:too_few_sentences"]  # the third page is mostly English
    strict = C4Quality(cjk_min_sentences=5).annotate(pl.DataFrame({"text": texts}))
    assert strict["reason"].to_list() == [None, "c4_quality:too_few_sentences", "c4_quality:too_few_sentences"]


def test_fineweb_measures_chinese_pages_by_fineweb2_thresholds() -> None:
    poem = "\n".join(["春风吹过田野", "燕子飞回", "桃花开了。", "河水在流", "孩子们在唱歌"]
                     + ["山那边是家", "月亮升起来", "星星很亮", "夜深了", "明天再见"])
    short = "\n".join(["今天的会议很重要。", "大家都来了。", "主任讲了话。", PROSE_ZH])
    repeated = PROSE_ZH + "\n" + "欢迎订阅本报。\n" * 2
    out = FinewebQuality().annotate(pl.DataFrame({"text": [poem, short, repeated]}))
    assert out["fineweb_quality_line_punct"][0] == 0.1  # one line in ten ends a sentence: 0.1 < 0.106
    assert out["reason"].to_list() == ["fineweb_quality:line_punct_ratio", None, None]
    english = FinewebQuality(cjk_share=1.0).annotate(pl.DataFrame({"text": [poem, short, repeated]}))  # no page counts as CJK
    assert english["reason"].to_list() == [
        "fineweb_quality:line_punct_ratio", "fineweb_quality:short_line_ratio", "fineweb_quality:char_dup_ratio",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" \n \n", "fineweb_quality:empty"),
        (
            "\n".join(["Home", "News", "Sport", "Weather", "A longer line that has no end mark at all"] * 3),
            "fineweb_quality:line_punct_ratio",
        ),
        ("\n".join(["Short line.", "Another one.", "Third.", PROSE]), "fineweb_quality:short_line_ratio"),
        (PROSE + "\n" + "Subscribe to our newsletter.\n" * 2, "fineweb_quality:char_dup_ratio"),
        ("\n".join(f"Internationalization telecommunications{i}." for i in range(30)), "fineweb_quality:list_ratio"),
    ],
)
def test_fineweb_reasons(text: str, expected: str) -> None:
    assert reason(FinewebQuality(), text) == expected


def test_fineweb_counts_sentences_closed_by_quotes_or_credits() -> None:
    """`said.”` and `。（新华社）` end sentences; a line of zero-width spaces is no line."""
    quoted = ["“It was a great show.”", "– Man**", "“Very talented people!”", "– Ali***"]
    credited = ["本报讯今天举行了会议。（新华社）", "图片说明", "这是矿工们准备下井作业。（宋振平摄）", "小标题"]
    texts = ["\n".join(quoted), "\n".join(credited), "First line.\n\u200b\n\u200b\nSecond."]
    out = FinewebQuality().annotate(pl.DataFrame({"text": texts}))
    assert out["fineweb_quality_line_punct"].to_list() == [0.5, 0.5, 1.0]


def test_gopher_repetition_ignores_zero_width_separators() -> None:
    text = "\n\n\u200b\n\n".join(f"Paragraph {i} says something new about the festival." for i in range(4))
    out = GopherRepetition().annotate(pl.DataFrame({"text": [text]}))
    assert out["gopher_repetition_dup_para_frac"][0] == 0 and out["gopher_repetition_dup_line_frac"][0] == 0


def test_cjk_dashes_and_ellipses_are_one_token() -> None:
    toks = pl.select(tokens(pl.lit("饮酒——李白……"))).to_series()[0].to_list()
    assert toks == ["饮", "酒", "——", "李", "白", "……"]


def test_gopher_quality_knows_fineweb2_chinese_stop_words() -> None:
    out = GopherQuality(mode="annotate").annotate(pl.DataFrame({"text": ["雪，以严冬为父\n雪，以海为家\n今年月日"]}))
    assert out["gopher_quality_stop_words"][0] >= 3  # 为, 年, 月, 日


@pytest.mark.parametrize(
    ("cls", "text", "expected"),
    [
        (Garbled, PROSE_ZH.encode("utf-8").decode("latin-1"), "garbled:mojibake"),
        (Garbled, "He said “yes”, and that’s final. " * 5 + "Thanks.", None),
        (Garbled, ("He said “yes”, and that’s final. " * 5).encode("utf-8").decode("latin-1"), "garbled:mojibake"),
        (Garbled, PROSE_ZH.encode("utf-8").decode("gbk", errors="ignore"), "garbled:rare_han"),
        (Garbled, PROSE_ZH.encode("gbk").decode("utf-8", errors="replace"), "garbled:replacement"),
        (Garbled, "\x00\x01\x02\x03binary" * 20, "garbled:control"),
        (Garbled, "Příliš žluťoučký kůň úpěl ďábelské ódy. Šárka šla. " * 5, None),
        (CjkJunk, "中 国 人 民 今 天 很 高 兴 地 庆 祝 新 年 的 到 来 ， 大 家 一 起 唱 歌", "cjk_junk:spaced_han"),
        (CjkJunk, "首页 新闻 体育 财经 娱乐 科技 汽车 房产 教育 旅游 时尚 健康 游戏", "cjk_junk:spaced_han"),
        (CjkJunk, "ｗｗｗ．ｃｈｅａｐ－ｓｈｏｅｓ．ｃｏｍ ｂｕｙ ｎｏｗ ｆｒｅｅ ｓｈｉｐｐｉｎｇ", "cjk_junk:fullwidth_latin"),
        (CjkJunk, "ｶﾀｶﾅﾃﾞｶｲﾃｱﾙﾌﾞﾝｼｮｳﾃﾞｽｶﾞﾖﾐﾆｸｲﾃﾞｽﾈ", "cjk_junk:halfwidth_katakana"),
        (CjkJunk, "太好了！！！！！！！！！！！！！！！！！！！！真的吗？？？？？？？？？？", "cjk_junk:punct_runs"),
        (CjkJunk, "★☆★ | ☆★☆ | ◆◇◆ | ■□■ | ▲△▲ | ●○● | 好", "cjk_junk:punct"),
        (CjkJunk, "深证Ａ股今天上涨了，ＡＢＣ公司的股价创下新高。" * 3, None),
        (CharRepetition, "哈哈哈哈哈哈哈哈哈哈哈哈", "char_repetition:repeated_chars"),
        (CharRepetition, "buybuybuybuybuybuy cheap now", "char_repetition:repeated_chars"),
        (CharRepetition, PROSE + " " + "z" * 300 + " " + PROSE * 5, "char_repetition:long_stretch"),
        (CharRepetition, PROSE_ZH + "哈哈哈", None),
        (CharRepetition, "| a | b |\n|   |   |\n" + PROSE, None),
    ],
)
def test_junk_reasons(cls: type[Filter], text: str, expected: str | None) -> None:
    assert reason(cls(), text) == expected


def test_word_salad() -> None:
    words = PROSE.split()
    salad = " ".join(words[i] for i in (7 * j % len(words) for j in range(len(words))))
    assert reason(WordSalad(), salad) == "word_salad:lowercase_starts"
    assert reason(WordSalad(), PROSE) is None
    assert reason(WordSalad(), PROSE_ZH) is None


def test_word_salad_in_chinese_by_character_neighbours() -> None:
    prose = PROSE_ZH * 2
    chars = list(prose)
    shuffled = "".join(chars[i] for i in (7 * j % len(chars) for j in range(len(chars))))  # same characters, new neighbours
    traditional = "今年春天，這個小鎮的圖書館進行了一次全面的修繕。工人們更換了屋頂，並且把閱覽室的窗戶都換成了新的。" * 4
    japanese = "今年の春、この小さな町の図書館は全面的な改修を行いました。" * 8 + shuffled
    out = WordSalad().annotate(pl.DataFrame({"text": [prose, shuffled, traditional, japanese, PROSE_ZH[:60]]}))
    pairs = out["word_salad_word_pairs"].to_list()
    assert pairs[0] > 0.3 and pairs[1] < 0.1 and pairs[2] > 0.3, pairs
    assert pairs[3] is None and pairs[4] is None  # kana: Japanese, not measured; too few pairs to judge
    assert out["reason"].to_list() == [None, "word_salad:few_word_pairs", None, None, None]


@pytest.mark.parametrize("stage", [*ALL_STAGES, Language], ids=lambda cls: cls.__name__)
def test_input_columns_pass_through_whatever_their_names(stage: type[Filter]) -> None:
    """A user's `tokens` or `_lines` column is theirs: no stage's working column may collide with it or drop it."""
    names = ["tokens", "words", "cjk", "letters", "stop_words", "lines", "sentences", "pairs", "top_2", "dup_5"]
    names += ["_line", "_lines", "_doc", "_punct", "_words", "_head", "_han", "_han_share", "_chinese", "_found", "_part", "_toks"]
    df = pl.DataFrame({"id": ["a", "b"], "text": [PROSE, PROSE_ZH], **{name: [1, 2] for name in names}})
    kept = stage().filter(df)
    assert kept.select(names).rows() == df.select(names).head(kept.height).rows() and kept.height >= 1


def test_filter_mode_and_arrow_tables() -> None:
    df = pl.DataFrame({"id": ["a", "b"], "text": [PROSE, "word " * 20]})
    assert GopherQuality().filter(df)["id"].to_list() == ["a"]
    table = GopherQuality().filter(df.to_arrow())
    assert isinstance(table, pa.Table) and table.num_rows == 1
    kept = GopherQuality(mode="annotate").process(df).kept
    assert kept.height == 2 and "gopher_quality_words" in kept.columns
