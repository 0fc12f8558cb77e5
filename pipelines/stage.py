"""The stage protocol: every cleaning step is a typed, validated model that runs on a batch.

A stage is configured by its fields (pydantic validates them before any work starts) and works on
a `polars.DataFrame` holding at least `id` and `text`. The runner fuses document stages into one
pass per shard; global stages (dedup, mix) see the whole corpus through scan → decide → apply.
Every stage also runs alone on a DataFrame or an Arrow table: `.filter(df)`, `.annotate(df)`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cleanmix.pipelines.histogram import both_histograms
from cleanmix.pipelines.order import ORDER, UnitDecisions

TEXT = "text"
ID = "id"
SOURCE = "source"
REASON = "reason"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A stage name: one safe part of a file path."""

Frame = pl.DataFrame | pa.Table


def to_polars(data: Frame) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pa.Table):
        return pl.from_arrow(data)  # type: ignore[return-value]
    raise TypeError(f"expected a polars DataFrame or a pyarrow Table, got {type(data).__name__}")


def like(original: Frame, df: pl.DataFrame) -> Frame:
    """Return `df` in the same kind of frame the caller passed in."""
    return df.to_arrow() if isinstance(original, pa.Table) else df


def with_reason(df: pl.DataFrame, reason: str | pl.Expr | None) -> pl.DataFrame:
    value = pl.lit(reason, pl.String) if reason is None or isinstance(reason, str) else reason
    return df.with_columns(value.cast(pl.String).alias(REASON))


@dataclass
class StageResult:
    """What a stage did to one batch: the rows it kept, the rows it removed (with `reason`)."""

    kept: pl.DataFrame
    rejected: pl.DataFrame
    modified: dict[str, int] = field(default_factory=dict)
    added: int = 0
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)
    """Counts summed over all batches into `stats/<stage>.json`, e.g. a histogram per measured value."""
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """A few illustrations per key (never raw personal data), the first ones in input order kept."""


@dataclass
class Context:
    """What a global stage may use besides its own batch: a folder for its passes, the pool.

    `workdir` is the stage's own, fresh for each attempt at `decide`; the runner records when
    `decide` has finished, so a stage needs no resume logic of its own."""

    workdir: Path
    workers: int = 1
    seed: int = 0
    map: Callable[[Callable[[Any], Any], Iterable[Any]], list[Any]] = field(
        default=lambda fn, items: [fn(item) for item in items], repr=False
    )
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"workdir": self.workdir, "workers": self.workers, "seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    @property
    def decisions(self) -> UnitDecisions:
        """Where `decide` writes its per-unit decisions and `apply` reads them (cached per worker)."""
        folder = self.workdir / "decisions"
        return UnitDecisions(folder, self.cache.setdefault(f"decisions:{folder}", {}))


@dataclass(frozen=True)
class SharedColumn:
    """A per-batch column that several stages read (the token lists of the quality filters).

    A runner computes it once per batch for the stages that declare it in `shared`, and drops it
    before rows are written; a stage run on its own computes it itself.
    """

    name: str
    compute: Callable[[pl.Expr], pl.Expr]
    """From the text column to the column's values."""

    def of(self, df: pl.DataFrame) -> pl.Series:
        if self.name in df.columns:
            return df.get_column(self.name)
        return df.select(self.compute(pl.col(TEXT)).alias(self.name)).to_series()


