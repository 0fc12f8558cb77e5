"""The `perplexity` stage, with KenLM models and SentencePiece tokenizers trained here on real text.

KenLM's estimator (lmplz) is a program, not part of its Python module, so the models are bigram
ARPA files written below (absolute discounting with back-off to unigrams, normalised), read by the
real KenLM; the tokenizers are trained by the real SentencePiece, on text normalised as the stage
normalises it, as CCNet trains its tokenizers.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import sentencepiece
from test_quality_real_data import english_articles, junk, peoples_daily

from cleanmix.filters.perplexity import Perplexity, normalize
from cleanmix.pipelines.stage import TEXT
from conftest import assert_user_error, clean, run_with_workers, write_pipeline

DISCOUNT = 0.5


def write_bigram_arpa(sentences: list[list[str]], path: Path) -> None:
    """A bigram model in ARPA format: p(b|a) = (c(ab) − D) / c(a·), the rest backed off to p(b) = c(b) / (N + 1),
    <unk> taking 1 / (N + 1)."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for sentence in sentences:
        tokens = ["<s>", *sentence, "</s>"]
        unigrams.update(tokens[1:])
        bigrams.update(zip(tokens, tokens[1:]))
    total = sum(unigrams.values()) + 1
    p_uni = {w: c / total for w, c in unigrams.items()}
    context: Counter[str] = Counter()
    followers: dict[str, list[str]] = {}
    for (a, b), c in bigrams.items():
        context[a] += c
        followers.setdefault(a, []).append(b)
    backoff = {a: DISCOUNT * len(bs) / context[a] / (1 - sum(p_uni[b] for b in bs)) for a, bs in followers.items()}
    lines = ["\\data\\", f"ngram 1={len(unigrams) + 2}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines.append(f"{math.log10(1 / total):.6f}\t<unk>")
    lines.append(f"-99\t<s>\t{math.log10(backoff['<s>']):.6f}")
    for w in sorted(unigrams):
        lines.append(f"{math.log10(p_uni[w]):.6f}\t{w}" + (f"\t{math.log10(backoff[w]):.6f}" if w in backoff else ""))
    lines += ["", "\\2-grams:"]
    for (a, b), c in sorted(bigrams.items()):
        lines.append(f"{math.log10((c - DISCOUNT) / context[a]):.6f}\t{a} {b}")
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def train_language_model(texts: list[str], folder: Path, name: str, vocab: int) -> dict[str, str]:
    lines = pl.DataFrame({TEXT: texts}).select(normalize(pl.col(TEXT)).str.split("\n").explode())[TEXT]
    lines = [line for line in lines.to_list() if line.strip()]
    prefix = folder / name
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=vocab,
                                             character_coverage=0.9995, num_threads=1, minloglevel=2, seed_sentencepiece_size=100_000)
    tokenizer = sentencepiece.SentencePieceProcessor(model_file=f"{prefix}.model")
    write_bigram_arpa(tokenizer.encode(lines, out_type=str), folder / f"{name}.arpa")
    return {"model_path": str(folder / f"{name}.arpa"), "tokenizer_path": f"{prefix}.model"}


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> dict[str, list[str]]:
    zh, en = peoples_daily(shared_data)["text"].to_list(), english_articles(shared_data)["text"].to_list()
    return {"zh_train": zh[:800], "en_train": en[:100], "zh": zh[1000:1100], "en": en[100:150],
            **{f"zh_{k}": v for k, v in junk(zh[1000:1100], True, random.Random(0)).items()},
            **{f"en_{k}": v for k, v in junk(en[100:150], False, random.Random(0)).items()}}


