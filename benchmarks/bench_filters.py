"""Language ID and quality filters: throughput and agreement against datatrove, language-ID accuracy.

    .venv/bin/python benchmarks/bench_filters.py [--datatrove-python /work/venv-datatrove/bin/python]

Runs cleanmix's five stages (language, gopher_quality, gopher_repetition, c4_quality,
fineweb_quality) and datatrove's same five filters on the same documents in the same run (datatrove
in its own interpreter, through `--as-datatrove`), one core each. It also records datatrove's
keep/drop decision per rule on web_en_cc_wet into tests/fixtures/datatrove_cc_wet.json (the
expectations tests/test_quality_agreement.py checks) and writes benchmarks/filters.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # figures per core

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FIXTURE = REPO / "tests" / "fixtures" / "datatrove_cc_wet.json"
REPORT = REPO / "benchmarks" / "filters.md"
DATATROVE_PYTHON = "/work/venv-datatrove/bin/python"
PARAGRAPHS_PER_DOC = 12
SHARED = "tokens (made once, read by gopher_quality, gopher_repetition, fineweb_quality)"

# Each rule alone: the datatrove filter with every other check switched off, and the cleanmix
# stage parameters that leave only the same check on (see `our_rule_decisions`).
GOPHER_QUALITY_OFF = dict(
    min_doc_words=None, max_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
    max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
    max_non_alpha_words_ratio=None, min_stop_words=None,
)
GOPHER_QUALITY_RULES = {
    "too_few_words": dict(min_doc_words=50),
    "too_many_words": dict(max_doc_words=100_000),
    "short_words": dict(min_avg_word_length=3),
    "long_words": dict(max_avg_word_length=10),
    "hashes": dict(max_symbol_word_ratio=0.1),  # datatrove checks hashes then ellipses on one knob
    "bullet_lines": dict(max_bullet_lines_ratio=0.9),
    "ellipsis_lines": dict(max_ellipsis_lines_ratio=0.3),
    "few_alpha_words": dict(max_non_alpha_words_ratio=0.8),
    "few_stop_words": dict(min_stop_words=2),
}
REPETITION_OFF = dict(
    dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=None, dup_para_char_frac=None,
    top_n_grams=(), dup_n_grams=(),
)
REPETITION_RULES = {
    "dup_para_frac": dict(dup_para_frac=0.3),
    "dup_para_char_frac": dict(dup_para_char_frac=0.2),
    "dup_line_frac": dict(dup_line_frac=0.3),
    "dup_line_char_frac": dict(dup_line_char_frac=0.2),
    **{f"top_{n}_gram": dict(top_n_grams=((n, f),)) for n, f in ((2, 0.2), (3, 0.18), (4, 0.16))},
    **{f"dup_{n}_gram": dict(dup_n_grams=((n, f),)) for n, f in zip(range(5, 11), (0.15, 0.14, 0.13, 0.12, 0.11, 0.10))},
}
C4_OFF = dict(filter_lorem_ipsum=False, filter_curly_bracket=False, min_num_sentences=-1)
C4_RULES = {
    "lorem_ipsum": dict(filter_lorem_ipsum=True),
    "curly_bracket": dict(filter_curly_bracket=True),
    "too_few_sentences": dict(min_num_sentences=5),
}
FINEWEB_OFF = dict(line_punct_thr=0.0, short_line_thr=1.0, char_duplicates_ratio=1.0, new_line_ratio=1e9)
FINEWEB_RULES = {
    "line_punct_ratio": dict(line_punct_thr=0.12),
    "short_line_ratio": dict(short_line_thr=0.67),
    "char_dup_ratio": dict(char_duplicates_ratio=0.01),
    "list_ratio": dict(new_line_ratio=0.3),
}


def read_texts(name: str) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(DATA / f"{name}.parquet", columns=["text"]).column("text").to_pylist()


def peoples_daily_docs() -> list[str]:
    """People's Daily paragraphs grouped 12 at a time into documents (1,623 of them)."""
    paragraphs = read_texts("web_zh_peoples_daily_1998")
    whole = len(paragraphs) // PARAGRAPHS_PER_DOC * PARAGRAPHS_PER_DOC
    return ["\n".join(paragraphs[i : i + PARAGRAPHS_PER_DOC]) for i in range(0, whole, PARAGRAPHS_PER_DOC)]