class Stage(BaseModel):
    """Base of all stages. Subclasses declare `type: Literal["..."] = "..."` and their parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    type: str
    name: str | None = Field(None, description="label in stats and reasons; distinguishes two stages of one type")

    shared: ClassVar[tuple[SharedColumn, ...]] = ()
    """Per-batch columns this stage reads that other stages may read too."""
    makes_text: ClassVar[bool] = False
    """The stage writes `text` from other columns (HTML extraction): first in a pipeline, it lets
    input files have no text column."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str | None) -> str | None:
        """The label names files and folders of the output (stats, rejected, scratch): one safe path part."""
        if name is not None and not SAFE_NAME.fullmatch(name):
            raise ValueError(
                "a stage name names files in the output folder: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit (no '/', no '..', no spaces)"
            )
        return name

    @property
    def label(self) -> str:
        return self.name or self.type

    def process(self, df: pl.DataFrame) -> StageResult:
        raise NotImplementedError

    def input_columns(self) -> tuple[str, ...]:
        """Input columns besides `id` and `text` this stage reads (`source` included): checked before a run."""
        return ()

    def output_columns(self) -> tuple[str, ...]:
        """Columns this stage adds to the rows it keeps or removes (besides `reason`): an input
        column of one of these names would be overwritten, so a run refuses it before it starts."""
        return ()

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """What this stage adds to report.html: (section, HTML fragment) pairs, drawn from `stats`,
        what the run recorded in stats/<label>.json (`details`, `tallies`, `examples`, `samples`),
        never from the data, so the report costs the same at any scale. A section is one of the
        report's (distributions, languages, changes, global) or a new one, titled by its name.
        Draw with `cleanmix.pipelines.charts`, which escapes every string. Default: nothing."""
        return []

    def filter(self, data: Frame) -> Frame:
        """The rows this stage keeps (changed as the stage changes them)."""
        return like(data, self.process(_checked(to_polars(data))).kept)

    def annotate(self, data: Frame) -> Frame:
        """Every row, in input order, plus `reason` (null where the row is kept)."""
        df = _checked(to_polars(data)).with_row_index("_cm_row")
        result = self.process(df)
        rows = pl.concat([with_reason(result.kept, None), result.rejected], how="diagonal_relaxed")
        return like(data, rows.sort("_cm_row").drop("_cm_row"))


def file_stamp(path: str) -> tuple[str, int, int]:
    """A file's path, size and modification time: the key of a per-process cache built from it, so a
    changed file is read again."""
    stat = Path(path).stat()
    return path, stat.st_size, stat.st_mtime_ns


def _checked(df: pl.DataFrame) -> pl.DataFrame:
    """A frame a stage can read: a `text` column of strings. An all-null column without a type
    (`pl.Null`, what an empty or all-None frame gets) is taken as strings."""
    if TEXT not in df.columns:
        raise ValueError(f"the frame has no '{TEXT}' column (columns: {', '.join(df.columns)})")
    dtype = df.schema[TEXT]
    if dtype == pl.Null:
        return df.with_columns(pl.col(TEXT).cast(pl.String))
    if dtype != pl.String:
        raise TypeError(f"the '{TEXT}' column holds {dtype}, expected strings (pl.String): cast it, e.g. pl.col('{TEXT}').cast(pl.String)")
    return df


ROW = "_cm_row"
"""A batch's row numbers while a runner's stages work on it: where the held shared columns' rows are found again."""


