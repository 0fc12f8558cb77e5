"""`perplexity`: how surprising a document is to a language model of clean text, as CCNet scores it.

A KenLM n-gram model and the SentencePiece tokenizer it was trained on, one pair per language
(CCNet's are trained on Wikipedia: `en.arpa.bin` and `en.sp.model`), given by path and never
downloaded. Each line of a document is normalised as CCNet does before scoring (lowercase, accents
removed, digits made 0, Unicode punctuation — full-width CJK punctuation included — made ASCII),
cut into SentencePiece pieces (which needs no spaces between words, so Chinese and Japanese are
scored like any language) and scored with sentence boundaries; the document's perplexity is
10^(−Σ log10 p / Σ (pieces + 1)) over its lines. Documents are routed to their language's model by
the `language` column (from the `language` stage), or all to one model. Lower is better:
`max_perplexity` per language, or `keep_top`, the lowest-perplexity fraction of each language
(CCNet's head/middle/tail buckets are its per-language 33rd and 66th percentiles).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cleanmix.filters.ranking import RankedFilter
from cleanmix.pipelines.stage import TEXT, Rule

INSTALL = "pip install 'cleanmix[perplexity]' (kenlm, sentencepiece)"
PUNCTUATION = {
    "，": ",", "。": ". ", "、": ",", "．": ". ", "：": ":", "∶": ":", "；": ";", "？": "?", "！": "!", "（": "(", "）": ")",
    "【": "[", "】": "]", "〈": "<", "〉": ">", "《": '"', "》": '"', "「": '"', "」": '"', "『": '"', "』": '"',
    "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "´": "'", "–": "-", "—": " - ", "━": "-",
    "～": "~", "…": "...", "％": "%", "►": "-",
}
"""Unicode punctuation → ASCII, before scoring (the mapping CCNet's normaliser applies, written out here)."""


def normalize(text: pl.Expr) -> pl.Expr:
    """CCNet's normalisation of a line: lowercase, no accents, digits 0, ASCII punctuation."""
    text = text.str.to_lowercase().str.normalize("NFD").str.replace_all(r"\p{Mn}", "")
    return text.str.replace_all(r"\d", "0").str.replace_many(list(PUNCTUATION), list(PUNCTUATION.values()))


@cache
def load_lm(path: str) -> Any:
    """One KenLM model per file and process (a binary model is memory-mapped)."""
    import kenlm

    return kenlm.Model(path)


@cache
def load_tokenizer(path: str) -> Any:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=path)


def perplexities(texts: pl.Series, model_path: str, tokenizer_path: str) -> list[float | None]:
    """Each document's perplexity under the model: its lines normalised, tokenised and scored."""
    lines = (texts.to_frame(TEXT).with_row_index("_doc")
             .select("_doc", normalize(pl.col(TEXT)).str.split("\n").alias("_line")).explode("_line")
             .filter(pl.col("_line").str.strip_chars().str.len_chars() > 0))
    if lines.is_empty():
        return [None] * len(texts)
    lm, tokenizer = load_lm(model_path), load_tokenizer(tokenizer_path)
    pieces = tokenizer.encode(lines.get_column("_line").to_list(), out_type=str)
    scores = [lm.score(" ".join(p), bos=True, eos=True) for p in pieces]
    per_doc = (lines.select("_doc").with_columns(pl.Series("_log10", scores), pl.Series("_n", [len(p) + 1 for p in pieces]))
               .group_by("_doc").agg(pl.col("_log10").sum(), pl.col("_n").sum()))
    found = dict(zip(per_doc["_doc"].to_list(), (10 ** (-per_doc["_log10"] / per_doc["_n"])).to_list()))
    return [found.get(i) for i in range(len(texts))]