def bench_corpus() -> list[str]:
    return read_texts("web_en_cc_wet") + peoples_daily_docs()


# --------------------------------------------------------------------------------------------
# datatrove side (runs in the datatrove interpreter)


def as_datatrove(model_path: str) -> None:
    """Print JSON: datatrove's per-rule decisions on web_en_cc_wet, its full-filter reasons on both
    corpora and its throughput over the benchmark corpus."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from fasttext.FastText import _FastText

    def decide(flt, text: str) -> str | None:
        try:
            result = flt.filter(Document(text=text, id="x"))
        except (ZeroDivisionError, ValueError, IndexError) as error:  # datatrove cannot score the doc
            return f"error:{type(error).__name__}"
        if result is True:
            return None
        return result[1] if isinstance(result, tuple) else "dropped"

    wet = read_texts("web_en_cc_wet")
    isolated = {
        f"{stage}:{rule}": cls(**{**off, **on})
        for stage, cls, off, rules in (
            ("gopher_quality", GopherQualityFilter, GOPHER_QUALITY_OFF, GOPHER_QUALITY_RULES),
            ("gopher_repetition", GopherRepetitionFilter, REPETITION_OFF, REPETITION_RULES),
            ("c4_quality", C4QualityFilter, C4_OFF, C4_RULES),
            ("fineweb_quality", FineWebQualityFilter, FINEWEB_OFF, FINEWEB_RULES),
        )
        for rule, on in rules.items()
    }
    decisions = [{key: decide(flt, text) for key, flt in isolated.items()} for text in wet]  # (tokens cached per text)
    per_rule = {key: [d[key] for d in decisions] for key in isolated}

    language = LanguageFilter(languages=["en", "zh"], language_threshold=0.65)
    language.model._model = _FastText(model_path)
    filters = {
        "language": language,
        "gopher_quality": GopherQualityFilter(),
        "gopher_repetition": GopherRepetitionFilter(),
        "c4_quality": C4QualityFilter(),
        "fineweb_quality": FineWebQualityFilter(),
    }
    reasons = {
        corpus: {name: [decide(flt, t) for t in texts] for name, flt in filters.items()}
        for corpus, texts in (("web_en_cc_wet", wet), ("peoples_daily", peoples_daily_docs()))
    }
    corpus = bench_corpus()
    start = time.process_time()
    for text in corpus:  # as a pipeline: a document dropped by one filter skips the rest
        for flt in filters.values():
            if decide(flt, text) is not None:
                break
    pipeline_seconds = time.process_time() - start
    per_stage = dict.fromkeys(filters, 0.0)
    for text in corpus:  # every filter on every document
        for name, flt in filters.items():
            start = time.process_time()
            decide(flt, text)
            per_stage[name] += time.process_time() - start
    print(json.dumps({"per_rule": per_rule, "reasons": reasons, "pipeline_seconds": pipeline_seconds,
                      "every_seconds": sum(per_stage.values()), "per_stage": per_stage}))




# --------------------------------------------------------------------------------------------
# cleanmix side (the per-rule comparison lives in tests/test_quality_agreement.py)


def fixture_rows(theirs: dict[str, list[str | None]]) -> dict[str, str]:
    """datatrove's per-rule decisions, one character per document: 1 drop, 0 keep, - error."""
    return {key: "".join("-" if (d or "").startswith("error") else "1" if d else "0" for d in decisions)
            for key, decisions in theirs.items()}


def cleanmix_stages() -> list:
    from cleanmix.filters.c4_quality import C4Quality
    from cleanmix.filters.fineweb_quality import FinewebQuality
    from cleanmix.filters.gopher_quality import GopherQuality
    from cleanmix.filters.gopher_repetition import GopherRepetition
    from cleanmix.filters.language import Language

    return [Language(languages=["en", "zh"]), GopherQuality(), GopherRepetition(), C4Quality(), FinewebQuality()]


