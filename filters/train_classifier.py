"""`clean train-classifier`: a fastText classifier from a positive and a negative input, with a
held-out evaluation and a model card next to the model.

The inputs are read as `clean run` reads them (Parquet, JSON Lines, WARC/WET; a folder, file or
glob), the text prepared exactly as the `classifier` stage prepares it, and the card records that
preparation, so the stage takes it from there. Training runs fastText with one thread and the
given seed, which makes the model file the same bytes for the same inputs and settings. Training
needs the full fastText package (`pip install 'cleanmix[train]'`); the stage needs only the runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from cleanmix.filters.classifier import LABEL_PREFIX, card_path, prepare, score_texts_with
from cleanmix.pipelines.config import InputConfig
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.shards import plan_input, read_unit
from cleanmix.pipelines.stage import TEXT

POSITIVE, NEGATIVE = "hq", "lq"
CARD_WRITER = "cleanmix train-classifier"


class TrainSettings(BaseModel):
    """What `clean train-classifier` is asked to do; validated before anything is read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    positive: str = Field(description="documents to score high: a folder, file or glob, as input.path")
    negative: str = Field(description="documents to score low")
    output: str = Field(description="the model file to write (its card goes next to it: <stem>.card.json and .card.md)")
    text_column: str = "text"
    format: Literal["parquet", "jsonl", "warc"] | None = None
    limit: int | None = Field(None, ge=1, description="read at most this many documents of each input")
    held_out: float = Field(0.1, gt=0, lt=1, description="share of each input kept out of training, for the evaluation")
    seed: int = 0
    lowercase: bool = False
    cjk: Literal["none", "chars"] = "chars"
    epoch: int = Field(5, ge=1)
    lr: float = Field(0.5, gt=0)
    dim: int = Field(64, ge=1)
    word_ngrams: int = Field(2, ge=1)
    min_count: int = Field(1, ge=1)
    bucket: int = Field(200_000, ge=0)


def read_texts(path: str, settings: TrainSettings) -> list[str]:
    """The non-empty texts of an input, in input order, at most `limit`."""
    config = InputConfig(path=path, text_column=settings.text_column, format=settings.format)
    texts: list[str] = []
    for unit in plan_input(config, settings.limit).units:
        for batch in read_unit(unit, config):
            texts += [t for t in batch.get_column(TEXT).to_list() if t and t.strip()]
            if settings.limit is not None and len(texts) >= settings.limit:
                return texts[: settings.limit]
    if not texts:
        raise UserError(f"{path} holds no document with text (column '{settings.text_column}'): nothing to train on.")
    return texts


def fasttext_trainer() -> Any:
    """The full fastText package; fasttext-predict installs a module of the same name, predict only."""
    try:
        import fasttext
    except ImportError:
        fasttext = None
    if fasttext is None or not hasattr(fasttext, "train_supervised"):
        raise UserError(
            "clean train-classifier needs the full fastText package, and the `fasttext` module installed is "
            "fasttext-predict's (predict only; both packages install a module named fasttext). Install it with "
            "pip install 'cleanmix[train]', or if that is already done: pip install --force-reinstall --no-deps 'fasttext>=0.9.3'."
        )
    return fasttext