@pytest.fixture(scope="module")
def models(texts: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    folder = tmp_path_factory.mktemp("lm")
    return {"zh": train_language_model(texts["zh_train"], folder, "zh", 4000),
            "en": train_language_model(texts["en_train"], folder, "en", 2000)}


FACTORS = {
    # measured medians: zh clean 164; word salad 2,331, code 2,580, mojibake 61,794, navigation 360, keywords 299
    "zh": {"word_salad": 5, "code": 5, "mojibake": 5, "navigation": 1.5, "keywords": 1.5},
    # en clean 150; word salad 287, navigation 256, code 988 (keywords 165 and mojibake 176: a bigram model of 100
    # articles barely tells comma-separated words or a few changed characters from prose)
    "en": {"word_salad": 1.5, "navigation": 1.5, "code": 5},
}
"""Junk kinds and how many times the clean median perplexity their median exceeds at least. Repeated lines and
a lorem-ipsum line appended to clean text are not less likely (152 and 182 in Chinese): that is repetition's job."""


def test_clean_text_is_likelier_than_junk_in_both_languages(texts: dict[str, list[str]], models: dict[str, dict[str, str]]) -> None:
    """Held-out news and articles against junk built from them (CCNet's point: a model of clean text)."""
    for language in ("zh", "en"):
        stage = Perplexity(models={language: models[language]}, language_column=None, mode="annotate")

        def median(docs: list[str], scorer: Perplexity = stage) -> float:
            return scorer.annotate(pl.DataFrame({TEXT: docs}))["perplexity"].median()

        clean_median = median(texts[language])
        for kind, factor in FACTORS[language].items():
            assert median(texts[f"{language}_{kind}"]) > factor * clean_median, (language, kind)


def test_languages_are_routed_thresholded_and_ranked_apart(texts: dict[str, list[str]], models: dict[str, dict[str, str]]) -> None:
    docs = texts["zh"][:30] + texts["zh_word_salad"][:10] + texts["en"][:20] + texts["en_keywords"][:10] + ["Un texte français."]
    languages = ["zh"] * 40 + ["en"] * 30 + ["fr"]
    df = pl.DataFrame({"id": [str(i) for i in range(len(docs))], TEXT: docs, "language": languages})
    scored = Perplexity(models=models, mode="annotate").annotate(df)
    assert scored["perplexity"][-1] is None  # no French model: not scored, kept
    ppl = scored["perplexity"].to_list()

    top = Perplexity(models=models, keep_top=0.5).filter(df)
    want = []
    for language, n in (("zh", 40), ("en", 30)):
        rows = [i for i in range(len(docs)) if languages[i] == language]
        want += sorted(rows, key=lambda i: (ppl[i], i))[: int(0.5 * n + 0.5)]
    assert top["id"].to_list() == [str(i) for i in sorted([*want, len(docs) - 1])]
    assert "perplexity" in top.columns

    limits = {"zh": {**models["zh"], "max_perplexity": sorted(ppl[:40])[30]}, "en": models["en"]}
    out = Perplexity(models=limits).annotate(df)
    removed = out.filter(pl.col("reason").is_not_null())
    assert removed["reason"].unique().to_list() == ["perplexity:high_perplexity"]
    assert removed["id"].to_list() == [str(i) for i in range(40) if ppl[i] > sorted(ppl[:40])[30]]


def test_a_run_after_the_language_stage_is_byte_identical_whatever_the_workers(texts: dict[str, list[str]],
                                                                                 models: dict[str, dict[str, str]], tmp_path: Path) -> None:
    docs = texts["zh"] + texts["zh_word_salad"] + texts["en"] + texts["en_navigation"]
    random.Random(1).shuffle(docs)
    data = tmp_path / "in"
    data.mkdir()
    for shard in range(3):
        part = docs[shard::3]
        pl.DataFrame({"id": [f"{shard}-{i}" for i in range(len(part))], TEXT: part}).write_parquet(data / f"s{shard}.parquet")
    stages = [{"type": "language", "languages": ["zh", "en"]}, {"type": "perplexity", "models": models, "keep_top": 0.5}]
    out = run_with_workers(tmp_path, data, stages)
    groups = json.loads((out / "stats" / "perplexity.json").read_text())["details"]["groups"]
    stage = json.loads((out / "stats" / "summary.json").read_text())["stages"][1]
    assert set(groups) == {"zh", "en"}
    assert stage["docs_out"] == sum(g["keep"] for g in groups.values())
    assert all(g["keep"] == int(0.5 * g["scored"] + 0.5) for g in groups.values())
    kept = pl.read_parquet(out / "data")
    salad = set(texts["zh_word_salad"]) | set(texts["en_navigation"])
    assert kept.filter(pl.col(TEXT).is_in(list(salad))).height <= 0.05 * kept.height


def test_bad_paths_are_clear_errors(models: dict[str, dict[str, str]], tmp_path: Path) -> None:
    data = tmp_path / "in.parquet"
    pl.DataFrame({"id": ["a"], TEXT: ["some text"]}).write_parquet(data)
    junk_file = tmp_path / "notes.txt"
    junk_file.write_text("hello")
    zh = models["zh"]
    cases = [
        ({"zh": {**zh, "model_path": str(tmp_path / "none.arpa")}}, None, ["none.arpa does not exist"]),
        ({"zh": {**zh, "model_path": str(junk_file)}}, None, ["notes.txt is not a KenLM model"]),
        ({"zh": {**zh, "tokenizer_path": str(junk_file)}}, None, ["notes.txt is not a SentencePiece model"]),
        (models, None, ["language_column is null", "models has 2"]),
    ]
    for lms, column, fragments in cases:
        stage = {"type": "perplexity", "models": lms, "language_column": column, "keep_top": 0.5}
        pipeline = write_pipeline(tmp_path / "p.yaml", data, tmp_path / "out", [stage])
        assert_user_error(clean("run", str(pipeline)), *fragments)
    no_language = write_pipeline(tmp_path / "p.yaml", data, tmp_path / "out", [{"type": "perplexity", "models": models, "keep_top": 0.5}])
    assert_user_error(clean("run", str(no_language)), "language")


def test_lines_are_normalised_as_ccnet_does_cjk_punctuation_included() -> None:
    lines = ["２０２４年，北京。「你好」！", "Café Déjà-vu — 42%…"]
    out = pl.DataFrame({TEXT: lines}).select(normalize(pl.col(TEXT)))[TEXT].to_list()
    assert out == ['0000年,北京. "你好"!', "cafe deja-vu  -  00%..."]