class SharedColumns:
    """The shared columns of one batch on its way through a run of stages. Each is computed once, at its first
    reader when a later stage reads it too (unless the text changes in between: a `Mapper`), and held here at the
    height it was computed at; a stage gets it for the rows it sees, and does not pass it on (`Filter.select`
    drops it). The token lists are 16 bytes a token: carried through every stage's filter, kept and removed
    rows, they cost about as much as a stage."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = stages
        self.held: dict[str, tuple[pl.Series, pl.Series]] = {}
        """name -> (the row numbers it was computed for, its values)"""

    def attach(self, df: pl.DataFrame, i: int) -> pl.DataFrame:
        """`df` as stage `i` reads it: with its shared columns that are held or that a later stage reads too."""
        later: set[str] = set()
        for stage in self.stages[i + 1 :]:
            later.update(column.name for column in stage.shared)
            if isinstance(stage, Mapper):
                break
        wanted = [column for column in self.stages[i].shared if column.name in self.held or column.name in later]
        if not wanted:
            return df
        if ROW not in df.columns or not df[ROW].is_sorted():  # (numbered afresh where a stage reordered rows)
            df = df.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW))
            self.held.clear()
        columns = []
        for column in wanted:
            if column.name in self.held:
                rows, values = self.held[column.name]
                columns.append(values if rows.equals(df[ROW]) else values.gather(rows.search_sorted(df[ROW])))
            else:
                values = df.select(column.compute(pl.col(TEXT)).alias(column.name)).to_series()
                self.held[column.name] = (df[ROW], values)
                columns.append(values)
        return df.with_columns(columns)


def without_shared(df: pl.DataFrame, stages: Sequence[Stage]) -> pl.DataFrame:
    """`df` without what a runner adds while stages work: shared columns, row numbers."""
    return df.drop([ROW, *(c.name for stage in stages for c in stage.shared)], strict=False)


class DocumentStage(Stage):
    """A stage that decides each document on its own: fused with its neighbours, one pass per shard."""


@dataclass(frozen=True)
class Rule:
    """One published rule: `fails` is True where a document breaks it.

    `metric` and `threshold` name what the rule compares, so `clean explain` can show it.
    """

    name: str
    fails: pl.Expr
    metric: str | None = None
    threshold: float | None = None

    @classmethod
    def above(cls, name: str, metric: str, limit: float | None, per_document: pl.Expr | None = None) -> Rule:
        """Fails where the `metric` column exceeds `limit` (or `per_document`, a limit that depends
        on the document, such as the CJK thresholds; `limit` is then the one shown)."""
        return cls(name, pl.col(metric) > (limit if per_document is None else per_document), metric, limit)

    @classmethod
    def below(cls, name: str, metric: str, limit: float | None, per_document: pl.Expr | None = None) -> Rule:
        """Fails where the `metric` column is under `limit` (or `per_document`)."""
        return cls(name, pl.col(metric) < (limit if per_document is None else per_document), metric, limit)


class Filter(DocumentStage):
    """Scoring separate from selecting: `metrics` adds columns, `rules` turn them into reasons."""

    mode: Literal["filter", "annotate"] = Field(
        "filter", description="filter: drop with a reason; annotate: keep all, add measured columns"
    )
    keeps: ClassVar[tuple[str, ...]] = ()
    """Measured columns that stay on kept documents in filter mode (e.g. `language`)."""

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        """`df` plus the measured columns the rules read (prefixed with the stage type): the hook a filter implements."""
        return df

    def with_metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        """`df` plus the measured columns. `metrics` sees only the text (and the columns the stage
        reads), so no temporary column of a stage meets one of the caller's; a measured column
        replaces an input column of its name (a second language stage measures afresh)."""
        reads = list(dict.fromkeys([TEXT, *self.input_columns(), *(c.name for c in self.shared if c.name in df.columns)]))
        new = self.metrics(df.select(reads)).drop(reads)
        return df.drop(new.columns, strict=False).hstack(new)

    def output_columns(self) -> tuple[str, ...]:
        return (*self.metric_types, *([f"{self.label}_reason"] if self.mode == "annotate" else []))

    @cached_property
    def metric_types(self) -> dict[str, pl.DataType]:
        """The measured columns and their types (measured once, on an empty frame). An input column
        of one of these names and of the same kind (numbers, strings or booleans) is taken as an
        earlier measurement (a cleanmix output run again) and replaced by this stage's; one of
        another kind is refused."""
        return dict(self.with_metrics(pl.DataFrame(schema={TEXT: pl.String})).drop(TEXT).schema)

    def rules(self) -> list[Rule]:
        raise NotImplementedError

    def reason_expr(self) -> pl.Expr:
        """The first rule a document breaks, as `label:rule`; null when it breaks none."""
        checks = [pl.when(pl.col(TEXT).is_null()).then(pl.lit(f"{self.label}:no_text"))]
        checks += [pl.when(rule.fails.fill_null(False)).then(pl.lit(f"{self.label}:{rule.name}")) for rule in self.rules()]
        return pl.coalesce(checks)

    def process(self, df: pl.DataFrame) -> StageResult:
        return self.select(df, self.with_metrics(df))

    def select(self, df: pl.DataFrame, measured: pl.DataFrame) -> StageResult:
        """Keep or drop by the rules, from already measured rows; histograms of every metric. The shared columns
        this stage read are not passed on (see `SharedColumns`)."""
        shared = [c.name for c in self.shared]
        measured = measured.drop(shared, strict=False).with_columns(self.reason_expr().alias(REASON))
        tallies = self.histograms(measured)
        if self.mode == "annotate":
            kept = measured.rename({REASON: f"{self.label}_reason"})
            return StageResult(kept, with_reason(df.clear(), None), tallies=tallies)
        removed = pl.col(REASON).is_not_null()
        columns = [*(c for c in df.columns if c not in shared), *(c for c in self.keeps if c not in df.columns)]
        return StageResult(measured.filter(~removed).select(columns), measured.filter(removed), tallies=tallies)

    def histograms(self, measured: pl.DataFrame) -> dict[str, dict[str, int]]:
        """Per numeric metric: `<metric>` (1-2-5 bins, every row) and, for the report's distributions
        around the thresholds, `<metric>:kept` / `<metric>:removed` in fine bins (rows the rules
        pass / fail: removed in filter mode, flagged in annotate mode)."""
        metrics = dict.fromkeys(rule.metric for rule in self.rules() if rule.metric in measured.columns)
        numeric = [m for m in metrics if measured.schema[m].is_numeric() or measured.schema[m] == pl.Boolean]
        return both_histograms(measured, numeric, pl.col(REASON).is_not_null())

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """Each measured quantity, kept vs removed around its thresholds, from the recorded tallies."""
        from cleanmix.pipelines import charts

        rules = [rule for rule in self.rules() if rule.metric]
        thresholds = {rule.metric: [(r.name, r.threshold) for r in rules if r.metric == rule.metric and r.threshold is not None]
                      for rule in rules}
        return [("distributions", charts.distributions(self.label, stats.get("tallies") or {}, thresholds))]

    def annotate(self, data: Frame) -> Frame:
        """Every row, plus the measured columns and `reason` (null where the row passes)."""
        df = _checked(to_polars(data))
        return like(data, self.with_metrics(df).with_columns(self.reason_expr().alias(REASON)))


class Mapper(DocumentStage):
    """A stage that changes documents rather than removing them."""

    def transform(self, df: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
        """The changed rows, and how many documents each kind of change touched."""
        raise NotImplementedError

    def process(self, df: pl.DataFrame) -> StageResult:
        changed, modified = self.transform(df)
        return StageResult(changed, with_reason(df.clear(), None), {k: v for k, v in modified.items() if v})


def is_global(stage: Stage) -> bool:
    """A stage that runs as scan → decide → apply over the whole corpus, splitting the passes."""
    return isinstance(stage, GlobalStage) and stage.whole_corpus


class GlobalStage(Stage):
    """A stage that needs the whole corpus (dedup, mix), run as passes over all shards.

    1. `scan` runs on every batch of every shard (fused with the pass before it) and returns a
       small summary frame, written by the engine to Parquet files.
    2. `decide` runs once with the paths of all those files; it writes its decisions under
       `ctx.workdir` (keep memory bounded: partition on disk, use `ctx.map` for parallel work)
       and returns details for `stats/<stage>.json`.
    3. `apply` runs on every batch again (fused with the pass after it) and uses the decisions.
    Batches carry the `ORDER` column: a row's position in the whole input. The output is written
    in `ORDER` order; a stage that rewrites `ORDER` to place rows elsewhere (mix interleaves
    sources) sets `reorders = True`, and the engine then sorts the final rows by it.
    """

    reorders: ClassVar[bool] = False

    @property
    def whole_corpus(self) -> bool:
        """Whether this configuration needs the whole corpus; a stage that does only for some
        settings (a classifier's `keep_top`, not its `min_score`) otherwise runs as a document stage."""
        return True

    def scan(self, df: pl.DataFrame) -> pl.DataFrame | None:
        raise NotImplementedError

    def decide(self, scans: list[Path], ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, df: pl.DataFrame, ctx: Context) -> StageResult:
        raise NotImplementedError

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """Whatever `decide` returned (`details`), drawn generically: scalars tabled, numbers as bars."""
        from cleanmix.pipelines import charts

        details = stats.get("details")
        return [("global", charts.details(self.label, details))] if isinstance(details, dict) and details else []

    def process(self, df: pl.DataFrame) -> StageResult:
        """The whole-corpus run on one in-memory frame: scan, decide and apply in a scratch folder."""
        if ORDER not in df.columns:
            df = df.with_row_index(ORDER).with_columns(pl.col(ORDER).cast(pl.UInt64))
            added_order = True
        else:
            added_order = False
        with tempfile.TemporaryDirectory(prefix="cleanmix-") as tmp:
            ctx = Context(workdir=Path(tmp))
            scans = []
            summary = self.scan(df)
            if summary is not None:
                scans.append(Path(tmp) / "scan-00000.parquet")
                summary.write_parquet(scans[0])
            self.decide(scans, ctx)
            result = self.apply(df, ctx)
        if self.reorders:  # as the engine writes them: in their new order
            result.kept = result.kept.sort(ORDER)
        if added_order:
            result.kept = result.kept.drop(ORDER)
            result.rejected = result.rejected.drop(ORDER)
        return result
