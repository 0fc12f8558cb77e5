"""`decontaminate`: recall per kind of leak, false positives, the choice of n and rule, and speed
against datatrove's n-gram decontamination on the same data, interleaved in one run.

    .venv/bin/python benchmarks/bench_decontaminate.py [--datatrove-python /work/venv-datatrove/bin/python] \
        [--datatrove-pythonpath <a folder holding jieba>]

Real benchmark items (GSM8K test, MIT; CMMLU test, CC BY-NC-SA, read from ../shared/data and never
copied) are planted into real pages (Common Crawl WET pages; People's Daily documents of 12
paragraphs): whole, reformatted (spacing, line breaks, punctuation, full-width/half-width, case),
the question alone, and whole inside a long page. A hit is right when it names the planted item
or one with the same question (CMMLU repeats some). False positives: the unplanted pages, and
text on the same topics: the odd-numbered items of each benchmark checked against an index of the
even-numbered ones, a hit counted false unless the two questions are near-duplicates (character
5-gram Jaccard ≥ 0.5). Speed: the stage on one core against datatrove's `NGramsDecontFilter`
(`benchmarks/datatrove_decont.py`, run by the datatrove venv's python, jieba on --datatrove-pythonpath if its venv lacks it),
rounds alternating between the two. Writes benchmarks/decontaminate.md.
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "1")  # per-core figures: before polars is imported

import argparse
import json
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from cleanmix.filters.benchmark_index import normalized
from cleanmix.filters.decontaminate import Decontaminate, load_index

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REPORT = REPO / "benchmarks" / "decontaminate.md"
PLANTED = {"gsm8k": 300, "cmmlu": 1000}
NEWS = "clean: People's Daily documents"
LONG = 100
"""Items planted into long pages (~100 KB each), per benchmark."""
PATHS = {"gsm8k": (str(DATA / "bench_gsm8k_test.parquet"), ["question", "answer"]),
         "cmmlu": (str(DATA / "bench_cmmlu_test.parquet"), ["question", ("question", "A", "B", "C", "D")])}
"""GSM8K by question and by answer; CMMLU by question, and by question and choices joined."""


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def reformat(text: str, rng: random.Random) -> str:
    """Spacing, line breaks, punctuation, full-width/half-width forms and case changed."""
    if rng.random() < 0.5:
        text = text.replace("，", ",").replace("。", ". ").replace("：", ":").replace("？", "?")
    else:
        text = text.replace(",", "，").replace("?", "？").replace(":", "：")
    text = fullwidth(text) if rng.random() < 0.5 else text.upper()
    return "  ".join(text.split(" ")).replace("\n", "\n\n   ")


def plant(pages: list[str], item: str, rng: random.Random) -> str:
    lines = rng.choice(pages).split("\n")
    at = rng.randrange(len(lines) + 1)
    return "\n".join([*lines[:at], item, *lines[at:]])


def jaccard(a: str, b: str, k: int = 5) -> float:
    a, b = (normalized(pl.Series([t]))[0].replace(" ", "") for t in (a, b))
    grams_a, grams_b = ({t[i : i + k] for i in range(max(1, len(t) - k + 1))} for t in (a, b))
    return len(grams_a & grams_b) / len(grams_a | grams_b)


class Data:
    def __init__(self) -> None:
        self.gsm8k = pl.read_parquet(DATA / "bench_gsm8k_test.parquet")
        self.cmmlu = pl.read_parquet(DATA / "bench_cmmlu_test.parquet")
        self.web = pl.read_parquet(DATA / "web_en_cc_wet.parquet")["text"].to_list()
        paragraphs = pl.read_parquet(DATA / "web_zh_peoples_daily_1998.parquet")["text"].to_list()
        self.news = ["\n".join(paragraphs[i : i + 12]) for i in range(0, len(paragraphs), 12)]
        self.question = {**dict(zip(self.gsm8k["id"], self.gsm8k["question"])), **dict(zip(self.cmmlu["id"], self.cmmlu["question"]))}

    def whole(self, name: str, row: dict) -> str:
        if name == "gsm8k":
            return row["question"] + "\n" + row["answer"]
        return row["question"] + "\n" + "\n".join(f"{k}. {row[k]}" for k in "ABCD") + f"\n答案：{row['answer']}"

    def planted(self, name: str, rng: random.Random) -> tuple[list[str], dict[str, list[str]]]:
        items = (self.gsm8k if name == "gsm8k" else self.cmmlu).sample(PLANTED[name], seed=1)
        pages = self.web if name == "gsm8k" else self.news
        long_pages = ["\n".join(rng.sample(pages, 30 if name == "gsm8k" else 100)) for _ in range(20)]
        rows = list(items.iter_rows(named=True))
        kinds = {
            "whole": [plant(pages, self.whole(name, r), rng) for r in rows],
            "reformatted": [plant(pages, reformat(self.whole(name, r), rng), rng) for r in rows],
            "question only": [plant(pages, r["question"], rng) for r in rows],
            "whole, in a long page": [plant(long_pages, self.whole(name, r), rng) for r in rows[:LONG]],
        }
        return items["id"].to_list(), kinds


def stage(paths: dict[str, tuple[str, list[str]]], **params) -> Decontaminate:
    return Decontaminate(benchmarks={k: {"path": p, "fields": f} for k, (p, f) in paths.items()}, action="annotate", **params)


def items_found(decont: Decontaminate, texts: list[str]) -> list[str | None]:
    return decont.filter(pl.DataFrame({"id": range(len(texts)), "text": texts}))["decontaminate_item"].to_list()


def quality(data: Data, params: dict, paths: dict[str, tuple[str, list]] = PATHS) -> dict[str, float]:
    """Recall per benchmark and kind, false positives on clean pages and on same-topic text."""
    rng = random.Random(0)
    decont = stage(paths, **params)
    figures: dict[str, float] = {}
    for name in ("gsm8k", "cmmlu"):
        ids, kinds = data.planted(name, rng)
        for kind, texts in kinds.items():
            found = items_found(decont, texts)
            right = sum(f is not None and data.question[f] == data.question[i] for f, i in zip(found, ids))
            figures[f"{name} {kind}"] = right / len(texts)
    for label, pages in (("English web pages", data.web), (NEWS.removeprefix("clean: "), data.news)):
        figures[f"clean: {label}"] = sum(f is not None for f in items_found(decont, pages)) / len(pages)
    with tempfile.TemporaryDirectory() as tmp:
        for name, frame in (("gsm8k", data.gsm8k), ("cmmlu", data.cmmlu)):
            indexed = frame.filter(pl.int_range(pl.len()) % 2 == 0)
            held_out = frame.filter(pl.int_range(pl.len()) % 2 == 1)
            indexed.write_parquet(Path(tmp) / f"{name}.parquet")
            half = stage({name: (str(Path(tmp) / f"{name}.parquet"), paths[name][1])}, **params)
            texts = [data.whole(name, r) for r in held_out.iter_rows(named=True)]
            found = items_found(half, texts)
            false = sum(f is not None and jaccard(q, data.question[f]) < 0.5 for f, q in zip(found, held_out["question"]))
            figures[f"same topic: {name} held-out items"] = false / len(texts)
    return figures


class Datatrove:
    """datatrove's filter, run by its own venv's python (benchmarks/datatrove_decont.py) and asked over a pipe."""

    def __init__(self, python: Path, extra_path: str | None, work: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "POLARS_MAX_THREADS": "1"}
        if extra_path:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
        self.work = work
        self.child = subprocess.Popen([str(python), str(REPO / "benchmarks" / "datatrove_decont.py"), str(DATA), str(work)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.child.stdin and self.child.stdout
        self.stdin, self.stdout = self.child.stdin, self.child.stdout
        self.index = json.loads(self.stdout.readline())

    def check(self, texts: list[str], language: str) -> tuple[float, list[bool]]:
        """Seconds of its filter over the texts, and which it flags."""
        corpus = self.work / "corpus.parquet"
        pl.DataFrame({"text": texts}).write_parquet(corpus)
        self.stdin.write(json.dumps({"corpus": str(corpus), "language": language}) + "\n")
        self.stdin.flush()
        answer = json.loads(self.stdout.readline())
        return answer["seconds"], answer["hit"]

    def close(self) -> None:
        self.stdin.close()
        self.child.wait()


def datatrove_recall(data: Data, default: dict[str, float], datatrove: Datatrove, clean_hits: dict[str, float], lines: list[str]) -> None:
    """datatrove's filter on the planted items of the quality table (any hit counts: it names no item)."""
    rng = random.Random(0)  # as quality(): the same planted texts
    planted = {name: data.planted(name, rng)[1] for name in ("gsm8k", "cmmlu")}
    lines += ["", "## datatrove on the same planted items", "",
              "Its `NGramsDecontFilter` with the index described under Speed (any n-gram of an item's question, answer or "
              "choices, or across them), on the pages of the first table (long pages left out: its speed). A hit counts "
              "when it flags the page, since it names no item.", "",
              "| kind | cleanmix | datatrove | datatrove, Chinese 12 words |", "|---|---|---|---|"]
    found: dict[tuple[str, str], float] = {}
    for name, languages in (("gsm8k", ("en",)), ("cmmlu", ("zh", "zh12"))):
        for kind in ("whole", "reformatted", "question only"):
            texts = planted[name][kind]
            for lang in languages:
                found[kind, lang] = sum(datatrove.check(texts, lang)[1]) / len(texts)
            recall = [f"{found[kind, lang]:.3f}" for lang in languages] + ["—"] * (2 - len(languages))
            lines.append(f"| {name} {kind} | {default[f'{name} {kind}']:.3f} | {' | '.join(recall)} |")
            print(lines[-1], flush=True)
    lines += ["", f"- At 4 words (~cleanmix's 6 characters) datatrove finds CMMLU, but it flags {clean_hits['zh']:.0%} of the clean "
              f"news documents (cleanmix: {default[NEWS]:.2%}): one shared n-gram is a hit, and four Chinese words are a phrase "
              f"any article may hold. At its default 12 words it flags {clean_hits['zh12']:.1%} of them and finds "
              f"{min(found[k, 'zh12'] for k in ('whole', 'reformatted', 'question only')):.2f}–"
              f"{max(found[k, 'zh12'] for k in ('whole', 'reformatted', 'question only')):.2f} of the items: "
              "CMMLU's questions and choices are short.",
              f"- It misses {1 - found['reformatted', 'en']:.0%} of the reformatted GSM8K items, those written in full-width "
              "forms (ＡＢＣ１２３): its normalisation does not fold them, NFKC does. It flags "
              f"{clean_hits['en']:.1%} of the clean English pages (cleanmix: {default['clean: English web pages']:.2%}).", ""]


