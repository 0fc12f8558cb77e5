"""The `classifier` stage: a quality classifier trained with `clean train-classifier`, judged on
documents it never saw, against the heuristic filters on the same documents; its speed per core.
The `perplexity` stage on the same documents, with KenLM bigram models and SentencePiece
tokenizers trained on the same training documents (as tests/test_perplexity.py trains them).

    .venv/bin/python benchmarks/bench_classifier.py

Positive: People's Daily (12-paragraph documents) and English article bodies; negative: the seven
junk kinds tests/test_quality_real_data.py builds from them. The first 1,000 Chinese and 100
English documents (and junk built from their first 300 and 100) train; the rest, and junk built from
them with another seed, are the held-out test. Speed: the stage alone on the held-out documents
in one process, the model loaded once before the clock starts (as a worker does), against the nine
default heuristic stages on the same documents in the same run. Writes benchmarks/classifier.md.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # figures per core

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REPORT = REPO / "benchmarks" / "classifier.md"
sys.path.insert(0, str(REPO / "tests"))

import polars as pl  # noqa: E402
from test_quality_real_data import default_stages, english_articles, junk, peoples_daily, run  # noqa: E402

from cleanmix.filters.classifier import Classifier  # noqa: E402

KINDS = ("word_salad", "repeated_lines", "navigation", "keywords", "code", "mojibake", "lorem_ipsum")


def split() -> dict[str, list[str]]:
    zh, en = peoples_daily(DATA)["text"].to_list(), english_articles(DATA)["text"].to_list()
    # junk built from every training document, then a seeded seventh of it kept: the classes balanced in each language
    train_junk = []
    for docs, chinese in ((zh[:1000], True), (en[:100], False)):
        made = [t for kind in KINDS for t in junk(docs, chinese, random.Random(1))[kind]]
        train_junk += random.Random(1).sample(made, len(docs))
    test = {"clean zh (People's Daily)": zh[1000:], "clean en (article bodies)": en[100:]}
    for lang, kinds in (("zh", junk(zh[1000:1300], True, random.Random(2))), ("en", junk(en[100:], False, random.Random(2)))):
        for kind in KINDS:
            test[f"junk {lang}: {kind.replace('_', ' ')}"] = kinds[kind]
    return {"train_clean": zh[:1000] + en[:100], "train_junk": train_junk, **test}


def train(folder: Path, parts: dict[str, list[str]]) -> tuple[Path, dict, float]:
    pl.DataFrame({"text": parts["train_clean"]}).write_parquet(folder / "clean.parquet")
    pl.DataFrame({"text": parts["train_junk"]}).write_parquet(folder / "junk.parquet")
    model = folder / "quality.bin"
    started = time.perf_counter()
    subprocess.run([str(REPO / ".venv" / "bin" / "clean"), "train-classifier", "--positive", str(folder / "clean.parquet"),
                    "--negative", str(folder / "junk.parquet"), "-o", str(model)], check=True)
    return model, json.loads(model.with_suffix(".card.json").read_text()), time.perf_counter() - started


def main() -> None:
    parts = split()
    with tempfile.TemporaryDirectory() as tmp:
        model, card, train_seconds = train(Path(tmp), parts)
        stage = Classifier(model_path=str(model), min_score=0.5)
        tests = {name: docs for name, docs in parts.items() if not name.startswith("train")}
        rows = []
        for name, docs in tests.items():
            df = pl.DataFrame({"id": [str(i) for i in range(len(docs))], "text": docs})
            ours = set(stage.filter(df)["id"].to_list())
            theirs = set(run(default_stages(), df)[0]["id"].to_list())
            rows.append((name, len(docs), len(ours), len(theirs), len(ours & theirs)))
        held = pl.DataFrame({"text": [t for docs in tests.values() for t in docs]})
        mb = held["text"].str.len_bytes().sum() / 1e6
        import fasttext

        started = time.perf_counter()
        fasttext.load_model(str(model))
        load = time.perf_counter() - started
        clean_share = sum(len(d) for n, d in tests.items() if n.startswith("clean")) / held.height
        top = Classifier(model_path=str(model), keep_top=clean_share).process(held.with_columns(pl.Series("clean", [
            n.startswith("clean") for n, docs in tests.items() for _ in docs])))
        ranked = (top.kept.height, int(top.kept["clean"].sum()))
        timings = {}
        for label, work in (("classifier", lambda: stage.process(held)), ("heuristics", lambda: run(default_stages(), held))):
            work()  # warm: the model and the stages' caches
            started = time.perf_counter()
            work()
            timings[label] = time.perf_counter() - started
        lm = perplexity_figures(Path(tmp), parts, tests, held, timings)
    write_report(card, train_seconds, rows, held.height, mb, load, timings, ranked, lm)


def perplexity_figures(folder: Path, parts: dict[str, list[str]], tests: dict[str, list[str]], held: pl.DataFrame,
                       timings: dict) -> dict:
    from test_perplexity import train_language_model

    from cleanmix.filters.perplexity import Perplexity

    zh_train, en_train = parts["train_clean"][:1000], parts["train_clean"][1000:]
    models = {"zh": train_language_model(zh_train, folder, "zh", 4000), "en": train_language_model(en_train, folder, "en", 2000)}
    language = [("en" if " en" in name or name.startswith("junk en") else "zh") for name, docs in tests.items() for _ in docs]
    frame = held.with_columns(pl.Series("language", language),
                              pl.Series("kind", [name for name, docs in tests.items() for _ in docs]))
    stage = Perplexity(models=models, mode="annotate")
    stage.process(frame.head(10))  # load the models
    started = time.perf_counter()
    scored = stage.annotate(frame)
    timings["perplexity"] = time.perf_counter() - started
    medians = scored.group_by("kind", maintain_order=True).agg(pl.col("perplexity").median())
    clean = frame["kind"].str.starts_with("clean")
    share = {lang: float((clean & (frame["language"] == lang)).sum() / (frame["language"] == lang).sum()) for lang in ("zh", "en")}
    kept = {}
    for lang in ("zh", "en"):
        part = frame.filter(pl.col("language") == lang)
        top = Perplexity(models={lang: models[lang]}, keep_top=share[lang]).filter(part)
        kept[lang] = (top.height, int(top["kind"].str.starts_with("clean").sum()))
    return {"medians": dict(medians.iter_rows()), "kept": kept}


def write_report(card: dict, train_seconds: float, rows: list, docs: int, mb: float, load: float, timings: dict,
                 ranked: tuple[int, int], lm: dict) -> None:
    def share(part: int, whole: int) -> str:
        return f"{part:,} / {whole:,} ({100 * part / whole:.1f}%)"

    table = ["| documents | n | kept by classifier (min_score 0.5) | kept by the 9 heuristic stages | kept by both |",
             "|---|---|---|---|---|"]
    totals = {"clean": [0, 0, 0, 0], "junk": [0, 0, 0, 0]}
    for name, n, ours, theirs, both in rows:
        table.append(f"| {name} | {n:,} | {share(ours, n)} | {share(theirs, n)} | {share(both, n)} |")
        for i, value in enumerate((n, ours, theirs, both)):
            totals[name.split()[0]][i] += value
    for kind, (n, ours, theirs, both) in totals.items():
        table.append(f"| **all {kind}** | {n:,} | {share(ours, n)} | {share(theirs, n)} | {share(both, n)} |")
    held, data = card["held_out"], card["data"]
    c, h = timings["classifier"], timings["heuristics"]
    text = f"""# Quality classifier

