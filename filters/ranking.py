"""A filter over one score that can also keep the best fraction of the whole corpus (`keep_top`).

Scoring separate from selecting: a `RankedFilter` measures one score column and has threshold
rules like any filter; with `keep_top` it becomes a global stage. Its scan scores every document
once (in the pass before) and keeps `(ORDER, score, group)`; decide stores the scores per input
unit for apply and finds, per group (all documents, or each language), the cut: the k-th best
(score, input order) with k = round(keep_top × scored documents of the group), by a radix
selection over the 128-bit key, 16 bits a round, each round counting one bucket's rows of every
scan in parallel, until a bucket is small enough to sort (memory: one unit's scores and one
bucket). Apply reads the scores back and removes what ranks below the cut: exactly k documents
are kept per group, ties going to the earlier document in input order, so the kept set is the
same whatever the number of workers and after a resume.
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
from pydantic import Field, PrivateAttr

from cleanmix.pipelines.histogram import split_histograms
from cleanmix.pipelines.order import ORDER, UnitDecisions
from cleanmix.pipelines.stage import REASON, Context, Filter, Frame, GlobalStage, Rule, StageResult, _checked, to_polars

RADIX_BITS = 16
COLLECT_ROWS = 2_000_000
"""Rows in one bucket of the radix selection that decide sorts in memory instead of refining further."""
CUTS_FILE = "cuts.json"
ALL = "all"
"""The group of every document when the stage ranks them together."""
GROUP = "_cm_group"


class RankedFilter(Filter, GlobalStage):
    """One score per document; thresholds, or `keep_top` of the corpus (or of each group) by score."""

    keep_top: float | None = Field(None, gt=0, le=1, description="keep this best fraction of the whole corpus by score "
                                   "(a global stage: the cut is decided over every document)")
    higher_is_better: ClassVar[bool] = True

    _cuts: dict[str, tuple[float, int]] | None = PrivateAttr(None)

    @property
    def score(self) -> str:
        raise NotImplementedError

    def group(self) -> pl.Expr | None:
        """What documents are ranked within (None: all together), computed by `metrics`' columns."""
        return None

    def threshold_rules(self) -> list[Rule]:
        return []

    @cached_property
    def metric_types(self) -> dict[str, pl.DataType]:
        """One measured column, the score (known without measuring: the group may be another stage's column)."""
        return {self.score: pl.Float64()}

    @property
    def keeps(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.score,)

    @property
    def whole_corpus(self) -> bool:
        return self.keep_top is not None

    def rules(self) -> list[Rule]:
        rules = self.threshold_rules()
        if self._cuts is not None:
            score, order, group = pl.col(self.score), pl.col(ORDER), self.group()
            fails: pl.Expr = pl.lit(False)
            for name, (cut, last) in self._cuts.items():
                worse = (score < cut) if self.higher_is_better else (score > cut)
                below = worse | ((score == cut) & (order > last))
                fails = below if group is None else pl.when(group == name).then(below).otherwise(fails)
            shown = next(iter(self._cuts.values()))[0] if len(self._cuts) == 1 else None
            rules.append(Rule(f"not_top[{self.keep_top:g}]", fails, self.score, shown))
        return rules

    def histograms(self, measured: pl.DataFrame) -> dict[str, dict[str, int]]:
        """The scores, kept and removed, whatever the rules."""
        return split_histograms(measured, [self.score], pl.col(REASON).is_not_null())

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        from cleanmix.pipelines import charts

        cuts = [(rule.name, rule.threshold) for rule in self.threshold_rules() if rule.threshold is not None]
        groups = (stats.get("details") or {}).get("groups") or {}
        cuts += [(f"top {self.keep_top:g}" + ("" if name == ALL else f" {name}"), group["cut_score"])
                 for name, group in groups.items() if group.get("cut_score") is not None]
        sections = [("distributions", charts.distributions(self.label, stats.get("tallies") or {}, {self.score: cuts}))]
        return sections + (GlobalStage.report_sections(self, stats) if self.whole_corpus else [])

    # running ----------------------------------------------------------------------------------

    def process(self, df: pl.DataFrame) -> StageResult:
        return GlobalStage.process(self, df) if self.whole_corpus else Filter.process(self, df)

    def annotate(self, data: Frame) -> Frame:
        if not self.whole_corpus:
            return Filter.annotate(self, data)
        result = self.model_copy(update={"mode": "annotate"}).process(_checked(to_polars(data)))
        return result.kept.rename({f"{self.label}_reason": REASON})

    def scan(self, df: pl.DataFrame) -> pl.DataFrame:
        group = self.group()
        measured = self.with_metrics(df)
        return measured.select(ORDER, self.score, (pl.lit(ALL) if group is None else group).cast(pl.String).alias(GROUP)) \
            .drop_nulls([self.score, GROUP])

    def decide(self, scans: list[Path], ctx: Context) -> dict[str, Any]:
        ctx.map(_store_scores, [(path, f"s{i:06d}", ctx.decisions, self.score) for i, path in enumerate(scans)])
        counts: dict[str, int] = {}
        for found in ctx.map(_count_groups, scans):
            for name, n in found.items():
                counts[name] = counts.get(name, 0) + n
        groups: dict[str, dict[str, Any]] = {}
        for name in sorted(counts):
            keep = math.floor((self.keep_top or 1.0) * counts[name] + 0.5)
            cut = _select(scans, keep, ctx, name, self.higher_is_better) if keep else None
            groups[name] = {"scored": counts[name], "keep": keep, "cut_score": cut[0] if cut else None,
                            "cut_order": cut[1] if cut else None}
        (ctx.workdir / CUTS_FILE).write_text(json.dumps(groups))
        return {"groups": groups}

    def apply(self, df: pl.DataFrame, ctx: Context) -> StageResult:
        stored = ctx.decisions.load(df.get_column(ORDER))
        scores = stored.select(ORDER, self.score) if stored is not None else \
            pl.DataFrame(schema={ORDER: pl.UInt64, self.score: pl.Float64})
        measured = df.drop(self.score, strict=False).join(scores, on=ORDER, how="left", maintain_order="left")
        decided = self.model_copy()
        worst = math.inf if self.higher_is_better else -math.inf  # a group that keeps none
        decided._cuts = {name: (g["cut_score"], g["cut_order"]) if g["cut_score"] is not None else (worst, 0)
                         for name, g in json.loads((ctx.workdir / CUTS_FILE).read_text()).items()}
        return decided.select(df, measured)