def time_cleanmix(texts: list[str]) -> dict[str, float]:
    """CPU seconds of the five stages: as a pipeline (each sees what the last kept) and each on all.
    The token lists are made once per batch and shared, as the engine does (`SharedColumns`)."""
    import polars as pl

    from cleanmix.pipelines.stage import SharedColumns

    df = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
    stages = cleanmix_stages()
    stages[0].annotate(df.head(1))  # load the model outside the timing, as datatrove's is
    start = time.process_time()
    kept, held = df, SharedColumns(stages)
    for i, stage in enumerate(stages):
        kept = stage.filter(held.attach(kept, i))
    pipeline = time.process_time() - start
    start = time.process_time()
    shared = SharedColumns(stages).attach(df, 1)
    per_stage = {SHARED: time.process_time() - start}
    for stage in stages:
        start = time.process_time()
        stage.annotate(shared)
        per_stage[stage.type] = time.process_time() - start
    return {"pipeline_seconds": pipeline, "every_seconds": sum(per_stage.values()), "per_stage": per_stage, "kept": kept.height}


def language_accuracy() -> list[tuple[str, int, float]]:
    import polars as pl

    from cleanmix.filters.language import Language

    df = Language().annotate(pl.read_parquet(DATA / "langid_lingua_75lang.parquet"))
    table = df.group_by("lang").agg(pl.len().alias("n"), (pl.col("language") == pl.col("lang")).mean().alias("accuracy"))
    return sorted(table.iter_rows(), key=lambda r: (-r[2], r[0]))


