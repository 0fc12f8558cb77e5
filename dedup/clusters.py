"""Duplicate clusters: union-find, which document each cluster keeps, and the filter pass.

Shared by `exact_dedup` and `minhash_dedup`: they differ in how they find duplicate groups;
everything after (keep policy, decisions on disk, resume, the `apply` join) is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from cleanmix.dedup.partitions import KEY, find_sorted, fresh_dir
from cleanmix.pipelines.order import UnitDecisions
from cleanmix.pipelines.shards import remove_in_background, write_parquet
from cleanmix.pipelines.stage import ID, ORDER, SOURCE, TEXT, Context, GlobalStage, StageResult, with_reason

DOC_ID = "_cm_id"
WEIGHT = "_cm_weight"
GROUP = "_cm_group"
CLUSTER_ID = "dup_cluster_id"
CLUSTER_SIZE = "dup_cluster_size"
DUPLICATE_OF = "duplicate_of"
REMOVED = "_cm_removed"


@dataclass(frozen=True)
class EdgeFile:
    """A Parquet file of edges (columns `a`, `b`) with its distinct nodes, ascending, and how many
    edges it holds: found by the parallel step that writes the file, so that the driver only merges them."""

    path: Path
    nodes: np.ndarray
    edges: int


def write_edges(edges: pl.DataFrame, path: Path, positions: bool) -> EdgeFile:
    """`positions`: the file also holds each edge's ends as positions in the node list (`ia`, `ib`),
    which the union-find reads: no binary search per edge in the driver (twice the union-find's time)."""
    ends = pl.concat([edges["a"], edges["b"]])
    if not positions:
        write_parquet(edges, path, dictionary=False)  # (distinct numbers)
        return EdgeFile(path, ends.unique().sort().to_numpy(), edges.height)  # (Polars' unique: 10x NumPy's)
    rank = (ends.rank("dense") - 1).to_numpy()
    nodes = np.empty(int(rank.max()) + 1 if rank.size else 0, np.uint64)
    nodes[rank] = ends.to_numpy()
    write_parquet(edges.with_columns(pl.Series("ia", rank[: edges.height]), pl.Series("ib", rank[edges.height :])), path,
                  dictionary=False)
    return EdgeFile(path, nodes, edges.height)


def merged_nodes(files: list[EdgeFile]) -> np.ndarray:
    """The distinct nodes of edge files, ascending."""
    return pl.concat([pl.Series(f.nodes) for f in files]).unique().sort().to_numpy() if files else np.zeros(0, np.uint64)


def file_components(files: list[EdgeFile]) -> tuple[np.ndarray, np.ndarray]:
    """Union-find over the edges of edge files, vectorised: (nodes, root) where root[i] is the
    smallest node of nodes[i]'s component. One file in memory at a time: memory is 16 bytes per
    node in some edge plus one file, never every pair."""
    ends = pl.concat([pl.Series(f.nodes, dtype=pl.UInt64) for f in files]) if files else pl.Series(dtype=pl.UInt64)
    position = (ends.rank("dense") - 1).to_numpy()  # of each file's nodes, among all nodes
    nodes = np.empty(int(position.max()) + 1 if position.size else 0, np.uint64)
    nodes[position] = ends.to_numpy()
    parent = np.arange(nodes.size)
    bounds = np.cumsum([0, *(f.nodes.size for f in files)])
    for file, start, end in zip(files, bounds, bounds[1:]):
        df = pl.read_parquet(file.path, columns=["ia", "ib"])
        _link(parent, position[start:end][df["ia"].to_numpy()], position[start:end][df["ib"].to_numpy()])
    return nodes, nodes[parent]


def clustered_members(job: tuple[Path, Path]) -> pl.DataFrame:
    """One scan file's documents that are in a cluster: their member columns, and GROUP, the smallest
    node of their cluster, from the union-find's (nodes, roots) saved at `components` (mapped, not read)."""
    scan, components = job
    nodes, roots = np.load(components, mmap_mode="r")
    df = pl.read_parquet(scan, columns=[ORDER, DOC_ID, WEIGHT, KEY])
    orders = df[ORDER].to_numpy()
    at, hit = find_sorted(nodes, orders)
    return df.filter(pl.Series(hit)).with_columns(pl.Series(GROUP, roots[at[hit]], pl.UInt64))


def write_unit_decisions(job: tuple[UnitDecisions, int, pl.DataFrame, str]) -> None:
    decisions, unit, rows, name = job
    decisions.write_unit(unit, rows, name)


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
        remove_in_background(work)
        return details

    def find_clusters(self, scans: list[Path], ctx: Context, work: Path) -> dict[str, Any]:
        """Write decisions (via `write_decisions`) and return the details; `work` is scratch."""
        raise NotImplementedError

    def write_decisions(self, members: pl.DataFrame, decisions: UnitDecisions, name: str) -> pl.DataFrame:
        """`keepers`, written split by input unit; returns them."""
        decided = self.keepers(members)
        decisions.write(decided, name)
        return decided

    def keepers(self, members: pl.DataFrame) -> pl.DataFrame:
        """Pick each group's keeper: first by the keep policy (`KEY`), ties to the first in input order.

        `members` has ORDER, DOC_ID, WEIGHT, KEY and GROUP (any id shared by a cluster's members).
        Returns one row per member: ORDER, cluster id (the keeper's ORDER), size (the
        members' weights), duplicate_of (the keeper's id), removed, in input order. Stable sorts from
        input order; `first` (no key) sorts by group alone: one key sorts 8x faster than several."""
        if members.is_empty():
            return pl.DataFrame(schema={ORDER: pl.UInt64, CLUSTER_ID: pl.UInt64, CLUSTER_SIZE: pl.UInt64,
                                        DUPLICATE_OF: members.schema[DOC_ID], REMOVED: pl.Boolean})
        members = members.sort(ORDER)
        keys = [GROUP] if self.keep == "first" else [GROUP, KEY]
        rank = members.select(pl.arg_sort_by(keys, descending=[False, self.keep == "highest"][: len(keys)], nulls_last=True,
                                             maintain_order=True)).to_series().to_numpy()
        group = members[GROUP].to_numpy()[rank]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        cluster = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, rank.size]))  # of each sorted member
        keeper = np.empty(rank.size, np.int64)
        keeper[rank] = rank[starts][cluster]
        size = np.empty(rank.size, np.uint64)
        size[rank] = np.add.reduceat(members[WEIGHT].cast(pl.UInt64).to_numpy()[rank], starts)[cluster]
        orders = members[ORDER].cast(pl.UInt64).to_numpy()
        return pl.DataFrame({ORDER: orders, CLUSTER_ID: orders[keeper], CLUSTER_SIZE: size}).with_columns(
            members[DOC_ID].gather(keeper).alias(DUPLICATE_OF), pl.Series(REMOVED, keeper != np.arange(rank.size)))

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