`{' '.join(['.venv/bin/python', 'benchmarks/bench_classifier.py'])}` (measured {time.strftime('%Y-%m-%d')}, one core, a
2-core machine shared with other jobs: speed is given against the heuristic filters timed in the same run).

## Training (`clean train-classifier`, default parameters)

Positive: the first 1,000 People's Daily documents (12 paragraphs each) and 100 English article bodies;
negative: the seven junk kinds of `tests/test_quality_real_data.py` built from them, a seeded seventh kept
({data['negative']['docs']:,} documents), so that each class is as large as the other in each language (with all the
junk, 7 junk documents per clean one, the model learnt that English is junk and kept none of the English test
articles: balance the classes within each language or domain). Held out by the command (10%): {held['docs']:,} documents,
precision {held['precision']}, recall {held['recall']}, ROC AUC {held['auc']} at score ≥ 0.5. Training took
{train_seconds:.1f} s (reading, preparing, fastText on one thread, evaluating), the model is
{card['parameters']['dim']}-dimensional with word pairs hashed into {card['parameters']['bucket']:,} buckets.

## Documents it never saw

The remaining 623 People's Daily documents and 61 English article bodies, and junk built from them with another
seed:

{chr(10).join(table)}

Ranked instead (`keep_top` set to the clean share, {ranked[0]:,} of all {sum(r[1] for r in rows):,} held-out
documents): {share(ranked[1], ranked[0])} of those it keeps are clean.

