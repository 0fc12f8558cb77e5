"""`decontaminate`: find benchmark items in documents, naming the benchmark and the item; drop the
document, cut the item out of it, or only mark it.

Why a document stage, not a global one: the index depends on the benchmark files alone, never on
the corpus, and it is small and quick to build (GSM8K, and CMMLU by question and by question and
choices: 1.0 M n-grams, under a second). So each worker process builds it once, on its first
batch, and keeps it (`functools.cache`, keyed by the parameters and every benchmark file's path,
size and modification time, so an edited file is read again); Ray reuses its worker processes, so
there too it is built once per worker, not per batch. The stage then fuses with its neighbours
into their pass: a global stage would add a pass over the whole corpus (every surviving document
written to `_work/` and read back) only to carry an index that needs nothing from the corpus.

Why the rule (see `benchmarks/decontaminate.md` for the measurements): a document holds an item
when it holds at least `min_overlap` of the n-grams of one of the item's fields (or joined
fields), and at least `min_ngrams` of them. A share rather than one shared n-gram, because
benchmark questions quote text that real documents quote too (poems, slogans, statute titles):
with "any shared 10-character n-gram", 9% of People's Daily documents hit CMMLU; with the share,
0.06%. n-grams found in `common_ngrams` items of the benchmarks are template wording
("下列说法正确的是") and left out. Three n-grams at least, because a short question alone is what
same-topic text holds too (a template question inside a longer one): with two, 0.22% of CMMLU
items hit another item's index; with three, 0.16%. A multiple-choice item is then found whole by
its question joined with its choices (`fields: [question, [question, A, B, C, D]]`): 0.995.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cleanmix.filters.benchmark_index import Hits, Index, benchmark_files, build_index, check_benchmark, find, matched_spans, read_items
from cleanmix.pipelines.stage import ID, REASON, TEXT, Mapper, StageResult, file_stamp, with_reason

MAX_EXAMPLES = 3
"""Examples per benchmark from one batch (the runner keeps the first few over the run)."""
EXAMPLE_CHARS = 300
TOP_ITEMS = 20
"""Items listed per benchmark in the report (all of them are in the stats)."""


class Benchmark(BaseModel):
    """One benchmark: where its items are, and which of their fields to look for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="a Parquet, JSON Lines or CSV file, or a folder of them (read recursively)")
    fields: tuple[str | Annotated[tuple[str, ...], Field(min_length=1)], ...] = Field(
        min_length=1, description="the fields whose text is looked for, each on its own, or several joined as one text "
        "(e.g. [question, [question, A, B, C, D]]: the question alone, and with its choices)"
    )
    id_field: str | None = Field(None, description="the field naming each item; none: `id` if there is one, else <file>:<row>")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        """Read from the current directory, once: workers of another node or folder find the same file."""
        return str(Path(path).expanduser().absolute())

    @model_validator(mode="after")
    def _readable(self) -> Benchmark:
        check_benchmark(Path(self.path), self.fields, self.id_field)
        return self


@cache
def load_index(benchmarks: tuple[tuple[str, Benchmark, tuple[tuple[str, int, int], ...]], ...], ngram: int, cjk_ngram: int,
               common: int | None) -> Index:
    """One index per worker process and configuration (the file stamps make an edited file a new key)."""
    items = {name: read_items(Path(b.path), b.fields, b.id_field) for name, b, _ in benchmarks}
    return build_index(items, ngram, cjk_ngram, common)


