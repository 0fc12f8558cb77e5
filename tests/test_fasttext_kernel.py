"""The compiled fastText predict (filters/_fasttext.c over filters/fasttext_model.py's parse) against fastText's own
`predict(line + "\\n", k, threshold)`: the same labels in the same order and the same probabilities (==, not approx),
or language ID's scores and decisions would move. On the bundled lid.176.ftz for every shared text's model line, on
edge strings, and on small models of each loss trained here (dense and quantized, with and without norms and a
quantized output, pruned); a model the kernel does not implement goes to fastText itself."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import fasttext
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanmix.filters import fasttext_model, language
from cleanmix.filters._script import model_lines, script_counts
from cleanmix.filters.classifier import score_texts, score_texts_with
from cleanmix.filters.language import Language, _identify_batch, _identify_with_fasttext, bundled_model
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.stage import TEXT
from conftest import shared_text_columns


@cache
def reference(path: str) -> fasttext.FastText._FastText:
    return fasttext.load_model(path)


def assert_same(path: str, lines: list[str], k: int = 3, threshold: float = 0.0) -> int:
    """The kernel's labels and probabilities for `lines` equal fastText's; returns the number of lines."""
    model = fasttext_model.load(path)
    assert model is not None
    found, probabilities = model.predict(lines, k, threshold)
    predict = reference(path).f.predict
    for i, line in enumerate(lines):
        got = [(float(p), model.labels[label]) for label, p in zip(found[i], probabilities[i]) if label >= 0]
        expected = predict(line + "\n", k, threshold, "replace")
        if got != expected:
            pytest.fail(f"line {i} {line!r:.300}, k={k}, threshold={threshold}: kernel {got} != fastText {expected}")
    assert (found[:, 1:][found[:, :-1] < 0] < 0).all(), "a label after a missing one"
    return len(lines)


def language_lines(texts: pl.Series, max_chars: int = 4000) -> list[str]:
    """The model's lines of every non-null text, as Language.metrics builds them."""
    offsets, data, present = arrow_buffers.texts(texts)
    counts = np.empty((4, len(present)), np.int64)
    script_counts(offsets, data, present, max_chars, counts)
    return model_lines(offsets, data, present, np.flatnonzero(present).astype(np.int64), counts[0])


def test_every_shared_text(shared_data: Path) -> None:
    """lid.176.ftz's top 3 on the model line of every text of the project's real data, and the stage's struct column
    (language, score, Chinese share) equal to the one fastText's line-by-line loop built, on the first 3,000 of each."""
    count = 0
    for column in shared_text_columns(shared_data):
        lines = language_lines(column)
        count += assert_same(bundled_model(), lines)
        head = [*lines[:3000], ""]
        assert _identify_batch(head, bundled_model()).equals(_identify_with_fasttext(head, bundled_model()))
    assert count >= 150_000, count


@cache
def dictionary_words() -> list[str]:
    """Words of lid.176's dictionary (known words take their precomputed rows), and a label."""
    words = reference(bundled_model()).get_words()
    return [*words[:40], *words[-40:], "__label__en", "__label__xx"]


PIECES = [
    *[" ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x00", "\u00a0", "\u3000"],
    *["a", "I", "é", "ß", "я", "ا", "ก", "한", "中", "文", "あ", "😀", "\U00020000", "\U0010fffd", "e\u0301", "\ufeff"],
    *["the", "The", "hello", "world", "Paris", "über", "中文", "日本語", "Москва", "<", ">", "<s>", "</s>", "</s", "s>", "__label__"],
    *["x" * 200, "ab" * 150, "中" * 120, "😀" * 60, "1234567890", ".", ",", "!?", "-", "'"],
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(PIECES), st.sampled_from(["the", "Paris"])), max_size=25).map("".join),
                min_size=1, max_size=8), st.sampled_from([1, 3, -1]), st.sampled_from([0.0, 0.05]))
