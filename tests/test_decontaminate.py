"""`decontaminate`: benchmark items found verbatim and reformatted, in English and Chinese, named by
benchmark and item; each action; a real `clean run`; bad benchmark files; recall and false
positives on real GSM8K and CMMLU items planted into real web and news text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanmix.filters.decontaminate import Decontaminate, load_index
from conftest import REPO, assert_user_error, clean, write_pipeline, write_shards

EN = [
    {"id": "en-1", "question": "A baker fills twelve trays with nine rolls each and sells all but seven of them before noon. "
                               "How many rolls did the baker sell before noon?",
     "answer": "Twelve trays hold 12 * 9 = 108 rolls. She sells 108 - 7 = 101 rolls before noon. #### 101"},
    {"id": "en-2", "question": "Maria reads fourteen pages every weekday and twice as many pages on each weekend day. "
                               "How many pages does Maria read in two whole weeks?",
     "answer": "On weekdays she reads 5 * 14 = 70 pages a week. #### 336"},
]
ZH = [
    {"qid": "zh-1", "question": "某村去年种植小麦三百亩，今年扩大到四百五十亩，今年的种植面积比去年增加了百分之几"},
    {"qid": "zh-2", "question": "唐代诗人杜甫被后人尊称为诗圣，他的诗歌被称为诗史，下列作品中属于杜甫的是"},
]
PAGE_EN = "Welcome to our homework help forum.\nPosted by a parent on Monday.\n"
PAGE_ZH = "本报讯 今年全县农业生产形势良好，各乡镇积极推广新品种。\n"


def fullwidth(text: str) -> str:
    """ASCII letters, digits and marks as their full-width forms (ＡＢＣ１２３？)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@pytest.fixture()
