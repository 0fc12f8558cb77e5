"""`minhash_dedup`: remove near-duplicates (estimated Jaccard of shingles ≥ threshold), corpus-wide.

scan: normalise, shingle (words; one character per token in CJK and other unspaced scripts),
MinHash signatures and LSH band keys, all columnar (see dedup/shingles.py).
decide: band keys are hash-partitioned to disk; each partition is bucketed alone (sort, numpy)
into edges "document → first document of its bucket"; union-find joins the edges into
clusters; the keep policy picks one document per cluster; decisions are written per input unit.
apply: a join on `_cm_order` drops every clustered document but the kept one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from cleanmix.dedup.clusters import (
    CLUSTER_SIZE,
    REMOVED,
    DedupStage,
    EdgeFile,
    clustered_members,
    file_components,
    merged_nodes,
    size_histogram,
    write_edges,
    write_unit_decisions,
)
from cleanmix.dedup.partitions import count_rows, partition_count, partition_files, partition_of, split_to_disk
from cleanmix.dedup.shingles import band_keys, buffer_shingle_hashes, folded_buffers, shingle_sets, signatures
from cleanmix.dedup.verify import SHINGLES, SIGNATURE, attach_left, distinct_pairs, score_right, split_pairs, split_payload
from cleanmix.pipelines.order import by_unit
from cleanmix.pipelines.stage import ORDER, TEXT, Context

BANDS = "_cm_bands"
_RECALL_WEIGHTS = {"none": (0.5, 0.5), "signature": (0.05, 0.95), "exact": (0.02, 0.98)}
"""(false-positive, false-negative) weights for choosing bands: the more exact the check, the more
candidates it can afford, so the more the banding favours recall."""
_BYTES_PER_BAND_KEY = 40  # key + order in memory, with sort indices
_BYTES_PER_PAIR = 64
_PAYLOAD_EXPANSION = 9
"""Peak memory of verifying one partition per byte of its scan files (lists read from many files,
joined to pairs, compared): measured 7–9× on web text (benchmarks/speed.md); 3 made partitions
three times the `partition_mb` they were meant to be."""


class MinhashDedup(DedupStage):
    """Keep one document per cluster of near-duplicates found by MinHash LSH."""

    type: Literal["minhash_dedup"] = "minhash_dedup"
    reason_code: ClassVar[str] = "near_duplicate"
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard similarity above which two documents are duplicates")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations (signature length)")
    ngram: int = Field(5, ge=1, le=32, description="tokens per shingle (a token: a word, or one CJK/Thai/... character)")
    bands: int | None = Field(None, ge=1, description="LSH bands; default: datasketch's optimum for threshold and num_perm")
    rows: int | None = Field(None, ge=1, description="signature rows per band; default: as bands")
    seed: int = Field(1, ge=0, description="seed of the permutations (fixed → same signatures on every run and machine)")
    verify: Literal["none", "signature", "exact"] = Field(
        "exact",
        description="check LSH candidate pairs before joining them: signature (estimated Jaccard ≥ threshold; "
        "+num_perm × 4 B per document in the scan files), exact (shingle-set Jaccard ≥ threshold; +4 B per "
        "shingle, about the text's size), none (every candidate pair counts)",
    )
    partition_mb: float = Field(
        256, gt=0, description="memory for one on-disk partition (of band keys, or of pairs to verify) in decide"
    )

    @model_validator(mode="after")
    def _bands_fit(self) -> MinhashDedup:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they are derived from threshold)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    @cached_property
    def banding(self) -> tuple[int, int]:
        """(bands, rows): given, or minimising false positives + false negatives (datasketch's routine)."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return _banding(self.threshold, self.num_perm, self.verify)

    def shingles(self, texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(shingle hashes, start of each text's run) of raw texts."""
        return buffer_shingle_hashes(*folded_buffers(texts), self.ngram)  # (normalize_expr but whitespace: tokens split at any)

    def signatures(self, texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(signatures, has_shingles) of raw texts: the columnar MinHash, usable on its own."""
        hashes, starts = self.shingles(texts)
        return signatures(hashes, starts, self.num_perm, self.seed), np.diff(starts) > 0

    def scan(self, df: pl.DataFrame) -> pl.DataFrame:
        bands, rows = self.banding
        hashes, starts = self.shingles(df[TEXT])
        sig = signatures(hashes, starts, self.num_perm, self.seed)
        hashed = np.diff(starts) > 0
        keys = band_keys(sig[hashed], bands, rows, self.seed)
        out = df.filter(pl.Series(hashed)).select(self.member_columns(df))
        out = out.with_columns(pl.Series(BANDS, keys, pl.Array(pl.UInt64, bands)))
        if self.verify == "signature":
            out = out.with_columns(pl.Series(SIGNATURE, sig[hashed], pl.Array(pl.UInt32, self.num_perm)))
        if self.verify == "exact":
            out = out.with_columns(shingle_sets(hashes, starts).filter(pl.Series(hashed)).alias(SHINGLES))
        return out

    def find_clusters(self, scans: list[Path], ctx: Context, work: Path) -> dict[str, Any]:
        bands, rows = self.banding
        docs = count_rows(scans)
        partitions = partition_count(docs * bands * _BYTES_PER_BAND_KEY, self.partition_mb)
        ctx.map(_split, [(group, f"s{i:06d}", partitions, work) for i, group in enumerate(_groups(scans, partitions))])
        edge_files = [f for f in ctx.map(_bucket, [(p, work) for p in range(partitions)]) if f is not None]
        candidates, pair_files = self._pairs(edge_files, scans, docs, ctx, work)
        components = work / "components.npy"
        np.save(components, np.stack(file_components(pair_files)))
        members = ctx.map(clustered_members, [(scan, components) for scan in scans])
        decisions = self.keepers(pl.concat(members))
        ctx.map(write_unit_decisions, [(ctx.decisions, unit, rows, "clusters") for unit, rows in by_unit(decisions)])
        sizes = decisions.filter(~pl.col(REMOVED))[CLUSTER_SIZE]
        return {
            "docs_with_shingles": docs,
            "num_perm": self.num_perm,
            "bands": bands,
            "rows": rows,
            "ngram": self.ngram,
            "threshold": self.threshold,
            "verify": self.verify,
            "partitions": partitions,
            "candidate_pairs": candidates,
            "verified_pairs": sum(f.edges for f in pair_files),
            "clusters": len(sizes),
            "duplicates": int(decisions[REMOVED].sum()),
            "cluster_sizes": size_histogram(sizes),
        }

    def _pairs(self, edge_files: list[EdgeFile], scans: list[Path], docs: int, ctx: Context, work: Path) -> tuple[int, list[EdgeFile]]:
        """(distinct candidate pairs, files of the pairs that are duplicates as `verify` measures).

        Two documents meet in every band they share, and the bands' keys fall in different
        partitions, so one pair may be in several edge files: the pairs are split to disk by their
        left document, which puts every copy of a pair in one partition, and each partition is made
        distinct, verified and written on its own. Only the documents of some pair have their payload
        split (in a corpus of few duplicates, a few of them). Memory: one partition, never every pair;
        the paired documents' orders (8 bytes each, as the union-find holds them)."""
        if not edge_files:
            return 0, []
        column = {"exact": SHINGLES, "signature": SIGNATURE}.get(self.verify)
        paired = merged_nodes(edge_files) if column else np.zeros(0, np.uint64)
        share = len(paired) / max(1, docs)
        payload = sum(path.stat().st_size for path in scans) * _PAYLOAD_EXPANSION * share
        partitions = partition_count(payload + sum(f.edges for f in edge_files) * _BYTES_PER_PAIR, self.partition_mb)
        ctx.map(split_pairs, [(f.path, partitions, work) for f in edge_files])
        if column is None:
            found = ctx.map(distinct_pairs, [(p, work) for p in range(partitions)])
        else:
            ctx.map(split_payload, [(group, f"s{i:06d}", column, partitions, work, paired)
                                    for i, group in enumerate(_groups(scans, partitions))])
            budget = self.partition_mb / 4  # for the pairs' copies of the payload, beside the partition's own
            counts = ctx.map(attach_left, [(p, column, partitions, work, budget) for p in range(partitions)])
            verified = ctx.map(score_right, [(p, column, self.threshold, work) for p in range(partitions)])
            found = list(zip(counts, verified))
        return sum(n for n, _ in found), [path for _, path in found if path is not None]


@cache
def _banding(threshold: float, num_perm: int, verify: str) -> tuple[int, int]:
    """The (bands, rows) with b·r ≤ num_perm minimising w_fp·P(false positive) + w_fn·P(false negative),
    the probabilities integrated over the similarity s (candidate iff some band agrees: 1 − (1 − s^r)^b)
    below and above the threshold: datasketch's criterion (its `_optimal_param`, the same first
    minimum in the same b-then-r order; tests/test_dedup.py checks the choice matches on a grid).
    Integrated here by Gauss–Legendre quadrature over all pairs at once in NumPy, in milliseconds,
    where datasketch's per-pair `scipy.integrate.quad` cost a second of import and 0.3 s per process."""
    w_fp, w_fn = _RECALL_WEIGHTS[verify]
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=np.float64)
    b, r = pairs[:, :1], pairs[:, 1:]
    fp = _integral(lambda s: 1 - (1 - s**r) ** b, 0.0, threshold)
    fn = _integral(lambda s: (1 - s**r) ** b, threshold, 1.0)
    best = int(np.argmin(fp * w_fp + fn * w_fn))
    return int(pairs[best, 0]), int(pairs[best, 1])


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_PANELS = 32


def _integral(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> np.ndarray:
    """∫ f over [lo, hi] per row of f's output: composite 16-point Gauss–Legendre on 32 panels
    (the integrands are smooth, with one steep step near the threshold that the panels resolve)."""
    if hi <= lo:
        return np.zeros(1)
    edges = np.linspace(lo, hi, _PANELS + 1)
    half = (edges[1:] - edges[:-1]) / 2
    points = ((edges[:-1] + edges[1:]) / 2)[:, None] + half[:, None] * _NODES[None, :]
    weights = (half[:, None] * _WEIGHTS[None, :]).reshape(-1)
    return f(points.reshape(1, -1)) @ weights


def _groups(scans: list[Path], partitions: int) -> list[list[Path]]:
    """Consecutive scan files in as many groups as partitions (or fewer): one split job each, so a
    step writes groups × partitions files, not units × partitions, and a group holds about what a
    partition does."""
    count = min(len(scans), partitions)
    return [scans[len(scans) * g // count : len(scans) * (g + 1) // count] for g in range(count)]


def _split(job: tuple[list[Path], str, int, Path]) -> None:
    """Scan files' band keys → (key, order) rows in their partition folders."""
    paths, name, partitions, work = job
    df = pl.read_parquet(paths, columns=[ORDER, BANDS])
    bands = df[BANDS].dtype.size  # type: ignore[union-attr]
    keys = df[BANDS].to_numpy().reshape(-1)
    frame = pl.DataFrame({"key": keys, ORDER: np.repeat(df[ORDER].to_numpy(), bands)})
    split_to_disk(frame, partition_of(keys, partitions), partitions, work / "bands", name)


def _bucket(job: tuple[int, Path]) -> EdgeFile | None:
    """Bucket one partition's band keys: each document links to the first document of its bucket."""
    partition, work = job
    files = partition_files(work / "bands", partition)
    if not files:
        return None
    df = pl.read_parquet(files)
    keys, orders = df["key"].to_numpy(), df[ORDER].to_numpy()
    sort = np.lexsort((orders, keys))
    keys, orders = keys[sort], orders[sort]
    first = np.r_[True, keys[1:] != keys[:-1]]
    head = orders[np.maximum.accumulate(np.where(first, np.arange(keys.size), 0))]
    linked = ~first & (head != orders)
    edges = pl.DataFrame({"a": head[linked], "b": orders[linked]}).unique()
    return write_edges(edges, work / "edges" / f"p{partition:05d}.parquet", positions=False)