class LanguageModel(BaseModel):
    """One language's KenLM model and the SentencePiece tokenizer it was trained with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str = Field(description="a KenLM model: ARPA text (.arpa) or KenLM binary (.bin)")
    tokenizer_path: str = Field(description="the SentencePiece model (.model) the language model's text was cut with")
    max_perplexity: float | None = Field(None, gt=0, description="remove documents of this language above this perplexity")

    @field_validator("model_path")
    @classmethod
    def _kenlm_file(cls, path: str) -> str:
        if not Path(path).is_file():
            raise ValueError(f"{path} does not exist or is not a file (a KenLM model is needed; nothing is downloaded)")
        with open(path, "rb") as file:
            head = file.read(4096)
        if not (head.startswith(b"mmap lm ") or b"\\data\\" in head):
            raise ValueError(f"{path} is not a KenLM model: neither ARPA text (a \\data\\ section) nor a KenLM binary")
        return path

    @field_validator("tokenizer_path")
    @classmethod
    def _sentencepiece_file(cls, path: str) -> str:
        if not Path(path).is_file():
            raise ValueError(f"{path} does not exist or is not a file (a SentencePiece .model is needed)")
        try:
            load_tokenizer(path)
        except ImportError:
            raise ValueError(f"the perplexity stage needs kenlm and sentencepiece: {INSTALL}") from None
        except Exception as error:  # noqa: BLE001 - whatever SentencePiece says about a file that is not its model
            raise ValueError(f"{path} is not a SentencePiece model ({error})") from None
        return path


class Perplexity(RankedFilter):
    """Keep documents a language model of clean text finds likely: by threshold, or the best fraction per language."""

    type: Literal["perplexity"] = "perplexity"
    models: dict[str, LanguageModel] = Field(description="per language (as the language column names it): model_path, "
                                             "tokenizer_path, max_perplexity; with language_column null, one entry for every document")
    keep_top: float | None = Field(None, gt=0, le=1, description="keep this lowest-perplexity fraction of each language "
                                   "(of all documents with language_column null): a global stage")
    language_column: str | None = Field("language", description="the column that routes documents to models (the language "
                                        "stage's); null: one model for all")

    higher_is_better: ClassVar[bool] = False

    @model_validator(mode="after")
    def _usable(self) -> Perplexity:
        try:
            import kenlm  # noqa: F401
        except ImportError:
            raise ValueError(f"the perplexity stage needs kenlm and sentencepiece: {INSTALL}") from None
        if not self.models:
            raise ValueError("models is empty: give at least one language's model_path and tokenizer_path")
        if self.language_column is None and len(self.models) != 1:
            raise ValueError(f"language_column is null, so one model scores every document, but models has {len(self.models)}")
        thresholds = any(m.max_perplexity is not None for m in self.models.values())
        if self.mode == "filter" and self.keep_top is None and not thresholds:
            raise ValueError("give max_perplexity for a language, or keep_top (or mode: annotate, to add the perplexity only)")
        return self

    @property
    def score(self) -> str:
        """The measured column: `perplexity`, or `<name>_perplexity` for a named stage."""
        return self.type if self.name is None else f"{self.name}_perplexity"

    def input_columns(self) -> tuple[str, ...]:
        return (self.language_column,) if self.language_column else ()

    def group(self) -> pl.Expr | None:
        return pl.col(self.language_column) if self.language_column else None

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        scores = pl.Series(self.score, [None] * df.height, dtype=pl.Float64)
        if df.is_empty():
            return df.with_columns(scores)
        if self.language_column and self.language_column not in df.columns:
            from cleanmix.pipelines.errors import UserError

            raise UserError(f"{self.label}: the documents have no '{self.language_column}' column to pick a model by: run the "
                            "language stage before it, or set language_column: null with one model")
        for language, lm in self.models.items():
            rows = pl.Series(range(df.height)) if self.language_column is None else \
                df.with_row_index("_i").filter(pl.col(self.language_column) == language).get_column("_i")
            if rows.is_empty():
                continue
            found = perplexities(df.get_column(TEXT).gather(rows), lm.model_path, lm.tokenizer_path)
            scores = scores.scatter(rows, pl.Series(found, dtype=pl.Float64))
        return df.with_columns(scores)

    def threshold_rules(self) -> list[Rule]:
        limits = {lang: m.max_perplexity for lang, m in self.models.items() if m.max_perplexity is not None}
        if not limits:
            return []
        if self.language_column is None:
            (limit,) = limits.values()
            return [Rule.above("high_perplexity", self.score, limit)]
        per_language = pl.col(self.language_column).replace_strict(list(limits), list(limits.values()), default=None,
                                                                   return_dtype=pl.Float64)
        shown = next(iter(limits.values())) if len(limits) == 1 else None
        return [Rule.above("high_perplexity", self.score, shown, per_document=per_language)]

