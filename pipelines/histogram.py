"""Histograms that merge by addition: fixed 1-2-5 bins, so batches and workers sum exactly."""

from __future__ import annotations

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


def histogram(values: pl.Series) -> dict[str, int]:
    """Counts per bin, keyed by the bin's lower edge as text; nulls and NaN are left out."""
    clean = values.drop_nulls()
    if clean.dtype.is_float():
        clean = clean.filter(clean.is_finite())
    if clean.is_empty():
        return {}
    counts = pl.select(bin_lower(pl.lit(clean)).alias("bin")).group_by("bin").len().sort("bin")
    return {f"{edge:g}": n for edge, n in counts.iter_rows()}


def merge(into: dict[str, dict[str, int]], other: dict[str, dict[str, int]]) -> None:
    for name, bins in other.items():
        target = into.setdefault(name, {})
        for edge, count in bins.items():
            target[edge] = target.get(edge, 0) + count
