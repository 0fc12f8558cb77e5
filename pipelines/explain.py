"""`clean explain`: why a pipeline keeps or removes a document — per rule, the measured value,
the threshold and the verdict. This is how users tune thresholds.

The document stages run exactly as in `clean run` (the same `process`; for a filter, the
`with_metrics` and `select` it is made of, measuring once for both the verdict and the rules, so the
verdict is the run's), and every filter's rules are also evaluated one by one, so a user sees all the rules a
document breaks, not only the first. Global stages (dedup, mix) need the whole corpus: they are
listed as skipped, and the stages after them are still evaluated.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from cleanmix.pipelines.config import PipelineConfig
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.shards import plan_input, read_unit
from cleanmix.pipelines.stage import ID, REASON, TEXT, Filter, Mapper, is_global


def explain(config: PipelineConfig, docs: pl.DataFrame) -> list[dict[str, Any]]:
    """One explanation per row of `docs` (canonical `id`/`text` columns), in row order.

    Each is {id, verdict: kept|removed, reason, stages: [...]}; a stage entry has its outcome
    (passed, removed, would_remove, changed, unchanged, skipped), for a filter its rules as
    {rule, metric, value, threshold, fails}, and `not_reached` where a run removed the document
    at an earlier stage (the stage is still evaluated, for tuning).
    """
    df = docs.with_row_index("_cm_row")
    if ID not in df.columns:
        df = df.with_columns(pl.col("_cm_row").cast(pl.String).alias(ID))
    rows = df.height
    entries: list[list[dict[str, Any]]] = [[] for _ in range(rows)]
    reason: list[str | None] = [None] * rows
    for stage in config.stages:
        if is_global(stage):
            for entry in entries:
                entry.append({"name": stage.label, "type": stage.type, "outcome": "skipped",
                              "note": "global stage: needs the whole corpus, not run on one document"})
            continue
        if isinstance(stage, Filter):  # measured once: `Filter.process` is `select(df, with_metrics(df))`
            measured = stage.with_metrics(df)
            rules, result = _rules(stage, df, measured), stage.select(df, measured)
        else:
            rules, result = [[] for _ in range(rows)], stage.process(df)
        removed = dict(zip(result.rejected.get_column("_cm_row").to_list(), result.rejected.get_column(REASON).to_list()))
        changed = _changed(df, result.kept) if isinstance(stage, Mapper) else set()
        annotated = f"{stage.label}_reason"
        would = dict(zip(result.kept.get_column("_cm_row").to_list(), result.kept.get_column(annotated).to_list())) \
            if annotated in result.kept.columns else {}
        for row in range(rows):
            entry: dict[str, Any] = {"name": stage.label, "type": stage.type, "rules": rules[row]}
            if row in removed:
                entry.update(outcome="removed", reason=removed[row])
            elif would.get(row):
                entry.update(outcome="would_remove", reason=would[row], note="mode: annotate keeps it")
            elif isinstance(stage, Mapper):
                entry.update(outcome="changed" if row in changed else "unchanged",
                             changes=stage.process(df.slice(row, 1)).modified if row in changed else {})
            else:
                entry["outcome"] = "passed"
            if reason[row] is not None:
                entry["not_reached"] = f"a run removed it earlier ({reason[row]}); shown for reference"
            elif row in removed:
                reason[row] = removed[row]
            entries[row].append(entry)
        df = _advance(df, result.kept, removed)
    ids = df.get_column(ID).cast(pl.String).to_list()
    return [{"id": ids[row], "verdict": "removed" if reason[row] else "kept", "reason": reason[row], "stages": entries[row]}
            for row in range(rows)]


def _rules(stage: Filter, df: pl.DataFrame, measured: pl.DataFrame) -> list[list[dict[str, Any]]]:
    """Every rule of a filter on every row (`measured`: `stage.with_metrics(df)`): measured value, threshold, and whether it fails."""
    rules = stage.rules()
    checks = measured.select(
        *[rule.fails.fill_null(False).alias(f"_fails{i}") for i, rule in enumerate(rules)],
        *[pl.col(rule.metric).alias(f"_value{i}") for i, rule in enumerate(rules) if rule.metric in measured.columns],
    )
    text_null = df.get_column(TEXT).is_null().to_list()
    out: list[list[dict[str, Any]]] = []
    for row, values in enumerate(checks.iter_rows(named=True)):
        items = [{"rule": "no_text", "metric": TEXT, "value": None, "threshold": None, "fails": True}] if text_null[row] else []
        items += [{"rule": rule.name, "metric": rule.metric, "value": _plain(values.get(f"_value{i}")),
                   "threshold": rule.threshold, "fails": bool(values[f"_fails{i}"])} for i, rule in enumerate(rules)]
        out.append(items)
    return out


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _changed(before: pl.DataFrame, after: pl.DataFrame) -> set[int]:
    joined = before.select("_cm_row", TEXT).join(after.select("_cm_row", pl.col(TEXT).alias("_after")), on="_cm_row")
    return set(joined.filter(pl.col(TEXT).ne_missing(pl.col("_after"))).get_column("_cm_row").to_list())


def _advance(df: pl.DataFrame, kept: pl.DataFrame, removed: dict[int, str]) -> pl.DataFrame:
    """The next stage sees changed text for kept rows; removed rows go on unchanged, for reference."""
    rest = df.filter(pl.col("_cm_row").is_in(list(removed)))
    return pl.concat([kept.select(df.columns), rest], how="vertical_relaxed").sort("_cm_row")


def find_document(config: PipelineConfig, doc_id: str, location: str | None) -> pl.DataFrame:
    """The document with `doc_id` in the input (or another folder), read as `clean run` reads it."""
    source = config.input.model_copy(update={"path": location}) if location else config.input
    for unit in plan_input(source).units:
        for batch in read_unit(unit, source):
            hit = batch.filter(pl.col(ID).cast(pl.String) == doc_id)
            if hit.height:
                return hit.head(1)
    raise UserError(f"no document with id '{doc_id}' in {source.path} (column '{source.id_column}').")
