"""Histograms that merge by addition: fixed 1-2-5 bins, so batches and workers sum exactly."""

from __future__ import annotations

import math

import polars as pl


def bin_lower(values: pl.Expr) -> pl.Expr:
    """The lower edge of a value's bin in the series 0, …, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, …"""
    v = values.cast(pl.Float64)
    exponent = v.abs().log10().floor()
    scale = pl.lit(10.0).pow(exponent)
    mantissa = v.abs() / scale
    step = pl.when(mantissa >= 5).then(5.0).when(mantissa >= 2).then(2.0).otherwise(1.0)
    lower = (step * scale).round_sig_figs(1) * v.sign()
    return pl.when(v == 0).then(0.0).otherwise(lower)


def merge(into: dict[str, dict[str, int]], other: dict[str, dict[str, int]]) -> None:
    for name, bins in other.items():
        target = into.setdefault(name, {})
        for edge, count in bins.items():
            target[edge] = target.get(edge, 0) + count


PER_DECADE = 20
"""Fine bins per power of ten for the report's kept/removed tallies: each bin ~12% wider than the
last, so a distribution is drawn around its threshold at any scale, and batches still sum exactly."""


def fine_lower(values: pl.Expr) -> pl.Expr:
    """The lower edge of a value's fine bin, ±10^(k/20) to 4 significant digits; 0 stays 0."""
    v = values.cast(pl.Float64)
    step = (v.abs().log10() * PER_DECADE + 1e-9).floor()  # 1e-9: log10(1000) is 2.9999999999999996
    lower = pl.lit(10.0).pow(step / PER_DECADE).round_sig_figs(4) * v.sign()
    return pl.when(v == 0).then(0.0).otherwise(lower)


def fine_step(edge: float) -> int:
    """The k of a fine bin's lower edge ±10^(k/20) (the inverse of `fine_lower`, for drawing)."""
    return round(math.log10(abs(edge)) * PER_DECADE)


def split_histograms(df: pl.DataFrame, metrics: list[str], removed: pl.Expr) -> dict[str, dict[str, int]]:
    """`<metric>:kept` and `<metric>:removed`: fine-bin counts of the rows kept and removed, every
    metric in one group-by; nulls and NaN are left out."""
    if not metrics or df.is_empty():
        return {}
    counts = (
        df.lazy()
        .select(removed.alias("_removed"), *(pl.col(m).cast(pl.Float64) for m in metrics))
        .unpivot(index="_removed", variable_name="metric")
        .filter(pl.col("value").is_finite())
        .group_by("metric", "_removed", fine_lower(pl.col("value")).alias("bin"))
        .len()
        .sort("metric", "_removed", "bin")
        .collect()
    )
    tallies: dict[str, dict[str, int]] = {}
    for metric, gone, edge, n in counts.iter_rows():
        tallies.setdefault(f"{metric}:{'removed' if gone else 'kept'}", {})[f"{edge:g}"] = n
    return tallies


def both_histograms(df: pl.DataFrame, metrics: list[str], removed: pl.Expr) -> dict[str, dict[str, int]]:
    """Per metric, `<metric>`: counts per 1-2-5 bin keyed by the bin's lower edge as text, and, as
    `split_histograms` gives them, `<metric>:kept` / `<metric>:removed` in fine bins (nulls and NaN
    left out). Every metric and both kinds of bin from one group-by, summed here on its few rows:
    a query's fixed cost, not the rows, is most of a small batch's."""
    tallies: dict[str, dict[str, int]] = {metric: {} for metric in metrics}
    if not metrics or df.is_empty():
        return tallies
    value = pl.col("value")
    counts = (
        df.lazy()
        .select(removed.alias("_removed"), *(pl.col(m).cast(pl.Float64) for m in metrics))
        .unpivot(index="_removed", variable_name="metric")
        .filter(value.is_finite())
        .group_by("metric", "_removed", bin_lower(value).alias("bin"), fine_lower(value).alias("fine"))
        .len()
        .collect()
        .rows()
    )
    coarse: dict[tuple[str, float], int] = {}
    fine: dict[tuple[str, bool, float], int] = {}
    for metric, gone, edge, fine_edge, n in counts:
        coarse[metric, edge] = coarse.get((metric, edge), 0) + n
        fine[metric, gone, fine_edge] = fine.get((metric, gone, fine_edge), 0) + n
    for (metric, edge), n in sorted(coarse.items()):
        tallies[metric][f"{edge:g}"] = n
    for (metric, gone, edge), n in sorted(fine.items()):
        tallies.setdefault(f"{metric}:{'removed' if gone else 'kept'}", {})[f"{edge:g}"] = n
    return tallies


def split_counts(df: pl.DataFrame, column: str, removed: pl.Expr) -> dict[str, dict[str, int]]:
    """`<column>:kept` and `<column>:removed`: counts per value of a categorical column (null: "(none)")."""
    if df.is_empty() or column not in df.columns:
        return {}
    counts = (df.select(removed.alias("_removed"), pl.col(column).cast(pl.String).fill_null("(none)").alias("value"))
              .group_by("_removed", "value").len().sort("_removed", "value"))
    tallies: dict[str, dict[str, int]] = {}
    for gone, value, n in counts.iter_rows():
        tallies.setdefault(f"{column}:{'removed' if gone else 'kept'}", {})[value] = n
    return tallies