def benchmarks(tmp_path: Path) -> dict:
    pl.DataFrame(EN).write_parquet(tmp_path / "en.parquet")
    (tmp_path / "zh.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ZH))
    return {"mathqa": {"path": str(tmp_path / "en.parquet"), "fields": ["question", "answer"]},
            "zhqa": {"path": str(tmp_path / "zh.jsonl"), "fields": ["question"], "id_field": "qid"}}


DOCS = {
    "en-verbatim": PAGE_EN + EN[0]["question"] + "\n" + EN[0]["answer"] + "\nThanks for the help!",
    "en-reformatted": PAGE_EN + fullwidth(EN[1]["question"].upper()).replace(" ", "  \n ").replace("？", "!!"),
    "en-question-only": PAGE_EN + "My son asked me this: " + EN[0]["question"] + " Any ideas?",
    "en-same-topic": PAGE_EN + "A baker fills trays with rolls each morning and sells most of them before noon, "
                               "then bakes more for the evening customers who come after work.",
    "zh-verbatim": PAGE_ZH + ZH[0]["question"] + "？\n答案：百分之五十。",
    "zh-reformatted": PAGE_ZH + " ".join(ZH[1]["question"].replace("，", ", ")) + "?",
    "zh-same-topic": PAGE_ZH + "唐代诗人杜甫的诗歌反映了社会现实，被后人称为诗史，他本人也被尊称为诗圣。",
    "zh-short-quote": PAGE_ZH + "会上，代表们谈到今年扩大到四百五十亩的小麦种植计划。",
}
HITS = {"en-verbatim": ("mathqa", "en-1"), "en-reformatted": ("mathqa", "en-2"), "en-question-only": ("mathqa", "en-1"),
        "zh-verbatim": ("zhqa", "zh-1"), "zh-reformatted": ("zhqa", "zh-2")}


def frame(docs: dict[str, str] = DOCS) -> pl.DataFrame:
    return pl.DataFrame({"id": list(docs), "text": list(docs.values())})


def test_finds_items_verbatim_reformatted_and_question_only_in_english_and_chinese(benchmarks):
    marked = Decontaminate(benchmarks=benchmarks, action="annotate").filter(frame())
    found = {row["id"]: (row["decontaminate_benchmark"], row["decontaminate_item"])
             for row in marked.iter_rows(named=True) if row["decontaminate_benchmark"]}
    assert found == HITS
    assert marked.filter(pl.col("id") == "en-verbatim")["decontaminate_overlap"].item() == 1.0


def test_drop_removes_the_hits_with_the_benchmark_as_reason(benchmarks):
    rows = Decontaminate(benchmarks=benchmarks).annotate(frame())
    reasons = dict(zip(rows["id"], rows["reason"]))
    assert {k: v for k, v in reasons.items() if v} == {k: f"decontaminate:{b}" for k, (b, _) in HITS.items()}
    kept = Decontaminate(benchmarks=benchmarks).filter(frame())
    assert kept.columns == ["id", "text"]
    assert kept["id"].to_list() == ["en-same-topic", "zh-same-topic", "zh-short-quote"]


def test_remove_span_cuts_the_item_and_its_punctuation_out(benchmarks):
    docs = {"long": "Intro line of the page.\n“" + EN[0]["question"] + "”\nAn outro line that is long enough to be kept.",
            "all": EN[1]["question"], "zh": PAGE_ZH + "（" + ZH[0]["question"] + "？）" + PAGE_ZH}
    stage = Decontaminate(benchmarks=benchmarks, action="remove_span", name="decont")
    result = stage.process(frame(docs))
    assert result.kept["text"].to_list() == [
        "Intro line of the page.\n\nAn outro line that is long enough to be kept.", PAGE_ZH + PAGE_ZH]
    assert result.kept["decont_item"].to_list() == ["en-1", "zh-1"]
    assert result.rejected.select("id", "reason").rows() == [("all", "decont:mathqa")]
    assert result.modified == {"decont:mathqa": 1, "decont:zhqa": 1}


MC = [  # multiple-choice items with the same template question: only their choices tell them apart
    {"id": "mc-1", "question": "下列说法正确的是", "A": "植物通过光合作用释放氧气", "B": "水在零摄氏度时一定结冰",
     "C": "月球本身能够发出光亮", "D": "声音可以在真空中传播"},
    {"id": "mc-2", "question": "下列说法正确的是", "A": "铁在潮湿的空气中容易生锈", "B": "所有金属都能被磁铁吸引",
     "C": "酒精燃烧只生成水", "D": "空气中含量最多的是氧气"},
    {"id": "mc-3", "question": "下列关于BERT模型的说法中不正确的是哪一项", "A": "采用双向编码", "B": "使用掩码语言模型",
     "C": "网络只有两层", "D": "基于注意力机制"},
]


def choices(row: dict, labels: str) -> str:
    return row["question"] + "\n" + "\n".join(f"{label}{row[k]}" for label, k in zip(labels.split(","), "ABCD"))


def test_a_question_joined_with_its_choices_is_found_under_any_labels_and_told_apart_by_them(tmp_path):
    pl.DataFrame(MC).write_parquet(tmp_path / "mc.parquet")
    fields = ["question", ["question", "A", "B", "C", "D"]]
    # common_ngrams 2: the question the first two share is template wording here, as 下列说法正确的是 is in CMMLU
    stage = Decontaminate(benchmarks={"mc": {"path": str(tmp_path / "mc.parquet"), "fields": fields}}, common_ngrams=2, action="annotate")
    docs = {
        "labels-a-dot": PAGE_ZH + choices(MC[0], "A. ,B. ,C. ,D. ") + "\n答案：A",
        "labels-fullwidth-parens": PAGE_ZH + choices(MC[0], "（Ａ）,（Ｂ）,（Ｃ）,（Ｄ）"),
        "labels-circled": PAGE_ZH + choices(MC[0], "①,②,③,④").replace("\n", " "),
        "other-choices": PAGE_ZH + choices(MC[1], "A、,B、,C、,D、"),
        "template-question-only": PAGE_ZH + MC[0]["question"] + "：今年全县小麦丰收。",
        "one-choice-only": PAGE_ZH + "老师说，植物通过光合作用释放氧气。",
        "bert": PAGE_ZH + choices(MC[2], "A.,B.,C.,D."),
        "gpt-instead-of-bert": PAGE_ZH + MC[2]["question"].replace("BERT", "GPT"),  # a longer word is a token of the window
    }
    marked = stage.filter(frame(docs))
    assert dict(zip(marked["id"], marked["decontaminate_item"])) == {
        "labels-a-dot": "mc-1", "labels-fullwidth-parens": "mc-1", "labels-circled": "mc-1", "other-choices": "mc-2",
        "template-question-only": None, "one-choice-only": None, "bert": "mc-3", "gpt-instead-of-bert": None}


LABEL_STYLES = ["A. ", "(A)", "（A）", "A、", "Ａ．", "[A] ", "a)", "A:", "1.", "①", ""]


@pytest.fixture(scope="module")
def mc_stage(tmp_path_factory) -> Decontaminate:
    folder = tmp_path_factory.mktemp("mc")
    pl.DataFrame(MC).write_parquet(folder / "mc.parquet")
    fields = ["question", ["question", "A", "B", "C", "D"]]
    return Decontaminate(benchmarks={"mc": {"path": str(folder / "mc.parquet"), "fields": fields}}, common_ngrams=2, action="annotate")


@settings(max_examples=60, deadline=None)
@given(style=st.sampled_from(LABEL_STYLES), separator=st.sampled_from(["\n", " ", "\n\n  ", "\t", "；", ""]),
       around=st.tuples(*[st.text(alphabet="今年全县农业生产形势良好各乡镇积极推广新品种。，ab1 \n", max_size=30)] * 2))
def test_a_multiple_choice_item_is_found_whatever_its_labels_and_spacing(mc_stage, style, separator, around):
    labels = [style.replace("A", k).replace("Ａ", chr(ord("Ａ") + i)).replace("a", k.lower()).replace("1", str(i + 1))
              .replace("①", chr(ord("①") + i)) for i, k in enumerate("ABCD")]
    item = MC[0]["question"] + separator + separator.join(label + MC[0][k] for label, k in zip(labels, "ABCD"))
    marked = mc_stage.filter(frame({"page": around[0] + "\n" + item + "\n" + around[1]}))
    assert marked["decontaminate_item"].to_list() == ["mc-1"]


@pytest.mark.parametrize(("sharing", "found"), [(4, True), (5, False)])
def test_template_wording_is_counted_in_items_not_in_the_texts_indexed(tmp_path, sharing, found):
    """Each item's question is indexed twice (alone, and joined with its choices): still one item."""
    question = "关于我国古代四大发明的传播路线，下列说法正确的是"
    rows = [{"id": f"q{i}", "question": question, "A": f"选项甲第{'一二三四五'[i]}种说法", "B": "选项乙"} for i in range(sharing)]
    pl.DataFrame(rows).write_parquet(tmp_path / "mc.parquet")
    stage = Decontaminate(benchmarks={"mc": {"path": str(tmp_path / "mc.parquet"), "fields": ["question", ["question", "A", "B"]]}},
                          action="annotate")  # common_ngrams 5
    marked = stage.filter(frame({"page": PAGE_ZH + question + "？"}))
    assert (marked["decontaminate_item"].item() is not None) is found


def test_csv_folder_and_generated_item_ids(tmp_path):
    folder = tmp_path / "evals"
    folder.mkdir()
    pl.DataFrame({"prompt": [EN[0]["question"]]}).write_csv(folder / "a.csv")
    pl.DataFrame({"prompt": [EN[1]["question"]]}).write_csv(folder / "b.csv")
    stage = Decontaminate(benchmarks={"csvset": {"path": str(folder), "fields": ["prompt"]}}, action="annotate")
    marked = stage.filter(frame({"x": "So: " + EN[1]["question"], "y": "nothing here"}))
    assert marked["decontaminate_item"].to_list() == ["b.csv:0", None]


def test_the_index_is_built_once_per_process_and_again_when_a_file_changes(benchmarks, tmp_path):
    stage = Decontaminate(benchmarks=benchmarks)
    stage.process(frame())
    misses = load_index.cache_info().misses
    for _ in range(3):
        stage.process(frame())
    assert load_index.cache_info().misses == misses
    pl.DataFrame(EN[:1]).write_parquet(tmp_path / "en.parquet")
    assert "en-reformatted" in stage.filter(frame())["id"].to_list()  # en-2 is gone from the benchmark
    assert load_index.cache_info().misses == misses + 1


def test_clean_run_counts_hits_per_benchmark_and_item_and_escapes_samples(benchmarks, tmp_path):
    texts = [[DOCS["en-verbatim"], DOCS["en-same-topic"], DOCS["zh-verbatim"]],
             ["<script>alert(1)</script>\n" + EN[0]["question"], DOCS["zh-same-topic"], DOCS["en-reformatted"]]]
    corpus = write_shards(tmp_path / "in", texts)
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "decontaminate", "benchmarks": benchmarks}], workers=2)
    clean("run", str(pipeline), check=True)
    summary = json.loads((out / "stats" / "summary.json").read_text())
    (stage,) = summary["stages"]
    assert (stage["docs_in"], stage["docs_out"]) == (6, 2)
    assert stage["removed"] == {"decontaminate:mathqa": 3, "decontaminate:zhqa": 1}
    stats = json.loads((out / "stats" / "decontaminate.json").read_text())
    assert stats["tallies"] == {"documents": {"mathqa": 3, "zhqa": 1},
                                "items:mathqa": {"en-1": 2, "en-2": 1}, "items:zhqa": {"zh-1": 1}}
    assert [x["item"] for x in stats["examples"]["mathqa"]] == ["en-1", "en-1", "en-2"]
    rejected = pl.read_parquet(out / "rejected" / "decontaminate")
    assert sorted(rejected["decontaminate_item"].to_list()) == ["en-1", "en-1", "en-2", "zh-1"]
    report = (out / "report.html").read_text()
    assert "documents holding benchmark items" in report and "<script>alert" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report


