"""Duplicate clusters: union-find, which document each cluster keeps, and the filter pass.

Shared by `exact_dedup` and `minhash_dedup`: they differ in how they find duplicate groups;
everything after (keep policy, decisions on disk, resume, the `apply` join) is here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from cleanmix.dedup.partitions import KEY, fresh_dir
from cleanmix.pipelines.order import UnitDecisions
from cleanmix.pipelines.stage import ID, ORDER, SOURCE, TEXT, Context, GlobalStage, StageResult, with_reason

DOC_ID = "_cm_id"
WEIGHT = "_cm_weight"
GROUP = "_cm_group"
CLUSTER_ID = "dup_cluster_id"
CLUSTER_SIZE = "dup_cluster_size"
DUPLICATE_OF = "duplicate_of"
REMOVED = "_cm_removed"


def file_components(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Union-find over the edges of Parquet files (columns `a`, `b`), vectorised: (nodes, root) where
    root[i] is the smallest node of nodes[i]'s component. One file in memory at a time: memory is 16
    bytes per node in some edge plus one file, never every pair."""
    nodes = edge_nodes(files)
    parent = np.arange(nodes.size)
    for path in files:
        a, b = _ends(path).reshape(2, -1)
        _link(parent, np.searchsorted(nodes, a), np.searchsorted(nodes, b))
    return nodes, nodes[parent]


def edge_nodes(files: list[Path]) -> np.ndarray:
    """The distinct nodes of the edges in Parquet files (columns `a`, `b`), ascending."""
    ends = [pl.Series(_ends(path)).unique() for path in files]  # (Polars' unique: 10x NumPy's sort-based one)
    return pl.concat(ends).unique().sort().to_numpy() if ends else np.zeros(0, np.uint64)


def _ends(path: Path) -> np.ndarray:
    """Both columns of an edge file, one after the other (a..., b...)."""
    df = pl.read_parquet(path, columns=["a", "b"])
    return np.concatenate([df["a"].to_numpy(), df["b"].to_numpy()]).astype(np.uint64)


