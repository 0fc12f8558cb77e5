"""`classifier`: score each document with a fastText supervised model; keep by score or by rank.

The model is a file given by `model_path` (DCLM's OH-2.5+ELI5 classifier, Dolma's Jigsaw taggers,
one trained with `clean train-classifier`), read by the fastText runtime cleanmix already uses
(fasttext-predict): nothing is ever downloaded. The score is the probability the model gives
`label`, in the column `<name>_score`. The text is prepared as the model was trained: newlines and
runs of fastText's whitespace become one space (fastText reads one line), optionally lowercased, and Han
characters and kana optionally split apart (`cjk: chars`), since fastText cuts words at spaces
only. A model card next to the model (`<model>.card.json`, written by `clean train-classifier`)
supplies the label and the preparation, and a stage that says otherwise is refused.

`min_score` keeps documents scoring at least that; `keep_top` keeps the top fraction of the whole
corpus (DCLM keeps its top 10%): a global stage, whose scan scores every document once, whose
decide finds the cut by a radix selection over the scores (memory bounded by the scores of one
unit and one bucket), and whose apply reads the scores back. Exactly round(keep_top × scored
documents) are kept; ties at the cut go to the earlier document in input order, so the kept set
is the same whatever the number of workers.
"""

from __future__ import annotations

import json
import math
import struct
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, PrivateAttr, field_validator, model_validator

from cleanmix.pipelines.histogram import split_histograms
from cleanmix.pipelines.order import ORDER
from cleanmix.pipelines.stage import REASON, TEXT, Context, Filter, GlobalStage, Rule, StageResult

FASTTEXT_MAGIC = 793712314
"""The first int32 of every fastText model file (.bin and quantized .ftz)."""
LABEL_PREFIX = "__label__"
CJK = r"([\p{Han}\p{Hiragana}\p{Katakana}])"
FASTTEXT_SPACE = r"[ \t\n\r\x0B\x0C\x00]+"
"""What fastText splits words at (its reader's whitespace): other spaces (U+3000, NBSP) stay inside words, as fastText sees them."""
RADIX_BITS = 16
COLLECT_ROWS = 2_000_000
"""Rows in one bucket of the radix selection that decide sorts in memory instead of refining further."""
CUT_FILE = "cut.json"


def card_path(model_path: str | Path) -> Path:
    """Where `clean train-classifier` writes the model card: `quality.bin` → `quality.card.json`."""
    return Path(model_path).with_suffix(".card.json")


def prepare(text: pl.Expr, lowercase: bool, cjk: Literal["none", "chars"]) -> pl.Expr:
    """The text as the model sees it: one line, optionally lowercased and with CJK characters split."""
    if lowercase:
        text = text.str.to_lowercase()
    if cjk == "chars":
        text = text.str.replace_all(CJK, " $1 ")
    return text.str.replace_all(FASTTEXT_SPACE, " ").str.strip_chars(" ")


def model_labels(path: str | Path) -> list[str]:
    """The labels of a fastText model, read from its header (no model load): the dictionary's
    entries are a word, a NUL, an int64 count and an int8 type (1: a label)."""
    with open(path, "rb") as file:
        head = file.read(8 + 12 * 4 + 8 + 12 + 16)
        if len(head) < 8 or struct.unpack("<i", head[:4])[0] != FASTTEXT_MAGIC:
            raise ValueError(f"{path} is not a fastText model (.bin or .ftz): it does not start with fastText's magic number")
        if len(head) < 92:
            raise ValueError(f"{path} is a truncated fastText model")
        size = struct.unpack("<i", head[64:68])[0]
        labels: list[str] = []
        buffer, pos = b"", 0
        for _ in range(size):
            end = buffer.find(b"\0", pos)
            while end < 0 or end + 10 > len(buffer):
                more = file.read(1 << 20)
                if not more:
                    raise ValueError(f"{path} is a truncated fastText model")
                buffer, pos = buffer[pos:] + more, 0
                end = buffer.find(b"\0", pos)
            if buffer[end + 9] == 1:
                labels.append(buffer[pos:end].decode("utf-8", "replace").removeprefix(LABEL_PREFIX))
            pos = end + 10
        return labels


@cache
def load_model(path: str) -> Any:
    """One model per file and process: loaded on a worker's first batch, then reused."""
    import fasttext

    return fasttext.load_model(path)


def score_texts(lines: pl.Series, path: str, label: str) -> pl.Series:
    """The probability of `label` for each prepared line (null stays null), by the model at `path`."""
    if lines.is_empty():
        return pl.Series([], dtype=pl.Float64)
    return score_texts_with(load_model(path), lines, label)


def score_texts_with(model: Any, lines: pl.Series, label: str) -> pl.Series:
    """The same with a loaded model (`clean train-classifier` evaluates the model it trained)."""
    predict = model.f.predict
    wanted = LABEL_PREFIX + label
    scores: list[float | None] = []
    for line in lines.to_list():
        if line is None:
            scores.append(None)
            continue
        found = {name: prob for prob, name in predict(line + "\n", -1, 0.0, "replace")}
        scores.append(min(1.0, max(0.0, found.get(wanted, 0.0))))
    return pl.Series(scores, dtype=pl.Float64)