def test_the_ray_engine_finds_the_same_hits(benchmarks, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'cleanmix[ray]'")
    corpus = write_shards(tmp_path / "in", [list(DOCS.values())[:4], list(DOCS.values())[4:]])
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        stages = [{"type": "decontaminate", "benchmarks": benchmarks}]
        pipeline = write_pipeline(tmp_path / f"{engine}.yaml", corpus, out, stages, workers=2)
        clean("run", str(pipeline), "--engine", engine, check=True)
        stats = json.loads((out / "stats" / "decontaminate.json").read_text())
        outputs[engine] = (stats["removed"], stats["tallies"], pl.read_parquet(out / "data")["id"].to_list())
    assert outputs["ray"] == outputs["local"]
    assert outputs["ray"][0] == {"decontaminate:mathqa": 3, "decontaminate:zhqa": 2}


@pytest.mark.parametrize(("benchmark", "fragments"), [
    ({"path": "no/such/file.parquet", "fields": ["question"]}, ["does not exist", "no/such/file.parquet"]),
    ({"path": "{en}", "fields": ["question", "solution"]}, ["has no field 'solution'", "en.parquet", "question, answer"]),
    ({"path": "{en}", "fields": ["question"], "id_field": "uid"}, ["has no field 'uid'"]),
    ({"path": "{en}", "fields": [["question", "choices"]]}, ["has no field 'choices'", "en.parquet"]),
    ({"path": "{en}", "fields": ["question", []]}, ["fields.1", "at least 1"]),
])
def test_a_bad_benchmark_is_one_paragraph_naming_the_key_and_file(benchmarks, tmp_path, benchmark, fragments):
    benchmark = {**benchmark, "path": benchmark["path"].format(en=benchmarks["mathqa"]["path"])}
    corpus = write_shards(tmp_path / "in", [["a document"]])
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "decontaminate", "benchmarks": {"evals": benchmark}}])
    assert_user_error(clean("run", str(pipeline)), "p.yaml", "stages.0.benchmarks.evals", *fragments)
    assert not out.exists()


