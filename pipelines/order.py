"""Where a row came from, and what global stages decided about it.

Every row carries `ORDER`: its unit of input in the high bits, its row within the unit below.
Sorting by it gives the input order (dedup's `keep: first`, the order of the output); its unit
tells `apply` which decisions to load, since decisions are stored per input unit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

ORDER = "_cm_order"
ORDER_SHIFT = 40
"""Rows per unit are < 2**40; units < 2**24."""
CACHED_UNITS = 8
"""Input units whose decisions one worker keeps loaded (a batch rarely spans more than two)."""


def order_of(unit: int, first_row: int, rows: int) -> pl.Expr:
    """The ORDER keys of `rows` consecutive rows of a unit, starting at `first_row` within it."""
    return pl.int_range(first_row, first_row + rows, dtype=pl.UInt64) + pl.lit(unit << ORDER_SHIFT, pl.UInt64)


def unit_of(order: pl.Expr | pl.Series) -> pl.Expr | pl.Series:
    """The input unit a row comes from."""
    return order.cast(pl.UInt64) // (1 << ORDER_SHIFT)


class UnitDecisions:
    """A global stage's decisions about rows, split by the rows' input unit.

    `decide` writes them (possibly from many parallel steps, each under its own `name`); `apply`
    loads only the units of its batch, so memory is bounded by a few units, not the corpus.
    """

    def __init__(self, folder: Path, cache: dict[int, pl.DataFrame | None] | None = None) -> None:
        self.folder = folder
        self.cache: dict[int, pl.DataFrame | None] = {} if cache is None else cache

    def write(self, decisions: pl.DataFrame, name: str, sort_by: tuple[str, ...] = (ORDER,)) -> None:
        for unit, rows in by_unit(decisions, sort_by):
            self.write_unit(unit, rows, name)

    def write_unit(self, unit: int, rows: pl.DataFrame, name: str) -> None:
        """One unit's decisions (`by_unit` gives them)."""
        from cleanmix.pipelines.shards import write_parquet

        write_parquet(rows, self.folder / f"u{unit:08d}" / f"{name}.parquet", dictionary=False)

    def load(self, orders: pl.Series) -> pl.DataFrame | None:
        """The decisions about the units of `orders`; None where no decision names any of them."""
        frames = []
        for unit in unit_of(orders).unique().sort().to_list():
            if unit not in self.cache:
                if len(self.cache) >= CACHED_UNITS:
                    self.cache.pop(next(iter(self.cache)))
                files = sorted((self.folder / f"u{unit:08d}").glob("*.parquet"))
                self.cache[unit] = pl.read_parquet(files) if files else None
            if (frame := self.cache[unit]) is not None:
                frames.append(frame)
        return pl.concat(frames) if frames else None


def by_unit(rows: pl.DataFrame, sort_by: tuple[str, ...] = (ORDER,)) -> list[tuple[int, pl.DataFrame]]:
    """Rows sorted (ORDER first), then cut into one slice per input unit: (unit, its rows)."""
    ordered = rows.sort(list(sort_by))
    units = unit_of(ordered.get_column(ORDER)).to_numpy()
    starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]]) if units.size else np.zeros(0, np.int64)
    return [(int(units[start]), ordered[int(start) : int(end)]) for start, end in zip(starts, [*starts[1:], units.size])]