def keep_rates() -> dict[str, tuple[int, int]]:
    """Documents kept by the default stages: clean text, and junk built from it (as the tests build it)."""
    import random

    import polars as pl
    from test_quality_real_data import default_stages, english_articles, junk, peoples_daily, run

    out = {}
    for name, df in (("People's Daily, 12-paragraph documents", peoples_daily(DATA)), ("English article_body", english_articles(DATA))):
        kept, _ = run(default_stages(), df)
        out[name] = (kept.height, df.height)
        texts = df["text"].to_list()
        chinese = name.startswith("People")
        kinds = junk(texts[:60], chinese, random.Random(0))
        some = texts[:200]  # mojibake shows only where there is non-ASCII text to garble
        garbled = junk(some, chinese, random.Random(0))["mojibake"]
        kinds["mojibake"] = [g for t, g in zip(some, garbled) if sum(not c.isascii() for c in t) >= 5]
        for kind, docs in kinds.items():
            kept, _ = run(default_stages(), pl.DataFrame({"id": [str(i) for i in range(len(docs))], "text": docs}))
            out[f"junk from {name}: {kind.replace('_', ' ')}"] = (kept.height, len(docs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datatrove-python", default=DATATROVE_PYTHON)
    args = parser.parse_args()
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from cleanmix.filters.language import bundled_model

    print("running datatrove (minutes)...", file=sys.stderr)
    done = subprocess.run(
        [args.datatrove_python, __file__, "--as-datatrove", bundled_model()], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    theirs = json.loads(done.stdout)
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    fixture = {"source": "datatrove 0.10.1, each rule alone, web_en_cc_wet in file order", "decisions": fixture_rows(theirs["per_rule"])}
    FIXTURE.write_text(json.dumps(fixture, indent=0) + "\n")

    corpus = bench_corpus()
    size_mb = sum(len(t.encode()) for t in corpus) / 1e6
    ours = time_cleanmix(corpus)
    wet = read_texts("web_en_cc_wet")
    import polars as pl
    from test_quality_agreement import agreement, our_rule_decisions, read_fixture

    from cleanmix.filters.language import Language

    languages = Language().annotate(pl.DataFrame({"text": wet}))["language"].to_list()
    decisions = read_fixture()
    mine = our_rule_decisions(wet)
    everywhere = agreement(decisions, mine)
    not_cjk = agreement(
        {k: [d if lang not in ("zh", "ja", "ko") else None for d, lang in zip(v, languages)] for k, v in decisions.items()}, mine
    )
    defaults = agreement(decisions, our_rule_decisions(wet, params={}))
    accuracy = language_accuracy()
    rates = keep_rates()
    pd_reasons = {name: sum(r is None for r in rs) for name, rs in theirs["reasons"]["peoples_daily"].items()}
    write_report(len(corpus), size_mb, ours, theirs, everywhere, not_cjk, defaults, accuracy, rates, pd_reasons)
    print(REPORT.read_text())


def write_report(docs, size_mb, ours, theirs, everywhere, not_cjk, defaults, accuracy, rates, pd_reasons) -> None:  # noqa: ANN001
    lines = [
        "# Filters: throughput, agreement with datatrove, language ID",
        "",
        "Made by `benchmarks/bench_filters.py` (one core: `POLARS_MAX_THREADS=1`, CPU seconds of the process).",
        f"Corpus: web_en_cc_wet (697 pages) + People's Daily in 12-paragraph documents (1,623): {docs:,} documents, {size_mb:.2f} MB.",
        "Stages: language [en, zh] (min_score 0.65), gopher_quality, gopher_repetition, c4_quality, fineweb_quality,",
        "against datatrove 0.10.1's LanguageFilter (same lid.176.ftz), GopherQualityFilter, GopherRepetitionFilter,",
        "C4QualityFilter, FineWebQualityFilter with their defaults, in the same run.",
        "",
        "## Throughput (per core)",
        "",
        "| run | cleanmix docs/s | cleanmix MB/s | datatrove docs/s | datatrove MB/s | cleanmix / datatrove |",
        "|---|---|---|---|---|---|",
    ]
    for label, key in (
        ("as a pipeline (a removed document skips later stages)", "pipeline_seconds"),
        ("every stage on every document", "every_seconds"),
    ):
        a, b = ours[key], theirs[key]
        lines.append(f"| {label} | {docs / a:,.0f} | {size_mb / a:.2f} | {docs / b:,.0f} | {size_mb / b:.2f} | **{b / a:.1f}x** |")
    lines += [
        "",
        "datatrove removes every Chinese document at its first quality filter (too few words), so in the pipeline run its",
        "later filters never see them; cleanmix measures and keeps them. The every-document row compares equal work.",
        "",
        "Each stage on every document (CPU seconds):",
        "",
        "| stage | cleanmix s | datatrove s | cleanmix / datatrove |",
        "|---|---|---|---|",
        *(
            f"| {name} | {ours['per_stage'][name]:.2f} | {theirs['per_stage'][name]:.2f} "
            f"| {theirs['per_stage'][name] / ours['per_stage'][name]:.1f}x |"
            if name in theirs["per_stage"] else f"| {name} | {ours['per_stage'][name]:.2f} | (inside each filter) | |"
            for name in ours["per_stage"]
        ),
        "",
        "Both sides run the same fastText model for language ID. cleanmix reads at most the first 4,000 characters of a",
        "document, and does not run the model on text whose letters are at least 90% Han, without kana (`script_only`):",
        "the script already makes it Chinese, and fastText is slowest on Han text (each run of Han characters is one",
        "unknown word whose every 2-4 character piece is looked up). datatrove tokenizes the text again in each filter.",
        "",
        "## Keep rates with the default stages",
        "",
        "language [en, zh], gopher_quality, gopher_repetition, c4_quality, fineweb_quality, garbled, cjk_junk,",
        "char_repetition, word_salad. Junk is built from the first 60 clean documents as tests/test_quality_real_data.py",
        "builds it (shuffled words, one sentence repeated, menus, keyword lists, code, UTF-8 read as cp1252/GBK, lorem ipsum).",
        "",
        "| corpus | kept | of | rate |",
        "|---|---|---|---|",
    ]
    for name, (kept, total) in rates.items():
        lines.append(f"| {name} | {kept:,} | {total:,} | {kept / total:.1%} |")
    lines += [
        "",
        "Pages that are mostly CJK are held to FineWeb-2's multilingual settings (its README, \"Data Filtering\", and",
        "configs/cmn_Hani.yml): C4's sentence rule does not apply (FineWeb-2 left the C4 filters out of every language",
        "but English, as they lowered its ablation models' scores), no short-line rule, 10% of characters in repeated",
        "lines and 10.6% of lines ending a sentence in fineweb_quality. What People's Daily loses is poems without",
        "punctuation, lists of names, stock tables (too few lines end a sentence) and a few repetitive notices.",
        "C4's English rule applied to Chinese pages (`c4_quality.cjk_min_sentences: 5`) would alone remove 81 (5.0%).",
        "Chinese word salad (shuffled characters) passes all published rules once C4's is off; word_salad catches it",
        "by its character pairs (few are pairs found inside common words).",
        "",
        "datatrove's filters on the same People's Daily documents, each alone: "
        + ", ".join(f"{name} keeps {n:,}" for name, n in pd_reasons.items())
        + " of 1,623 (all five together: 0).",
        "",
        "## Agreement with datatrove, rule by rule (web_en_cc_wet, 697 pages)",
        "",
        "Each rule alone (every other check off) on both sides; the share of pages where both keep or both drop.",
        "Pages datatrove cannot score (it divides by zero on the 27 empty pages for some rules) are left out.",
        "cleanmix runs with `gopher_quality.alpha_share_of: tokens` here (datatrove counts punctuation marks as words",
        "in the 80%-alphabetic rule; cleanmix's default does not, see below the table). Chinese and Japanese pages are",
        "tokenized per character on purpose, hence the second column.",
        "",
        "| rule | all pages | pages not zh/ja/ko | datatrove drops | cleanmix drops | all pages, cleanmix defaults |",
        "|---|---|---|---|---|---|",
    ]
    for key, row in everywhere.items():
        lines.append(
            f"| {key} | {row['agreement']:.2%} | {not_cjk[key]['agreement']:.2%} | {row['datatrove_drops']} | {row['cleanmix_drops']} "
            f"| {defaults[key]['agreement']:.2%} |"
        )
    lines += [
        "",
        "Differences kept on purpose (cleanmix defaults):",
        "",
        "- `gopher_quality.alpha_share_of: words`: Gopher asks that 80% of *words* hold a letter; datatrove counts spaCy's",
        "  punctuation tokens as words, which drops 16 of 161 clean English article bodies (10%). On WET the rule alone",
        "  then drops 37 pages where datatrove's drops 316; most of those are menus that c4/fineweb rules remove anyway.",
        "- Han and kana characters are one token each (datatrove's English tokenizer makes a whole Chinese run one",
        "  word), so Chinese is measured instead of failing every word rule; documents that are mostly CJK get their own",
        "  n-gram limits in gopher_repetition (`cjk_max_*`), and their lines count CJK characters as two columns in",
        "  fineweb_quality's short-line rule.",
        "- Sentence ends include `。！？` (maybe followed by closing quotes, or a bracketed credit: `。（新华社）`) in",
        "  c4_quality and fineweb_quality, and typographic closing quotes in c4_quality (its reference code knew only ASCII",
        "  quotes); fineweb_quality's line_punct_ratio also counts a mark followed by closing quotes (`great.”`), where",
        "  datatrove wants the mark last.",
        "- Lines and paragraphs of zero-width characters (U+200B, which pages put between paragraphs and Python's",
        "  `str.strip` keeps) are blank: gopher_repetition does not count them as repeated lines or paragraphs, and",
        "  fineweb_quality not as lines. Lines of ordinary spaces stay lines in gopher_repetition, as in datatrove.",
        "- The Chinese stop words include FineWeb-2's published `cmn_Hani` list (configs/cmn_Hani.yml, less `·`), and",
        "  the CJK dash `——` and ellipsis `……` are one token each.",
        "- c4_quality decides pages and does not rewrite them (datatrove's filter also drops the lines it does not keep).",
        "- language classifies the first 4,000 characters (`max_chars`), and Han text without kana is `zh`.",
    ]
    known = [a for _, _, a in accuracy if a > 0.05]
    lines += [
        "",
        "## Language ID accuracy (langid_lingua_75lang: ~1,000 sentences per language)",
        "",
        f"Mean over 75 languages: {sum(a for *_, a in accuracy) / len(accuracy):.1%}; over the {len(known)} that lid.176 knows"
        f" (accuracy > 5%): {sum(known) / len(known):.1%}.",
        "",
        "| language | sentences | accuracy |",
        "|---|---|---|",
    ]
    lines += [f"| {lang} | {n} | {acc:.1%} |" for lang, n, acc in accuracy]
    REPORT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if "--as-datatrove" in sys.argv:
        as_datatrove(sys.argv[sys.argv.index("--as-datatrove") + 1])
    else:
        main()