What this shows (figures of 2026-12-04): on junk built from the very text it calls clean, a bag-of-words
classifier trained on a thousand documents is no match for rules written for that junk. It removes what has
other words than news (keyword lists, code, Chinese menus and mojibake) as completely as the heuristics, and
keeps 95% of clean text against their 94%; but it scores bags of words and word pairs, so it does not see order
or repetition: shuffled words, a line repeated 15 times over a real paragraph, a clean document with a lorem-ipsum
line appended, English menus made of the articles' own words, and mojibake of mostly-ASCII English (a few
characters changed) look like the articles to it. Rules and classifier are complementary: run the classifier
after `word_salad`, `gopher_repetition` and `c4_quality`, and let `keep_top` rank what the rules left, as DCLM
and FineWeb-Edu do after their heuristics.

## Speed (one core, model loaded once)

{docs:,} held-out documents, {mb:.1f} MB of text. Loading the model: {load:.2f} s, once per worker.

| | seconds | docs/s | MB/s |
|---|---|---|---|
| `classifier` (prepare + fastText per document) | {c:.2f} | {docs / c:,.0f} | {mb / c:.2f} |
| the 9 default heuristic stages (baseline, same run) | {h:.2f} | {docs / h:,.0f} | {mb / h:.2f} |

The classifier costs {c / h:.2f}× the nine heuristic stages together.

## Perplexity (`perplexity`, CCNet's scoring)

KenLM bigram models (ARPA, written by `tests/test_perplexity.py`'s estimator: absolute discounting, back-off to
unigrams) over SentencePiece pieces (4,000 for Chinese, 2,000 for English), both trained on the same 1,000 Chinese
and 100 English training documents; the held-out documents routed by language. Median perplexity per kind (lower is
likelier):

| documents | median perplexity |
|---|---|
{chr(10).join(f"| {kind} | {value:,.0f} |" for kind, value in lm["medians"].items())}

Ranked (`keep_top` per language set to that language's clean share): Chinese {share(lm["kept"]["zh"][1], lm["kept"]["zh"][0])}
of the kept are clean, English {share(lm["kept"]["en"][1], lm["kept"]["en"][0])}. A model of clean text finds shuffled
words, menus, code and mojibake unlikely, but not text that repeats clean lines. KenLM models this small are far from
CCNet's (5-grams on Wikipedia); the figures show the mechanism, not CCNet's quality.

Speed: {docs:,} documents in {timings["perplexity"]:.2f} s, {docs / timings["perplexity"]:,.0f} docs/s,
{mb / timings["perplexity"]:.2f} MB/s per core ({timings["perplexity"] / h:.2f}× the nine heuristic stages; ARPA models
load in a second here, a KenLM binary is memory-mapped).
"""
    REPORT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