def test_the_preset_runs_and_catches_planted_items(tmp_path):
    out = tmp_path / "demo"
    clean("run", "pipelines/presets/decontaminated.yaml", "--output", str(out), check=True)
    (stage,) = [s for s in json.loads((out / "stats" / "summary.json").read_text())["stages"] if s["type"] == "decontaminate"]
    assert stage["removed"] == {}  # the demo corpus holds no GSM8K item
    items = [json.loads(line) for line in (REPO / "sample" / "benchmarks" / "gsm8k_test_20.jsonl").read_text().splitlines()]
    demo = pl.read_parquet(REPO / "sample" / "demo").head(40)
    planted = demo.with_columns(pl.concat_str([pl.col("text"), pl.Series([i["question"] for i in items] * 2)], separator="\n"))
    planted.write_parquet(tmp_path / "planted.parquet")
    out2 = tmp_path / "planted"
    clean("run", "pipelines/presets/decontaminated.yaml", "--output", str(out2), "--set", f"input.path={tmp_path / 'planted.parquet'}",
          check=True)
    (stage,) = [s for s in json.loads((out2 / "stats" / "summary.json").read_text())["stages"] if s["type"] == "decontaminate"]
    assert stage["removed"] == {"gsm8k_sample:gsm8k": stage["docs_in"]}