def _store_scores(job: tuple[Path, str, UnitDecisions, str]) -> None:
    path, name, decisions, score = job
    decisions.write(pl.read_parquet(path).select(ORDER, score), name)


def _count_groups(path: Path) -> dict[str, int]:
    counts = pl.read_parquet(path, columns=[GROUP]).group_by(GROUP).len()
    return dict(counts.iter_rows())


def _keys(path: Path, group: str, higher_is_better: bool) -> np.ndarray:
    """Each row of `group`: its rank key, two uint64 words: the score's bits (ordered as the scores,
    which are ≥ 0; inverted when lower is better) and the inverted `ORDER` (the earlier document
    ranks higher among equal scores). A higher key ranks higher."""
    df = pl.read_parquet(path).filter(pl.col(GROUP) == group)
    bits = df.get_column(df.columns[1]).cast(pl.Float64).to_numpy().view(np.uint64)
    inverted = ~df.get_column(ORDER).to_numpy().astype(np.uint64)
    return np.stack([bits if higher_is_better else ~bits, inverted], axis=1)


def _digit(keys: np.ndarray, i: int) -> np.ndarray:
    word, shift = divmod(i, 64 // RADIX_BITS)
    return ((keys[:, word] >> np.uint64(64 - RADIX_BITS * (shift + 1))) & np.uint64((1 << RADIX_BITS) - 1)).astype(np.int64)


def _matching(job: tuple[Path, str, bool, tuple[int, ...]]) -> np.ndarray:
    """Rows whose first `len(prefix)` 16-bit digits (of the 128-bit key) equal `prefix`."""
    path, group, higher_is_better, prefix = job
    keys = _keys(path, group, higher_is_better)
    mask = np.ones(len(keys), dtype=bool)
    for i, digit in enumerate(prefix):
        mask &= _digit(keys, i) == digit
    return keys[mask]


def _bucket_counts(job: tuple[Path, str, bool, tuple[int, ...]]) -> np.ndarray:
    return np.bincount(_digit(_matching(job), len(job[3])), minlength=1 << RADIX_BITS)


def _select(scans: list[Path], keep: int, ctx: Context, group: str = ALL, higher_is_better: bool = True) -> tuple[float, int]:
    """The `keep`-th best (score, ORDER) of `group` over all scans."""
    prefix: tuple[int, ...] = ()
    rank = keep  # 1-based rank of the wanted key among the rows matching `prefix`
    while True:
        counts = np.sum(ctx.map(_bucket_counts, [(path, group, higher_is_better, prefix) for path in scans]), axis=0)
        above = np.cumsum(counts[::-1])  # rows in this bucket or a higher one, from the top bucket down
        top = int(np.searchsorted(above, rank))
        digit = len(counts) - 1 - top
        rank -= int(above[top - 1]) if top else 0
        prefix = (*prefix, digit)
        if counts[digit] <= COLLECT_ROWS or len(prefix) == 128 // RADIX_BITS:
            break
    rows = np.concatenate(ctx.map(_matching, [(path, group, higher_is_better, prefix) for path in scans]))
    best = rows[np.lexsort((rows[:, 1], rows[:, 0]))[::-1]][rank - 1]
    bits = best[0] if higher_is_better else ~best[0]
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0]), int(~np.uint64(best[1]))