def speed(data: Data, lines: list[str], datatrove: Datatrove | None) -> dict[str, float]:
    """MB/s per core of the stage and of datatrove's filter on the same documents, rounds interleaved;
    the share of these clean documents datatrove flags, per index."""
    decont = stage(PATHS)
    load_index.cache_clear()  # the quality runs built it already
    started = time.perf_counter()
    decont.index()
    build = time.perf_counter() - started
    corpora = {"English WET pages": (data.web, "en"), "People's Daily (datatrove: 4 words)": (data.news, "zh"),
               "People's Daily (datatrove: 12 words, its default)": (data.news, "zh12")}
    lines += ["", "## Speed, one core, against datatrove", ""]
    if datatrove is None:
        lines += ["datatrove's python is not there: cleanmix alone.", "",
                  "| text | documents | MB | cleanmix s | docs/s | MB/s |", "|---|---|---|---|---|---|"]
        for label, (texts, _) in list(corpora.items())[:2]:
            frame = pl.DataFrame({"id": range(len(texts)), "text": texts})
            mb, ours = frame["text"].str.len_bytes().sum() / 1e6, min(_timed(decont.process, frame) for _ in range(3))
            lines.append(f"| {label} | {len(texts):,} | {mb:.2f} | {ours:.3f} | {len(texts) / ours:,.0f} | {mb / ours:.1f} |")
        return {}
    index_ngrams = datatrove.index["ngrams"]["en"] + datatrove.index["ngrams"]["zh"]
    lines += [f"Index: cleanmix's of GSM8K (question; answer) and CMMLU (question; question and choices joined), "
              f"{len(decont.index().hashes):,} n-grams, built in {build:.2f} s; datatrove's of the same text through its "
              "`NGramsDecontIndexer.compute_hashes` (GSM8K 13 words, query + answer + overlap n-grams; CMMLU 4 jieba "
              f"words, or 12, its default; question + choices + overlap), {index_ngrams:,} n-grams (n 13 and 4), built in "
              f"{datatrove.index['build_s'] * 2:.1f} s. Checking: cleanmix's stage (`process`, every document against both "
              "benchmarks, CJK windows where a document has CJK characters) against datatrove's "
              "`NGramsDecontFilter.filter` called per document (English tokenizer and GSM8K index on the English "
              "pages, Chinese tokenizer and CMMLU index on People's Daily: each only the benchmark of its language), "
              "rounds alternating between the two (three of cleanmix, then one of datatrove, twice, then three of "
              "cleanmix), best round of each. Documents hit: these pages are clean, so every "
              "hit is a false positive. datatrove's filter stops at a document's first hit, so where it hits most "
              "documents its time is a lower bound of a full check.", "",
              "| text | documents | MB | cleanmix s | docs/s | MB/s per core | hit | datatrove s | docs/s | MB/s per core "
              "| hit | speed-up |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    clean_hits = {}
    for label, (texts, language) in corpora.items():
        frame = pl.DataFrame({"id": range(len(texts)), "text": texts})
        mb = frame["text"].str.len_bytes().sum() / 1e6
        ours, theirs, theirs_hits = [], [], 0
        for _ in range(2):
            ours += [_timed(decont.process, frame) for _ in range(3)]
            seconds, flags = datatrove.check(texts, language)
            theirs.append(seconds)
            theirs_hits = sum(flags)
        ours += [_timed(decont.process, frame) for _ in range(3)]
        clean_hits[language] = theirs_hits / len(texts)
        ours_hits = sum(f is not None for f in items_found(decont, texts))
        best, their_best = min(ours), min(theirs)
        lines.append(f"| {label} | {len(texts):,} | {mb:.2f} | {best:.3f} | {len(texts) / best:,.0f} | {mb / best:.1f} "
                     f"| {ours_hits} | {their_best:.2f} | {len(texts) / their_best:,.0f} | {mb / their_best:.2f} "
                     f"| {theirs_hits} | {their_best / best:.0f}× |")
        print(lines[-1], flush=True)
    return clean_hits


def _timed(fn: Callable[[object], object], arg: object) -> float:
    started = time.perf_counter()
    fn(arg)
    return time.perf_counter() - started


def reading(default: dict[str, float], grid: dict[str, dict[str, float]]) -> list[str]:
    """What the tables say about n and the rule, with this run's figures."""
    q, whole, topic = "cmmlu question only", "cmmlu whole", "same topic: cmmlu held-out items"
    alone, two = grid["CMMLU fields: [question]"], grid["min_ngrams=2"]
    cjk8, cjk5 = grid["cjk_ngram=8"], grid["cjk_ngram=5"]
    return ["", "## Reading", "",
            f"- **CMMLU by its question and choices joined.** Indexed by the question alone, CMMLU's whole items are found "
            f"at {alone[whole]:.3f} (goal 0.98): 0.9% of its questions are under 6 characters (推镜头是指), 0.7% are only "
            "template wording that 5+ questions share (下列说法正确的是), and a hit on a template question may name another "
            "item with the same question. The question joined with its choices is one more text per item: its windows run "
            "across the field boundaries, so a five-character question is found with its choices, and the choices tell "
            f"template questions apart: {default[whole]:.3f} of whole items, {default['cmmlu reformatted']:.3f} reformatted. "
            "What is still missed is mostly formulas ($\\frac{1+2i}{1-2i}$): no CJK window, and fewer than 13 words.",
            "- **Choice labels are skipped inside CJK windows.** A page lists the choices as A. / (A) / A、/ ①; the "
            "one-character tokens of other scripts (labels, single digits, variables) are left out of CJK windows, so the "
            "joined text's windows hold whatever the labels. Leaving out every non-CJK token instead (tried first) made "
            "BERT and RoBERTa, or 2017 and 2018, the same question: 0.36% of same-topic items hit, against 0.22% (both "
            "measured with `min_ngrams` 2).",
            f"- **`min_ngrams` 3.** With the joined text, whole items no longer need a short question to match alone, and a "
            "short question matching alone is what same-topic text does: template questions with two rare n-grams left "
            f"(以下说法不正确的是) inside a longer question. At 2, {two[topic]:.2%} of same-topic items hit (goal ≤ 0.2%); "
            f"at 3, {default[topic]:.2%}, for question-only recall {default[q]:.3f} against {two[q]:.3f} (goal 0.9).",
            f"- **English, 13 words** (GPT-3's and datatrove's n): 8 and 10 find the same items with the same false "
            f"positives here ({grid['ngram=8']['gsm8k question only']:.3f} recall, "
            f"{grid['ngram=8']['clean: English web pages']:.4f} of web pages hit), so the standard, longer window stays.",
            f"- **Chinese, 6 characters** (a word is ~1.5 characters, so ~4 words): 8 characters lose question-only recall "
            f"({cjk8[q]:.3f} against {default[q]:.3f}); 5 hits {cjk5[NEWS]:.2%} of the news documents against "
            f"{default[NEWS]:.2%}.",
            f"- **The share rule** (`min_overlap` 0.8) is what keeps precision: at 0.5, {grid['min_overlap=0.5'][NEWS]:.2%} "
            f"of news documents and {grid['min_overlap=0.5'][topic]:.2%} of same-topic items hit. Benchmark questions quote "
            "what real text quotes (poems, slogans, statute titles); while designing, any shared 10-character n-gram hit 9% "
            "of the news documents. Without `common_ngrams`, "
            f"{grid['common_ngrams=None'][topic]:.2%} of same-topic items hit.", ""]


SETTINGS: dict[str, tuple[dict, dict[str, tuple[str, list]]]] = {
    "CMMLU fields: [question]": ({}, {**PATHS, "cmmlu": (PATHS["cmmlu"][0], ["question"])}),
    "min_ngrams=2": ({"min_ngrams": 2}, PATHS),
    "ngram=8": ({"ngram": 8}, PATHS),
    "ngram=10": ({"ngram": 10}, PATHS),
    "cjk_ngram=5": ({"cjk_ngram": 5}, PATHS),
    "cjk_ngram=8": ({"cjk_ngram": 8}, PATHS),
    "common_ngrams=None": ({"common_ngrams": None}, PATHS),
    "min_overlap=0.5": ({"min_overlap": 0.5}, PATHS),
}
"""Each changes one thing from the defaults."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datatrove-python", type=Path, default=Path("/work/venv-datatrove/bin/python"),
                        help="the python of a venv holding datatrove")
    parser.add_argument("--datatrove-pythonpath", help="a folder added to that python's path (one holding jieba, if its venv has none)")
    args = parser.parse_args()
    data = Data()
    lines = ["# decontaminate: recall, false positives, n, speed", "",
             f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/bench_decontaminate.py` on the shared 2-core machine "
             f"(POLARS_MAX_THREADS=1). {PLANTED['gsm8k']} GSM8K items planted into Common Crawl WET pages and "
             f"{PLANTED['cmmlu']} CMMLU items into People's Daily documents, each kind; GSM8K indexed by question "
             "and by answer, CMMLU by question and by question and choices joined "
             "(`fields: [question, [question, A, B, C, D]]`). A hit is right when it names the item (or one with the "
             "same question). Goals (issue 15): recall ≥ 0.98 whole and reformatted, ≥ 0.9 question only; ≤ 0.2% of "
             "clean documents hit.", ""]
    default = quality(data, {})
    lines += ["## Defaults (ngram 13, cjk_ngram 6, min_overlap 0.8, min_ngrams 3, common_ngrams 5)", "",
              "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in default.items()]
    lines += ["", "## Choosing the fields, n and the rule", "",
              "Each row changes one thing from the defaults. False positives: share of documents hit.", "",
              "| setting | gsm8k question | cmmlu whole | cmmlu reformatted | cmmlu question | clean web | clean news "
              "| same topic gsm8k | same topic cmmlu |", "|---|---|---|---|---|---|---|---|---|"]
    grid = {}
    for setting, (params, paths) in SETTINGS.items():
        f = grid[setting] = quality(data, params, paths)
        lines.append(f"| {setting} | {f['gsm8k question only']:.3f} | {f['cmmlu whole']:.3f} | {f['cmmlu reformatted']:.3f} "
                     f"| {f['cmmlu question only']:.3f} | {f['clean: English web pages']:.4f} | {f[NEWS]:.4f} "
                     f"| {f['same topic: gsm8k held-out items']:.4f} | {f['same topic: cmmlu held-out items']:.4f} |")
        print(lines[-1], flush=True)
    lines += reading(default, grid)
    if not args.datatrove_python.exists():
        speed(data, lines, None)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            datatrove = Datatrove(args.datatrove_python, args.datatrove_pythonpath, Path(tmp))
            datatrove_recall(data, default, datatrove, speed(data, lines, datatrove), lines)
            datatrove.close()
    REPORT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