def train(settings: TrainSettings, overwrite: bool = False) -> dict[str, Any]:
    """Train, evaluate on the held-out documents, write the model and its card; returns the card."""
    out = Path(settings.output)
    card_file = card_path(out)
    if out.exists() and not (overwrite and _ours(card_file)):
        raise UserError(f"{out} exists: choose another output, or --overwrite to replace a model this command wrote "
                        "(one with its card next to it).")
    fasttext = fasttext_trainer()
    rng = np.random.default_rng(settings.seed)
    data, train_rows, held = {}, [], []
    for label, path in ((POSITIVE, settings.positive), (NEGATIVE, settings.negative)):
        texts = pl.Series(TEXT, read_texts(path, settings)).to_frame().select(prepare(pl.col(TEXT), settings.lowercase, settings.cjk))
        lines = texts.get_column(TEXT).to_list()
        order = rng.permutation(len(lines))
        cut = int(round(settings.held_out * len(lines)))
        held += [(label, lines[i]) for i in order[:cut]]
        train_rows += [(label, lines[i]) for i in order[cut:]]
        data[label] = {"path": path, "docs": len(lines), "train": len(lines) - cut, "held_out": cut,
                       "chars": int(texts.get_column(TEXT).str.len_chars().sum())}
    if {label for label, _ in held} != {POSITIVE, NEGATIVE}:
        raise UserError("too few documents to hold some of each input out: give more, or a larger --held-out.")
    train_rows = [train_rows[i] for i in rng.permutation(len(train_rows))]
    parameters = {"epoch": settings.epoch, "lr": settings.lr, "dim": settings.dim, "wordNgrams": settings.word_ngrams,
                  "minCount": settings.min_count, "bucket": settings.bucket, "loss": "softmax", "thread": 1, "seed": settings.seed}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".cleanmix-train-") as tmp:
        corpus = Path(tmp) / "train.txt"
        corpus.write_text("".join(f"{LABEL_PREFIX}{label} {line}\n" for label, line in train_rows), encoding="utf-8")
        try:
            model = fasttext.train_supervised(input=str(corpus), verbose=0, **parameters)
        except RuntimeError as error:
            raise UserError(f"fastText training failed ({error}): with NaN, the learning rate is too high for this data; "
                            f"try a lower --lr than {settings.lr}.") from None
        staged = Path(tmp) / out.name
        model.save_model(str(staged))
        scores = score_texts_with(model, pl.Series([line for _, line in held]), POSITIVE).to_numpy()
        os.replace(staged, out)
    truth = np.array([label == POSITIVE for label, _ in held])
    card = {
        "written_by": CARD_WRITER,
        "model": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "preparation": {"lowercase": settings.lowercase, "cjk": settings.cjk, "newlines": "whitespace runs become one space"},
        "data": {"positive": data[POSITIVE], "negative": data[NEGATIVE], "text_column": settings.text_column,
                 "limit": settings.limit, "held_out_share": settings.held_out},
        "parameters": parameters,
        "held_out": evaluate(truth, scores),
        "fasttext": _version("fasttext"),
    }
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    card_file.with_suffix(".md").write_text(card_markdown(card))
    return card


def evaluate(truth: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Precision, recall and F1 of the positive label at `threshold`, and ROC AUC (ties count half)."""
    predicted = scores >= threshold
    tp, fp, fn = int((predicted & truth).sum()), int((predicted & ~truth).sum()), int((~predicted & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    ranks = pl.Series(scores).rank("average").to_numpy()
    positives, negatives = int(truth.sum()), int((~truth).sum())
    auc = (ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return {"docs": len(truth), "positive": positives, "negative": negatives, "threshold": threshold,
            "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
            "accuracy": round(float((predicted == truth).mean()), 4), "auc": round(float(auc), 4)}


def card_markdown(card: dict[str, Any]) -> str:
    data, held, prep = card["data"], card["held_out"], card["preparation"]
    rows = "\n".join(f"| {kind} (`__label__{card['labels'][kind]}`) | `{data[kind]['path']}` | {data[kind]['docs']:,} | "
                     f"{data[kind]['train']:,} | {data[kind]['held_out']:,} | {data[kind]['chars']:,} |"
                     for kind in ("positive", "negative"))
    params = ", ".join(f"{k}={v}" for k, v in card["parameters"].items())
    return (
        f"# Model card: {card['model']}\n\n"
        f"A fastText supervised classifier written by `clean train-classifier` (fastText {card['fasttext']}); "
        f"sha256 `{card['sha256']}`.\n\n"
        "## Data\n\n| class | input | docs | train | held out | characters |\n|---|---|---|---|---|---|\n"
        f"{rows}\n\nText column `{data['text_column']}`; held-out share {data['held_out_share']}.\n\n"
        f"## Preparation\n\nlowercase: {prep['lowercase']}; cjk: {prep['cjk']}; {prep['newlines']}. "
        "The `classifier` stage reads this card and prepares text the same way.\n\n"
        f"## Parameters\n\n{params}\n\n"
        f"## Held-out evaluation ({held['docs']:,} documents: {held['positive']:,} positive, {held['negative']:,} negative)\n\n"
        f"| precision | recall | F1 | accuracy | ROC AUC |\n|---|---|---|---|---|\n"
        f"| {held['precision']} | {held['recall']} | {held['f1']} | {held['accuracy']} | {held['auc']} |\n\n"
        f"Precision, recall, F1 and accuracy at score ≥ {held['threshold']}.\n"
    )


def _ours(card: Path) -> bool:
    try:
        return json.loads(card.read_text()).get("written_by") == CARD_WRITER
    except (OSError, ValueError, AttributeError):
        return False


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