class Classifier(Filter, GlobalStage):
    """Keep documents a fastText classifier scores high: above `min_score`, or in the corpus's `keep_top`."""

    type: Literal["classifier"] = "classifier"
    model_path: str = Field(description="a fastText supervised model (.bin or .ftz); never downloaded")
    score_label: str = Field("hq", description="the model's label whose probability is the score (with or without __label__); "
                             "default: the model card's positive label, else hq (DCLM's)")
    min_score: float | None = Field(None, ge=0, le=1, description="keep documents scoring at least this")
    keep_top: float | None = Field(None, gt=0, le=1, description="keep this top fraction of the whole corpus by score "
                                   "(a global stage: the cut is decided over every document)")
    lowercase: bool = Field(False, description="lowercase before scoring (as the model was trained); default: the model card's")
    cjk: Literal["none", "chars"] = Field("none", description="chars: a space around every Han character and kana, for models "
                                          "trained so; default: the model card's")

    _cut: tuple[float, int] | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _from_card(cls, data: Any) -> Any:
        """Label and preparation from the model card, when there is one; a contradiction is refused."""
        if not isinstance(data, dict) or not isinstance(data.get("model_path"), str):
            return data
        card = card_path(data["model_path"])
        if not card.is_file():
            return data
        try:
            prepared = json.loads(card.read_text())["preparation"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"the model card {card} cannot be read: {error}") from None
        data = dict(data)
        for key in ("lowercase", "cjk"):
            if key in data and key in prepared and data[key] != prepared[key]:
                raise ValueError(f"{key}: {data[key]!r}, but the model card {card} says the model was trained with "
                                 f"{key}: {prepared[key]!r}; leave {key} out to take the card's")
            data.setdefault(key, prepared.get(key))
        data.setdefault("score_label", json.loads(card.read_text()).get("labels", {}).get("positive", "hq"))
        return data

    @field_validator("model_path")
    @classmethod
    def _model_exists(cls, path: str) -> str:
        if not Path(path).is_file():
            raise ValueError(f"{path} does not exist or is not a file (a fastText model, .bin or .ftz, is needed; "
                             "nothing is downloaded)")
        return path

    @field_validator("score_label")
    @classmethod
    def _bare_label(cls, label: str) -> str:
        return label.removeprefix(LABEL_PREFIX)

    @model_validator(mode="after")
    def _label_in_model(self) -> Classifier:
        labels = model_labels(self.model_path)
        if self.score_label not in labels:
            raise ValueError(f"score_label '{self.score_label}' is not one of the model's labels ({', '.join(labels) or 'none'}): "
                             f"{self.model_path}")
        if self.mode == "filter" and self.min_score is None and self.keep_top is None:
            raise ValueError("give min_score or keep_top (or mode: annotate, to add the score only)")
        return self

    @property
    def score(self) -> str:
        """The score column: `classifier_score`, or `<name>_score` for a named stage."""
        return f"{self.label}_score"

    @property
    def keeps(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.score,)

    @property
    def whole_corpus(self) -> bool:
        return self.keep_top is not None

    # scoring ----------------------------------------------------------------------------------

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        path, label = self.model_path, self.score_label
        line = prepare(pl.col(TEXT), self.lowercase, self.cjk)
        return df.with_columns(line.map_batches(lambda lines: score_texts(lines, path, label), return_dtype=pl.Float64).alias(self.score))

    def rules(self) -> list[Rule]:
        rules = [] if self.min_score is None else [Rule.below("low_score", self.score, self.min_score)]
        if self._cut is not None:
            score, order = self._cut
            below = (pl.col(self.score) < score) | ((pl.col(self.score) == score) & (pl.col(ORDER) > order))
            rules.append(Rule(f"not_top[{self.keep_top:g}]", below, self.score, score))
        return rules

    def histograms(self, measured: pl.DataFrame) -> dict[str, dict[str, int]]:
        """The scores, kept and removed, whatever the rules."""
        return split_histograms(measured, [self.score], pl.col(REASON).is_not_null())

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        from cleanmix.pipelines import charts

        cuts = [("min_score", self.min_score)] if self.min_score is not None else []
        details = stats.get("details") or {}
        if details.get("cut_score") is not None:
            cuts.append((f"top {self.keep_top:g}", details["cut_score"]))
        sections = [("distributions", charts.distributions(self.label, stats.get("tallies") or {}, {self.score: cuts}))]
        return sections + (GlobalStage.report_sections(self, stats) if self.whole_corpus else [])

    # running ----------------------------------------------------------------------------------

    def process(self, df: pl.DataFrame) -> StageResult:
        return GlobalStage.process(self, df) if self.whole_corpus else Filter.process(self, df)

    def annotate(self, data: Any) -> Any:
        if not self.whole_corpus:
            return Filter.annotate(self, data)
        result = self.model_copy(update={"mode": "annotate"}).process(_as_frame(data))
        return result.kept.rename({f"{self.label}_reason": REASON})

    def scan(self, df: pl.DataFrame) -> pl.DataFrame:
        return self.with_metrics(df).select(ORDER, self.score).drop_nulls(self.score)

    def decide(self, scans: list[Path], ctx: Context) -> dict[str, Any]:
        ctx.map(_store_scores, [(path, f"s{i:06d}", ctx.decisions) for i, path in enumerate(scans)])
        counts = ctx.map(_count_rows, scans)
        scored = int(sum(counts))
        keep = math.floor((self.keep_top or 1.0) * scored + 0.5)
        score, order = _select(scans, keep, ctx) if keep else (None, None)
        (ctx.workdir / CUT_FILE).write_text(json.dumps({"score": score, "order": order}))
        return {"scored": scored, "keep": keep, "cut_score": score, "cut_order": order}

    def apply(self, df: pl.DataFrame, ctx: Context) -> StageResult:
        stored = ctx.decisions.load(df.get_column(ORDER))
        scores = stored if stored is not None else pl.DataFrame(schema={ORDER: pl.UInt64, self.score: pl.Float64})
        measured = df.drop(self.score, strict=False).join(scores, on=ORDER, how="left", maintain_order="left")
        cut = json.loads((ctx.workdir / CUT_FILE).read_text())
        decided = self.model_copy()
        decided._cut = (cut["score"], cut["order"]) if cut["score"] is not None else (math.inf, 0)  # keep none
        return decided.select(df, measured)