class Decontaminate(Mapper):
    """Documents holding benchmark items: dropped, cut out, or marked, each hit naming the benchmark and the item."""

    type: Literal["decontaminate"] = "decontaminate"
    benchmarks: dict[str, Benchmark] = Field(
        min_length=1, description="benchmarks by name, each {path: a Parquet, JSON Lines or CSV file or a folder of them, "
        "fields: [the fields looked for, each on its own or [several, joined]], id_field: the items' id (optional)}, "
        "e.g. {gsm8k: {path: evals/gsm8k.parquet, fields: [question, answer]}}"
    )
    ngram: int = Field(13, ge=1, description="window in words for text that is not mostly CJK (13, as GPT-3 and datatrove)")
    cjk_ngram: int = Field(6, ge=1, description="window in characters for benchmark text that is mostly CJK (measured: 6)")
    min_overlap: float = Field(0.8, gt=0, le=1, description="share of a field's n-grams a document must hold to hold the item")
    min_ngrams: int = Field(3, ge=1, description="and at least this many of them (a field of one or two n-grams is too generic alone)")
    common_ngrams: int | None = Field(
        5, ge=2, description="n-grams found in this many benchmark items or more are template wording, not evidence (none: keep all)"
    )
    action: Literal["drop", "remove_span", "annotate"] = Field(
        "drop",
        description="drop: remove the document, reason <name>:<benchmark>; remove_span: cut the matched text out "
        "(a document left with under min_chars_left characters is dropped); annotate: keep every document. "
        "Hits carry <name>_benchmark, <name>_item and <name>_overlap (on removed rows for drop, on every row otherwise)",
    )
    min_chars_left: int = Field(50, ge=0, description="remove_span: drop a document left with fewer characters than this")

    @property
    def columns(self) -> tuple[str, str, str]:
        return f"{self.label}_benchmark", f"{self.label}_item", f"{self.label}_overlap"

    def output_columns(self) -> tuple[str, ...]:
        return self.columns

    def index(self) -> Index:
        """This process's index for these parameters and files (built on first use)."""
        stamped = []
        for name, benchmark in self.benchmarks.items():
            stats = [file_stamp(str(f)) for f in benchmark_files(Path(benchmark.path))]
            stamped.append((name, benchmark, tuple(stats)))
        return load_index(tuple(stamped), self.ngram, self.cjk_ngram, self.common_ngrams)

    def hits(self, df: pl.DataFrame) -> tuple[Index, Hits, pl.DataFrame]:
        """The index, the hits of each row, and the rows with the hit columns (null where none)."""
        index = self.index()
        hits = find(index, df.get_column(TEXT).fill_null(""), self.min_overlap, self.min_ngrams)
        benchmark, item_id, overlap = self.columns
        names = np.array([*index.names, None], dtype=object)[np.r_[index.item_benchmark, -1][hits.item]]  # item -1: None
        marked = df.with_columns(
            pl.Series(benchmark, names.tolist(), dtype=pl.String),
            pl.Series(item_id, np.array([*index.item_ids, None], dtype=object)[hits.item].tolist(), dtype=pl.String),
            pl.Series(overlap, np.where(hits.item >= 0, hits.overlap, np.nan), dtype=pl.Float64).fill_nan(None),
        )
        return index, hits, marked

    def process(self, df: pl.DataFrame) -> StageResult:
        index, hits, marked = self.hits(df)
        benchmark = self.columns[0]
        hit = pl.col(benchmark).is_not_null()
        reason = pl.format("{}:{}", pl.lit(self.label), pl.col(benchmark))
        tallies, examples = self._stats(index, hits, marked)
        if self.action == "annotate":
            result = StageResult(marked, with_reason(df.clear(), None))
        elif self.action == "drop":
            result = StageResult(df.filter(marked.get_column(benchmark).is_null()), marked.filter(hit).with_columns(reason.alias(REASON)))
        else:
            result = self._cut(index, hits, marked, reason)
        result.tallies, result.examples = tallies, examples
        return result

    def _cut(self, index: Index, hits: Hits, marked: pl.DataFrame, reason: pl.Expr) -> StageResult:
        """Each hit document without its matched text (runs closer than a window joined): rows left too short go."""
        rows = np.flatnonzero(hits.item >= 0)
        texts = marked.get_column(TEXT)
        gap = max(self.ngram, self.cjk_ngram)
        cut = [_without(text, matched_spans(index, text, int(hits.item[row]), gap))
               for row, text in zip(rows, texts.gather(rows).to_list())]
        new = texts.clone()
        if cut:
            new.scatter(rows, cut)
        marked = marked.with_columns(new)
        short = pl.col(self.columns[0]).is_not_null() & (pl.col(TEXT).str.strip_chars().str.len_chars() < self.min_chars_left)
        kept = marked.filter(~short)
        counts = kept.get_column(self.columns[0]).drop_nulls().value_counts()
        modified = {f"{self.label}:{name}": count for name, count in counts.iter_rows()}
        return StageResult(kept, marked.filter(short).with_columns(reason.alias(REASON)), modified)

    def _stats(self, index: Index, hits: Hits, marked: pl.DataFrame) -> tuple[dict[str, dict[str, int]], dict[str, list[dict[str, Any]]]]:
        """Documents per benchmark, documents per item (`items:<benchmark>`), and the first few hits with their matched text."""
        benchmark, item_id, overlap = self.columns
        found = marked.filter(pl.col(benchmark).is_not_null())
        tallies: dict[str, dict[str, int]] = {"documents": dict(found.get_column(benchmark).value_counts().iter_rows())}
        for (name,), group in found.group_by(benchmark):
            tallies[f"items:{name}"] = dict(group.get_column(item_id).value_counts().iter_rows())
        rows = np.flatnonzero(hits.item >= 0)
        examples: dict[str, list[dict[str, Any]]] = {}
        for row, (doc, text, name, item, share) in zip(rows, found.select(ID, TEXT, benchmark, item_id, overlap).iter_rows()):
            bucket = examples.setdefault(name, [])
            if len(bucket) < MAX_EXAMPLES:
                spans = matched_spans(index, text, int(hits.item[row]), 0)
                start, end = (spans[0][0], max(e for _, e in spans)) if spans else (0, len(text))
                bucket.append({"id": str(doc), "item": item, "overlap": round(share, 3), "matched": text[start:end][:EXAMPLE_CHARS]})
        return tallies, examples

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """Documents hit per benchmark, the items found most often, and the first hits' matched text (all escaped)."""
        from cleanmix.pipelines import charts

        tallies, examples = stats.get("tallies") or {}, stats.get("examples") or {}
        documents = tallies.get("documents") or {}
        names = [name for name in self.benchmarks if name in documents] + [n for n in documents if n not in self.benchmarks]
        head = f"<h3>{charts.e(self.label)}</h3>"
        if not names:
            return [("contamination", head + f"<p>No document holds an item of {charts.e(', '.join(self.benchmarks))}.</p>")]
        chart = charts.bars(f"{self.label}: documents holding benchmark items", names,
                            [charts.Series("documents", [documents[name] for name in names], charts.REMOVED)],
                            [charts.share(documents[name], stats.get("docs_in", 0)) for name in names])
        items = [[name, item, count] for name in names
                 for item, count in sorted((tallies.get(f"items:{name}") or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ITEMS]]
        found = [[name, x.get("item", ""), x.get("id", ""), x.get("matched", ""), x.get("overlap", "")]
                 for name in names for x in examples.get(name, [])]
        return [("contamination", head + charts.figure(f"{self.label} documents per benchmark", chart)
                 + charts.table(["benchmark", f"item (top {TOP_ITEMS})", "documents"], items, numeric_from=2)
                 + (charts.table(["benchmark", "item", "document", "matched text", "overlap"], found, numeric_from=4) if found else ""))]


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    parts, last = [], 0
    for start, end in spans:
        parts.append(text[last:start])
        last = end
    parts.append(text[last:])
    return "".join(parts)