def plant(pages: list[str], item: str, rng: random.Random) -> str:
    """`item` as its own paragraph at a random place of a random page."""
    lines = rng.choice(pages).split("\n")
    at = rng.randrange(len(lines) + 1)
    return "\n".join([*lines[:at], item, *lines[at:]])


def reformat(text: str, rng: random.Random) -> str:
    """Spacing, line breaks, punctuation, full-width/half-width forms and case changed."""
    if rng.random() < 0.5:
        text = text.replace("，", ",").replace("。", ". ").replace("：", ":")
    else:
        text = text.replace(",", "，").replace("?", "？")
    text = fullwidth(text) if rng.random() < 0.5 else text.upper()
    return "  ".join(text.split(" ")).replace("\n", "\n\n   ")


def test_recall_and_false_positives_on_real_benchmarks_planted_into_real_text(shared_data):
    rng = random.Random(0)
    gsm8k = pl.read_parquet(shared_data / "bench_gsm8k_test.parquet")
    cmmlu = pl.read_parquet(shared_data / "bench_cmmlu_test.parquet")
    web = pl.read_parquet(shared_data / "web_en_cc_wet.parquet")["text"].to_list()
    paragraphs = pl.read_parquet(shared_data / "web_zh_peoples_daily_1998.parquet")["text"].to_list()
    news = ["\n".join(paragraphs[i : i + 12]) for i in range(0, len(paragraphs), 12)]
    stage = Decontaminate(benchmarks={
        "gsm8k": {"path": str(shared_data / "bench_gsm8k_test.parquet"), "fields": ["question", "answer"]},
        "cmmlu": {"path": str(shared_data / "bench_cmmlu_test.parquet"), "fields": ["question", ["question", "A", "B", "C", "D"]]},
    }, action="annotate")
    en = gsm8k.sample(150, seed=1)
    zh = cmmlu.sample(300, seed=1)
    whole_en = [q + "\n" + a for q, a in zip(en["question"], en["answer"])]
    whole_zh = [r["question"] + "\n" + "\n".join(f"{k}. {r[k]}" for k in "ABCD") + f"\n答案：{r['answer']}"
                for r in zh.iter_rows(named=True)]
    kinds = {
        "whole": ([plant(web, t, rng) for t in whole_en], [plant(news, t, rng) for t in whole_zh]),
        "reformatted": ([plant(web, reformat(t, rng), rng) for t in whole_en], [plant(news, reformat(t, rng), rng) for t in whole_zh]),
        "question": ([plant(web, q, rng) for q in en["question"]], [plant(news, q, rng) for q in zh["question"]]),
    }
    text_of = {**dict(zip(gsm8k["id"], gsm8k["question"])), **dict(zip(cmmlu["id"], cmmlu["question"]))}
    expected = [*en["id"], *zh["id"]]
    for kind, (english, chinese) in kinds.items():
        marked = stage.filter(frame(dict(enumerate(english + chinese))))  # type: ignore[arg-type]
        # a hit may name another item with the same question (CMMLU repeats some): that is the item too
        right = [found is not None and text_of[found] == text_of[item] for found, item in zip(marked["decontaminate_item"], expected)]
        # the goals; CMMLU's question alone is often short or template wording (推镜头是指, 下列说法正确的是),
        # and its choices, joined with it, find the whole item
        goal = 0.9 if kind == "question" else 0.98
        assert sum(right[: len(english)]) >= goal * len(english), (kind, "gsm8k", right[: len(english)])
        assert sum(right[len(english) :]) >= goal * len(chinese), (kind, "cmmlu", right[len(english) :])
    clean_docs = stage.filter(frame(dict(enumerate(web + news))))  # type: ignore[arg-type]
    assert clean_docs["decontaminate_item"].null_count() >= 0.998 * clean_docs.height