def _link(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the components of every edge (a[i], b[i]) in `parent`, which points every node at its
    root before and after. Each round hooks every edge's larger root under its smaller root
    (`minimum.at`), then compresses paths by pointer jumping until every node points at its root:
    a root is always its component's smallest node, whatever order edges come in."""
    while True:
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        if not differ.any():
            return
        np.minimum.at(parent, np.maximum(ra[differ], rb[differ]), np.minimum(ra[differ], rb[differ]))
        while not np.array_equal(jumped := parent[parent], parent):
            parent[:] = jumped


def size_histogram(sizes: pl.Series) -> dict[str, int]:
    """Cluster sizes in power-of-two bins ("2", "3-4", "5-8", ...), for the stats and the report."""
    if sizes.is_empty():
        return {}
    exponent = np.ceil(np.log2(sizes.to_numpy().astype(np.float64))).astype(np.int64)
    labels = {}
    for e, count in zip(*np.unique(exponent, return_counts=True)):
        lo, hi = 2 ** (int(e) - 1) + 1, 2 ** int(e)
        labels[str(hi) if lo == hi else f"{lo}-{hi}"] = int(count)
    return labels


def _widened(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Shards may hold integers or floats of different widths (`input_checks.check_types`): their scans
    must concatenate, so narrow ones are widened, losslessly."""
    if dtype in (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32):
        return column.cast(pl.Int64)
    return column.cast(pl.Float64) if dtype == pl.Float32 else column


class DedupStage(GlobalStage):
    """A global dedup: finds groups of duplicates, keeps one document per group by a policy.

    Kept documents get `dup_cluster_id` (the `_cm_order` of the document their cluster kept) and
    `dup_cluster_size` (how many input documents it stands for). A document in no cluster keeps
    the values an earlier dedup stage gave it, else its own order and size 1, so the columns are
    never null and `dup_cluster_size` can drive up-sampling. Removed documents get `duplicate_of`:
    the id of the document kept in their place.
    """

    keep: Literal["first", "longest", "highest", "lowest", "source_priority"] = Field(
        "first",
        description="which document a cluster keeps: first in input order, longest text, highest or "
        "lowest `keep_column`, or the best-ranked `source_priority`; ties go to the first",
    )
    keep_column: str | None = Field(None, description="column compared by keep: highest / lowest")
    source_priority: list[str] = Field(
        default_factory=list, description="sources, best first, for keep: source_priority (unlisted ones rank last)"
    )

    @model_validator(mode="after")
    def _policy_has_its_inputs(self) -> DedupStage:
        if self.keep in ("highest", "lowest") and not self.keep_column:
            raise ValueError(f"keep: {self.keep} needs keep_column (the column to compare)")
        if self.keep == "source_priority" and not self.source_priority:
            raise ValueError("keep: source_priority needs a non-empty source_priority list")
        return self

    reason_code: ClassVar[str] = "duplicate"

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """Clusters by size, then the other details (pairs, partitions...) as a table."""
        from cleanmix.pipelines import charts

        details = dict(stats.get("details") or {})
        sizes = details.pop("cluster_sizes", None) or {}
        if not details and not sizes:
            return []
        chart = charts.bars(f"{self.label}: clusters by size (documents per cluster, the one kept included)", list(sizes),
                            [charts.Series("clusters", list(sizes.values()))], [f"{charts.n(v)} clusters" for v in sizes.values()])
        return [("global", charts.details(self.label, details, lead=charts.figure(f"{self.label} cluster_sizes", chart) if sizes else ""))]

    def output_columns(self) -> tuple[str, ...]:
        return (CLUSTER_ID, CLUSTER_SIZE, DUPLICATE_OF)

    def _keep_key(self, df: pl.DataFrame) -> pl.Expr:
        """A column whose ascending order (descending for `highest`) puts the document to keep first."""
        if self.keep == "longest":
            return -pl.col(TEXT).fill_null("").str.len_chars().cast(pl.Int64)
        if self.keep in ("highest", "lowest"):
            if self.keep_column not in df.columns:
                raise ValueError(f"{self.label}: keep_column '{self.keep_column}' is not a column of the data")
            return _widened(pl.col(self.keep_column), df.schema[self.keep_column])
        if self.keep == "source_priority":
            rank = {source: i for i, source in enumerate(self.source_priority)}
            source = pl.col(SOURCE) if SOURCE in df.columns else pl.lit(None, pl.String)
            return source.replace_strict(rank, default=len(rank), return_dtype=pl.Int64)
        return pl.lit(0, pl.Int8)

    def member_columns(self, df: pl.DataFrame) -> list[pl.Expr]:
        """What decide needs about every document: order, id, weight and keep key."""
        doc_id = _widened(pl.col(ID), df.schema[ID]) if ID in df.columns else pl.col(ORDER)
        weight = pl.col(CLUSTER_SIZE) if CLUSTER_SIZE in df.columns else pl.lit(1)
        return [
            pl.col(ORDER).cast(pl.UInt64),
            doc_id.alias(DOC_ID),
            weight.cast(pl.UInt64).alias(WEIGHT),
            self._keep_key(df).alias(KEY),
        ]

    # decide ---------------------------------------------------------------------------------

    def decide(self, scans: list[Path], ctx: Context) -> dict[str, Any]:
        """Find clusters and write the decisions (`ctx.decisions`); scratch files go once done."""
        work = fresh_dir(ctx.workdir / "work")
        details = self.find_clusters(scans, ctx, work) if scans else {"docs": 0, "clusters": 0, "duplicates": 0}
        shutil.rmtree(work, ignore_errors=True)
        return details

    def find_clusters(self, scans: list[Path], ctx: Context, work: Path) -> dict[str, Any]:
        """Write decisions (via `write_decisions`) and return the details; `work` is scratch."""
        raise NotImplementedError

    def write_decisions(self, members: pl.DataFrame, decisions: UnitDecisions, name: str) -> pl.DataFrame:
        """Pick each group's keeper and write one row per member, split by input unit.

        `members` has ORDER, DOC_ID, WEIGHT, KEY and GROUP (any id shared by a cluster's members).
        Returns the decisions (ORDER, cluster id, size, duplicate_of, removed).
        """
        decided = (
            members.lazy()
            .sort([GROUP, KEY, ORDER], descending=[False, self.keep == "highest", False], nulls_last=True)
            .select(
                ORDER,
                pl.col(ORDER).first().over(GROUP).alias(CLUSTER_ID),
                pl.col(WEIGHT).sum().over(GROUP).cast(pl.UInt64).alias(CLUSTER_SIZE),
                pl.col(DOC_ID).first().over(GROUP).alias(DUPLICATE_OF),
            )
            .with_columns((pl.col(ORDER) != pl.col(CLUSTER_ID)).alias(REMOVED))
            .collect()
        )
        decisions.write(decided, name)
        return decided

    # apply ----------------------------------------------------------------------------------

    def apply(self, df: pl.DataFrame, ctx: Context) -> StageResult:
        decisions = ctx.decisions.load(df[ORDER])
        if decisions is None:
            decisions = pl.DataFrame(
                schema={ORDER: pl.UInt64, CLUSTER_ID: pl.UInt64, CLUSTER_SIZE: pl.UInt64, REMOVED: pl.Boolean}
            ).with_columns(pl.lit(None).cast(df[ID].dtype if ID in df.columns else pl.UInt64).alias(DUPLICATE_OF))
        incoming = df.drop([c for c in (CLUSTER_ID, CLUSTER_SIZE, DUPLICATE_OF) if c in df.columns])
        decided = decisions.rename({CLUSTER_ID: "_cm_cid", CLUSTER_SIZE: "_cm_csize"})
        joined = df.with_columns(pl.col(ORDER).cast(pl.UInt64)).join(
            decided, on=ORDER, how="left", maintain_order="left"
        )
        previous_id = pl.col(CLUSTER_ID) if CLUSTER_ID in df.columns else pl.col(ORDER)
        previous_size = pl.col(CLUSTER_SIZE) if CLUSTER_SIZE in df.columns else pl.lit(1)
        joined = joined.with_columns(
            pl.coalesce("_cm_cid", previous_id.cast(pl.UInt64)).alias(CLUSTER_ID),
            pl.coalesce("_cm_csize", previous_size.cast(pl.UInt64)).alias(CLUSTER_SIZE),
        )
        removed = joined[REMOVED].fill_null(False)
        columns = [*incoming.columns, CLUSTER_ID, CLUSTER_SIZE]
        kept = joined.filter(~removed).select(columns)
        rejected = with_reason(joined.filter(removed).select(*columns, DUPLICATE_OF), f"{self.label}:{self.reason_code}")
        order_type = pl.col(ORDER).cast(df[ORDER].dtype)
        return StageResult(kept.with_columns(order_type), rejected.with_columns(order_type))