def test_edge_strings(lines: list[str], k: int, threshold: float) -> None:
    assert_same(bundled_model(), lines, k, threshold)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(dictionary_words()), st.sampled_from(PIECES[:11])), max_size=20).map("".join))
def test_dictionary_words(line: str) -> None:
    assert_same(bundled_model(), [line, line + " " + line, "</s> " + line, line + "\n" + line], 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.characters(codec="utf-8"), max_size=40).map("".join))
def test_any_characters(line: str) -> None:
    assert_same(bundled_model(), [line, line * 5, line.replace(" ", "\t")], 3)


def test_empty_and_blank_lines() -> None:
    """"" + "\\n" is the line "</s>" to fastText, which predicts from it; language ID makes an empty line null itself."""
    assert_same(bundled_model(), ["", " ", "\t\v\f\r", "\n", "\0", "</s>", "</s>x", "x</s>", "a </s> b", "__label__en"], 3)
    assert_same(bundled_model(), ["", "a"], -1, 0.0)
    rows = _identify_batch(["", "a", ""], bundled_model())
    assert rows.is_null().to_list() == [True, False, True]


def training_lines(shared_data: Path) -> list[str]:
    """Labelled sentences from the shared data (fastText's training format): each of 75 languages split into 4 labels
    by row, 300 labels (quantizing the output needs 256 rows)."""
    frame = pl.read_parquet(shared_data / "langid_lingua_75lang.parquet").group_by("lang", maintain_order=True).head(120)
    return [f"__label__{lang}{i % 4} {text}".replace("\n", " ") for i, (lang, text) in enumerate(frame.select("lang", "text").iter_rows())]


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The training file, and test lines: held-out sentences and other shared text, with edge strings."""
    folder = tmp_path_factory.mktemp("fasttext")
    train = folder / "train.txt"
    train.write_text("\n".join(training_lines(shared_data)) + "\n")
    lines = [line for column in shared_text_columns(shared_data) for line in language_lines(column.gather_every(50).head(150))]
    return train, [*lines, *PIECES, "the the the", "Paris ist schön", "__label__en hello", "中文 </s> 日本語"]


MODELS = {
    "hs": {"loss": "hs"},
    "hs-bigrams": {"loss": "hs", "wordNgrams": 2},
    "softmax": {"loss": "softmax"},
    "softmax-bigrams": {"loss": "softmax", "wordNgrams": 2, "minn": 3, "maxn": 5},
    "ova-bigrams": {"loss": "ova", "wordNgrams": 2},
    "softmax-words-only": {"loss": "softmax", "maxn": 0},
    "hs-dim16": {"loss": "hs", "dim": 16},
}
QUANTIZED = {  # (model, quantize's arguments): dim 10 with dsub 4 has a last subquantizer of 2; a cutoff prunes the
    # dictionary and keeps an index of the n-gram buckets left (softmax-bigrams': empty, every n-gram dropped); dim 16
    # with dsub 2 is lid.176.ftz's shape, summed in registers
    "hs": {"dsub": 4},
    "hs-bigrams": {"qnorm": True, "qout": True, "cutoff": 100_000, "dsub": 4},
    "softmax": {"qnorm": True},
    "softmax-bigrams": {"qout": True, "cutoff": 2000},
    "ova-bigrams": {"qnorm": True, "qout": True, "cutoff": 5000},
    "hs-dim16": {"qnorm": True, "cutoff": 40_000},
}


TRAIN = """
import sys, json, fasttext
train, path, arguments, quantize = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
model = fasttext.train_supervised(input=train, **arguments)
if quantize is not None:
    model.quantize(input=train, retrain=False, **quantize)
