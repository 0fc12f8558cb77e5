"""datatrove's n-gram decontamination (`pipeline/decont`), driven by `bench_decontaminate.py`.

Run with the python of a venv holding datatrove (and jieba, its Chinese word segmenter), never
imported by cleanmix:

    <datatrove venv>/bin/python benchmarks/datatrove_decont.py <data folder> <work folder>

The index is datatrove's own: `NGramsDecontIndexer.compute_hashes` (its tokenizer, text
normalisation, n-grams and hash) over the same benchmark text as cleanmix's stage, written as its
`.index.hashes` files and loaded by `NGramsDecontFilter`. The indexer's `run` would fetch the
items through lighteval; its hashing routine is called directly instead, on the items read from
the same files. GSM8K: the answer as label and the question as query, query and overlap n-grams
on, 13 words, English tokenizer. CMMLU: the choices (one per line) as label and the question as
query, the same n-gram kinds, Chinese tokenizer (spaCy + jieba), 4 words (~6 characters, as
cleanmix's window) and 12 words (datatrove's default).

Then it answers the parent's commands on stdin, one JSON line each on stdout:
`{"corpus": <parquet of texts>, "language": "en" | "zh" | "zh12"}` → `{"seconds": ..., "hit": [...]}`:
the time of `NGramsDecontFilter.filter` over every document, and which it flags (the filter step itself, without
datatrove's reader, writer or stats plumbing).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
from datatrove.data import Document
from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter, NGramsDecontIndexer
from datatrove.utils.hashing import create_hash_func
from datatrove.utils.word_tokenizers import load_word_tokenizer

LANGUAGES = {"en": ("eng", 13), "zh": ("cmn", 4), "zh12": ("cmn", 12)}
"""Tokenizer and n per index: English 13 words; Chinese 4 words (~6 characters, as cleanmix's window) and
12 words (datatrove's default n)."""


def config(language: str) -> NGramsDecontConfig:
    return NGramsDecontConfig(n_grams=LANGUAGES[language][1], find_query_ngrams=True, find_overlap_ngrams=True)


def build(folder: Path, language: str, task: str, pairs: list[tuple[str, str]]) -> int:
    """datatrove's index of (label, query) pairs, as its indexer writes it."""
    cfg = config(language)
    tokenizer = load_word_tokenizer(LANGUAGES[language][0])
    indexer = SimpleNamespace(config=cfg, tokenizer=tokenizer, hash_func=create_hash_func(cfg.hash_config))
    hashes: set[int] = set()
    for label, query in pairs:
        hashes.update(NGramsDecontIndexer.compute_hashes(indexer, label, query))  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    np.array(sorted(hashes), dtype=cfg.hash_config.np_descr).tofile(folder / f"{task}.index.hashes")
    return len(hashes)


def main() -> None:
    data, work = Path(sys.argv[1]), Path(sys.argv[2])
    gsm8k = pl.read_parquet(data / "bench_gsm8k_test.parquet")
    cmmlu = pl.read_parquet(data / "bench_cmmlu_test.parquet")
    started = time.perf_counter()
    choices = [("\n".join(r[k] or "" for k in "ABCD"), r["question"]) for r in cmmlu.iter_rows(named=True)]
    sizes = {"en": build(work / "en", "en", "gsm8k", list(zip(gsm8k["answer"], gsm8k["question"]))),
             **{lang: build(work / lang, lang, "cmmlu", choices) for lang in ("zh", "zh12")}}
    build_s = time.perf_counter() - started
    filters = {lang: NGramsDecontFilter(str(work / lang), config=config(lang), language=LANGUAGES[lang][0]) for lang in LANGUAGES}
    # warm-up, and proof the index works: a whole item is caught (loads the index, spaCy and jieba's dictionary)
    assert filters["en"].filter(Document(text="x\n" + gsm8k["question"][0] + "\n" + gsm8k["answer"][0], id="en")) is not True
    row = cmmlu.row(0, named=True)
    assert filters["zh"].filter(Document(text=row["question"] + "\n" + "\n".join(f"{k}. {row[k]}" for k in "ABCD"), id="zh")) is not True
    print(json.dumps({"ngrams": sizes, "build_s": build_s / len(sizes)}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        texts = pl.read_parquet(command["corpus"])["text"].to_list()
        check = filters[command["language"]].filter
        started = time.perf_counter()
        hit = [check(Document(text=text, id=str(i))) is not True for i, text in enumerate(texts)]
        print(json.dumps({"seconds": time.perf_counter() - started, "hit": hit}), flush=True)


if __name__ == "__main__":
    main()
