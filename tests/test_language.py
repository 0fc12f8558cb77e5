"""Language ID: fastText lid.176 bundled (no download), corrected by script, accurate on real sentences."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cleanmix.filters.language import Language, bundled_model

TEXTS = {
    "en": "The committee met on Tuesday to review the budget for the coming year.",
    "zh": "今天天气很好",  # short Han-only text: lid.176 alone says ja
    "ja": "今日はとても良い天気ですね。",
    "ko": "오늘은 날씨가 정말 좋네요.",
    "de": "Die Sitzung des Ausschusses fand am Dienstag im Rathaus statt.",
}


def frame(texts: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts}, schema={"id": pl.String, "text": pl.String})


def test_the_model_ships_with_the_package() -> None:
    assert Path(bundled_model()).is_file()


def test_labels_and_script_correction() -> None:
    out = Language().annotate(frame(list(TEXTS.values())))
    assert out["language"].to_list() == list(TEXTS)
    assert out["reason"].to_list() == [None] * len(TEXTS)  # no languages given: keep everything
    assert out["language_score"].min() > 0.5


def test_filter_keeps_listed_languages_with_their_columns() -> None:
    df = frame([TEXTS["en"], TEXTS["zh"], TEXTS["de"], "", None, "ok"])
    stage = Language(languages=["en", "zh"])
    kept = stage.filter(df)
    assert kept["text"].to_list() == [TEXTS["en"], TEXTS["zh"]]
    assert kept.columns == ["id", "text", "language", "language_score"]
    reasons = stage.annotate(df)["reason"].to_list()
    assert reasons[2:5] == ["language:not_in[en,zh]", "language:not_in[en,zh]", "language:no_text"]
    assert reasons[5] in ("language:not_in[en,zh]", "language:low_score")


def test_min_score_and_model_path() -> None:
    stage = Language(languages=["en"], min_score=0.99, model_path=bundled_model())
    assert stage.annotate(frame(["hello there"]))["reason"][0] == "language:low_score"


def test_chinese_text_settled_by_its_script_skips_the_model_and_decides_the_same() -> None:
    """Mostly-Han text is scored by its Han share without the model; text with less Han still asks the model."""
    texts = ["今天我们在北京A区开会，讨论经济发展问题。", "今天我们在北京开会讨论经济发展问题 iPhone"]
    fast, slow = Language().annotate(frame(texts)), Language(script_only=1.0).annotate(frame(texts))
    assert fast["language"].to_list() == slow["language"].to_list() == ["zh", "zh"]
    assert fast["language_score"][0] == pytest.approx(18 / 19) and slow["language_score"][0] > 0.99  # Han share vs the model
    assert fast["language_score"][1] == slow["language_score"][1] > 0.9  # Han share 0.74: the model's probability
    for min_score in (0.5, 0.95, 0.999):
        assert Language(languages=["zh"], min_score=min_score).filter(frame(texts)).height == \
            Language(languages=["zh"], min_score=min_score, script_only=1.0).filter(frame(texts)).height


def test_long_documents_and_newlines() -> None:
    text = ("第一段的内容。\n" * 2000) + "\n\n" + TEXTS["en"]
    out = Language().annotate(frame([text, "line one\nline two\rline three"]))
    assert out["language"][0] == "zh"
    assert out["language"][1] == "en"  # line breaks (\n, \r) do not reach the model as such


@pytest.fixture(scope="module")
def lingua(shared_data: Path) -> pl.DataFrame:
    df = pl.read_parquet(shared_data / "langid_lingua_75lang.parquet")
    return Language().annotate(df.filter(pl.int_range(pl.len()).over("lang") < 300))


@pytest.mark.parametrize(
    ("lang", "minimum"),
    [("en", 0.99), ("zh", 0.99), ("ja", 0.98), ("ko", 0.98), ("de", 0.98), ("fr", 0.98), ("ru", 0.98), ("es", 0.95), ("ar", 0.98)],
)
def test_accuracy_on_lingua_sentences(lingua: pl.DataFrame, lang: str, minimum: float) -> None:
    rows = lingua.filter(pl.col("lang") == lang)
    accuracy = (rows["language"] == lang).mean()
    assert accuracy >= minimum, accuracy


def test_chinese_is_never_japanese_without_kana(lingua: pl.DataFrame) -> None:
    zh = lingua.filter(pl.col("lang") == "zh")
    assert (zh["language"] == "zh").all()


def test_rows_without_text_or_han_take_the_right_path() -> None:
    """The script measures and the model run only on the rows they can change: a null text has no
    language and no score; an empty or blank one no language and score 0; kana-only text is never
    settled as Chinese; Han-only text is settled by its script, its score the Han share (1.0). With
    `min_han_share: 0` every present text without kana is Chinese, blank or English alike (the
    rule as written: at least 0% Han)."""
    texts = [None, "", "  \n ", "ひらがなとカタカナだけです", "中文文本", TEXTS["en"]]
    out = Language().annotate(frame(texts))
    assert out["language"].to_list() == [None, None, None, "ja", "zh", "en"]
    assert out["language_score"].to_list()[:3] == [None, 0.0, 0.0] and out["language_score"][4] == 1.0
    out = Language(min_han_share=0.0).annotate(frame(texts))
    assert out["language"].to_list() == [None, "zh", "zh", "ja", "zh", "zh"]
    assert out["language_score"].to_list()[:3] == [None, 0.0, 0.0] and out["language_score"][4] == 1.0



def test_the_columns_types_are_known_without_the_model(tmp_path: Path) -> None:
    """A run measures each stage's columns on an empty batch before it starts (to refuse input columns of
    their names): for language ID that reads no model, and the types are those a real batch gets."""
    model = tmp_path / "lid.176.ftz"
    model.write_bytes(Path(bundled_model()).read_bytes())
    stage = Language(model_path=str(model))
    model.unlink()  # reading the model now would fail
    assert stage.metric_types == {"language": pl.String, "language_score": pl.Float64}
    measured = Language().with_metrics(frame(list(TEXTS.values())))
    assert {name: measured.schema[name] for name in stage.metric_types} == stage.metric_types
