"""`exact_dedup`: remove documents whose normalised text is identical, across the whole corpus.

Scan hashes each normalised text (xxh3-128, stable across versions and machines); decide
hash-partitions the hashes to disk and groups each partition alone, so memory is bounded by a
partition; apply drops every member of a group but the one the keep policy picks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import xxhash
from pydantic import Field

from cleanmix.dedup.clusters import CLUSTER_SIZE, GROUP, REMOVED, DedupStage, size_histogram
from cleanmix.dedup.partitions import count_rows, partition_count, partition_files, partition_of, split_to_disk
from cleanmix.dedup.shingles import normalize_expr
from cleanmix.pipelines.order import UnitDecisions
from cleanmix.pipelines.stage import TEXT, Context

HASH_HI, HASH_LO = "_cm_hash_hi", "_cm_hash_lo"
_BYTES_PER_DOC = 64  # two hash words, order, weight, key and id, in memory


class ExactDedup(DedupStage):
    """Keep one document per group of identical (normalised) texts."""

    type: Literal["exact_dedup"] = "exact_dedup"
    lowercase: bool = Field(True, description="compare case-insensitively")
    whitespace: bool = Field(True, description="collapse runs of whitespace and trim the ends before comparing")
    punctuation: bool = Field(False, description="ignore punctuation and symbols")
    nfkc: bool = Field(True, description="Unicode NFKC first (full-width ＡＢＣ？ equals ABC?)")
    partition_mb: float = Field(256, gt=0, description="memory for one on-disk partition of hashes in decide")

    def scan(self, df: pl.DataFrame) -> pl.DataFrame:
        texts = df.select(
            normalize_expr(
                pl.col(TEXT), lowercase=self.lowercase, whitespace=self.whitespace,
                punctuation=self.punctuation, nfkc=self.nfkc,
            )
        ).to_series()
        digests = b"".join(xxhash.xxh3_128_digest(t.encode()) for t in texts.to_list())
        words = np.frombuffer(digests, dtype=">u8").reshape(-1, 2).astype(np.uint64)
        return df.select(self.member_columns(df)).with_columns(
            pl.Series(HASH_HI, words[:, 0]), pl.Series(HASH_LO, words[:, 1])
        )

    def find_clusters(self, scans: list[Path], ctx: Context, work: Path) -> dict[str, Any]:
        docs = count_rows(scans)
        partitions = partition_count(docs * _BYTES_PER_DOC, self.partition_mb)
        ctx.map(_split, [(path, f"s{i:06d}", partitions, work) for i, path in enumerate(scans)])
        grouped = ctx.map(_group, [(self, p, work, ctx.decisions) for p in range(partitions)])
        all_sizes = pl.concat([pl.Series("size", sizes, pl.UInt64) for sizes, _ in grouped])
        return {
            "docs": docs,
            "partitions": partitions,
            "clusters": len(all_sizes),
            "duplicates": sum(removed for _, removed in grouped),
            "cluster_sizes": size_histogram(all_sizes),
            "normalisation": {k: getattr(self, k) for k in ("lowercase", "whitespace", "punctuation", "nfkc")},
        }


def _split(job: tuple[Path, str, int, Path]) -> None:
    path, name, partitions, work = job
    df = pl.read_parquet(path)
    split_to_disk(df, partition_of(df[HASH_LO].to_numpy(), partitions), partitions, work / "hashes", name)


def _group(job: tuple[ExactDedup, int, Path, UnitDecisions]) -> tuple[list[int], int]:
    """Group one partition by hash, write its decisions; return its group sizes and how many it removes.

    Sizes count documents an earlier dedup folded into a member, so removals are counted apart."""
    stage, partition, work, decided = job
    files = partition_files(work / "hashes", partition)
    if not files:
        return [], 0
    df = pl.read_parquet(files)
    members = df.filter(pl.len().over(HASH_HI, HASH_LO) > 1).with_columns(
        pl.struct(HASH_HI, HASH_LO).rank("dense").alias(GROUP)
    )
    decisions = stage.write_decisions(members, decided, f"p{partition:05d}")
    return decisions.filter(~pl.col(REMOVED))[CLUSTER_SIZE].to_list(), int(decisions[REMOVED].sum())
