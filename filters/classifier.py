"""`classifier`: score each document with a fastText supervised model; keep by score or by rank.

The model is a file given by `model_path` (DCLM's OH-2.5+ELI5 classifier, Dolma's Jigsaw taggers,
one trained with `clean train-classifier`), read by cleanmix's compiled fastText predict (`fasttext_model`, fastText's
results bit for bit; the fastText runtime, fasttext-predict, for a model it does not implement): nothing is ever
downloaded. The score is the probability the model gives
`score_label`, in the column `classifier_score` (`<name>_score`). The text is prepared as the model was trained: newlines and
runs of fastText's whitespace become one space (fastText reads one line), optionally lowercased, and Han
characters and kana optionally split apart (`cjk: chars`), since fastText cuts words at spaces
only. A model card next to the model (`<model>.card.json`, written by `clean train-classifier`)
supplies the label and the preparation, and a stage that says otherwise is refused.

`min_score` keeps documents scoring at least that; `keep_top` keeps the top fraction of the whole
corpus (DCLM keeps its top 10%), exactly, ties to the earlier document (`ranking.RankedFilter`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from cleanmix.filters import fasttext_model
from cleanmix.filters.language import load_model
from cleanmix.filters.ranking import RankedFilter
from cleanmix.pipelines.stage import TEXT, Rule

FASTTEXT_MAGIC = 793712314
"""The first int32 of every fastText model file (.bin and quantized .ftz)."""
LABEL_PREFIX = "__label__"
CJK = r"([\p{Han}\p{Hiragana}\p{Katakana}])"
FASTTEXT_SPACE = r"[ \t\n\r\x0B\x0C\x00]+"
"""What fastText splits words at (its reader's whitespace): other spaces (U+3000, NBSP) stay inside words, as fastText sees them."""
PREDICT_LINES = 8192
"""Lines predicted at a time: each gets every label's probability (lines x labels floats)."""


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


def score_texts(lines: pl.Series, path: str, label: str) -> pl.Series:
    """The probability of `label` for each prepared line (null stays null), by the model at `path`: by the compiled
    predict (`fasttext_model`, fastText's results bit for bit), or by fastText itself for a model it does not implement."""
    if lines.is_empty():
        return pl.Series([], dtype=pl.Float64)
    model = fasttext_model.load(path)
    if model is None:
        return score_texts_with(load_model(path), lines, label)
    texts = lines.drop_nulls().to_list()
    found_scores = np.zeros(len(texts))
    for start in range(0, len(texts), PREDICT_LINES):
        found, probabilities = model.predict(texts[start : start + PREDICT_LINES], -1)
        found_scores[start : start + PREDICT_LINES] = model.probability(found, probabilities, LABEL_PREFIX + label).clip(0.0, 1.0)
    scores = np.full(len(lines), np.nan)
    scores[lines.is_not_null().to_numpy()] = found_scores
    return pl.Series(scores, dtype=pl.Float64).fill_nan(None)


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


class Classifier(RankedFilter):
    """Keep documents a fastText classifier scores high: above `min_score`, or in the corpus's `keep_top`."""

    type: Literal["classifier"] = "classifier"
    model_path: str = Field(description="a fastText supervised model (.bin or .ftz); never downloaded")
    score_label: str = Field("hq", description="the model's label whose probability is the score (with or without __label__); "
                             "default: the model card's positive label, else hq (DCLM's)")
    min_score: float | None = Field(None, ge=0, le=1, description="keep documents scoring at least this")
    lowercase: bool = Field(False, description="lowercase before scoring (as the model was trained); default: the model card's")
    cjk: Literal["none", "chars"] = Field("none", description="chars: a space around every Han character and kana, for models "
                                          "trained so; default: the model card's")

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
            written = json.loads(card.read_text())
            prepared, positive = written["preparation"], written["labels"]["positive"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"the model card {card} cannot be read: {error!r}") from None
        data = dict(data)
        for key in ("lowercase", "cjk"):
            if key in data and key in prepared and data[key] != prepared[key]:
                raise ValueError(f"{key}: {data[key]!r}, but the model card {card} says the model was trained with "
                                 f"{key}: {prepared[key]!r}; leave {key} out to take the card's")
            data.setdefault(key, prepared.get(key))
        data.setdefault("score_label", positive)
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

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        path, label = self.model_path, self.score_label
        line = prepare(pl.col(TEXT), self.lowercase, self.cjk)
        return df.with_columns(line.map_batches(lambda lines: score_texts(lines, path, label), return_dtype=pl.Float64).alias(self.score))

    def threshold_rules(self) -> list[Rule]:
        return [] if self.min_score is None else [Rule.below("low_score", self.score, self.min_score)]