def _as_frame(data: Any) -> pl.DataFrame:
    from cleanmix.pipelines.stage import _checked, to_polars

    return _checked(to_polars(data))


# deciding the cut -------------------------------------------------------------------------------

def _store_scores(job: tuple[Path, str, Any]) -> None:
    path, name, decisions = job
    decisions.write(pl.read_parquet(path), name)


def _count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _keys(path: Path) -> np.ndarray:
    """Each row's rank key, two uint64 words: the score's bits (ordered as the scores, which are
    ≥ 0) and the inverted `ORDER` (so the earlier document ranks higher among equal scores)."""
    df = pl.read_parquet(path)
    score = df.columns[1]
    bits = df.get_column(score).to_numpy().astype(np.float64).view(np.uint64)
    inverted = ~df.get_column(ORDER).to_numpy().astype(np.uint64)
    return np.stack([bits, inverted], axis=1)


def _matching(keys: np.ndarray, prefix: tuple[int, ...]) -> np.ndarray:
    """Rows whose first `len(prefix)` 16-bit digits (of the 128-bit key) equal `prefix`."""
    mask = np.ones(len(keys), dtype=bool)
    for i, digit in enumerate(prefix):
        mask &= _digit(keys, i) == digit
    return keys[mask]


def _digit(keys: np.ndarray, i: int) -> np.ndarray:
    word, shift = divmod(i, 64 // RADIX_BITS)
    return ((keys[:, word] >> np.uint64(64 - RADIX_BITS * (shift + 1))) & np.uint64((1 << RADIX_BITS) - 1)).astype(np.int64)


def _bucket_counts(job: tuple[Path, tuple[int, ...]]) -> np.ndarray:
    path, prefix = job
    keys = _matching(_keys(path), prefix)
    return np.bincount(_digit(keys, len(prefix)), minlength=1 << RADIX_BITS)


def _collect(job: tuple[Path, tuple[int, ...]]) -> np.ndarray:
    path, prefix = job
    return _matching(_keys(path), prefix)


def _select(scans: list[Path], keep: int, ctx: Context) -> tuple[float, int]:
    """The `keep`-th highest key over all scans, as (score, ORDER): a radix selection, 16 bits a
    round, each round counting one bucket's rows in parallel; a bucket small enough is sorted."""
    prefix: tuple[int, ...] = ()
    rank = keep  # 1-based rank of the wanted key within the rows matching `prefix`
    while True:
        counts = np.sum(ctx.map(_bucket_counts, [(path, prefix) for path in scans]), axis=0)
        above = np.cumsum(counts[::-1])  # rows in this bucket or higher, from the top bucket down
        top = int(np.searchsorted(above, rank))
        digit = len(counts) - 1 - top
        rank -= int(above[top - 1]) if top else 0
        prefix = (*prefix, digit)
        if counts[digit] <= COLLECT_ROWS or len(prefix) == 128 // RADIX_BITS:
            break
    rows = np.concatenate(ctx.map(_collect, [(path, prefix) for path in scans]))
    ordered = rows[np.lexsort((rows[:, 1], rows[:, 0]))[::-1]]
    bits, inverted = ordered[rank - 1]
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0]), int(~np.uint64(inverted))