model.save_model(path)
"""


def trained(train: Path, name: str, quantize: dict | None = None) -> str:
    """A small model of MODELS[name] (or `name` the loss), trained once (one thread, seeded), saved beside `train`;
    quantized with `quantize`'s arguments when given. In a fresh interpreter: fastText 0.9.3's training stops now and
    then with "Encountered NaN" in a process that has run other code (as if it read memory it did not set); another
    seed is then tried."""
    suffix = "" if quantize is None else "-" + "-".join(f"{key}{value}" for key, value in sorted(quantize.items()))
    path = train.parent / f"{name}{suffix}.{'bin' if quantize is None else 'ftz'}"
    for seed in range(1, 6):
        if path.exists():
            break
        arguments = {"dim": 10, "epoch": 3, "minn": 2, "maxn": 4, "bucket": 50_000, "thread": 1, "seed": seed, "verbose": 0}
        arguments |= MODELS.get(name, {"loss": name})
        command = [sys.executable, "-c", TRAIN, str(train), str(path), json.dumps(arguments), json.dumps(quantize)]
        subprocess.run(command, capture_output=True)
    assert path.exists(), f"fastText could not train {name} {quantize}"
    return str(path)


@pytest.mark.parametrize("name", MODELS)
def test_trained_models(corpus: tuple[Path, list[str]], name: str) -> None:
    train, lines = corpus
    path = trained(train, name)
    for k, threshold in [(1, 0.0), (3, 0.0), (-1, 0.0), (3, 0.1), (-1, 0.02)]:
        assert_same(path, lines, k, threshold)
    assert _identify_batch(lines, path).equals(_identify_with_fasttext(lines, path))


@pytest.mark.parametrize("name", QUANTIZED)
def test_quantized_models(corpus: tuple[Path, list[str]], name: str) -> None:
    train, lines = corpus
    path = trained(train, name, QUANTIZED[name])
    for k, threshold in [(1, 0.0), (3, 0.0), (-1, 0.0), (3, 0.1)]:
        assert_same(path, lines, k, threshold)


@pytest.mark.parametrize("name", ["hs", "softmax-bigrams", "ova-bigrams"])
def test_classifier_scores(corpus: tuple[Path, list[str]], name: str) -> None:
    """The classifier stage's score (a label's probability among all labels, clipped to 0..1; null for a null line) is
    the one fastText's line-by-line loop gave, for a dense and a quantized model, and for a label the model lacks."""
    train, lines = corpus
    texts = pl.Series([None, *lines, None, ""], dtype=pl.String)
    for path in [trained(train, name), trained(train, name, QUANTIZED.get(name, {"qnorm": True}))]:
        for label in ["en0", "de3", "zz"]:
            assert score_texts(texts, path, label).equals(score_texts_with(reference(path), texts, label))


def test_a_model_it_does_not_implement_goes_to_fasttext(corpus: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative sampling (and a file it cannot read) loads as None; the stage then runs fastText's predict (and for a
    model the kernel implements, it does not)."""
    train, lines = corpus
    path = trained(train, "ns")
    assert fasttext_model.load(path) is None
    assert fasttext_model.parse(b"\0" * 64) is None
    truncated = train.parent / "truncated.ftz"
    truncated.write_bytes(Path(bundled_model()).read_bytes()[:5000])
    assert fasttext_model.load(str(truncated)) is None
    calls: list[str] = []
    load_model = language.load_model
    monkeypatch.setattr(language, "load_model", lambda model_path: calls.append(model_path) or load_model(model_path))
    frame = pl.DataFrame({"id": range(len(lines)), TEXT: lines})
    measured = Language(model_path=path).metrics(frame)
    assert calls == [path]
    assert measured[language.LANGUAGE].null_count() < len(lines)
    Language(model_path=trained(train, "softmax")).metrics(frame)
    assert calls == [path]


def test_k_must_be_positive_or_all() -> None:
    model = fasttext_model.load(bundled_model())
    with pytest.raises(ValueError, match="k needs"):
        model.predict(["a"], 0)
    found, probabilities = model.predict(["a", "b"], -1)
    assert found.shape == probabilities.shape == (2, len(model.labels))
