"""Counting what each stage did, per unit of work, merged in unit order into the run's stats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cleanmix.pipelines import histogram
from cleanmix.pipelines.stage import ID, REASON, TEXT, StageResult

SAMPLES_PER_REASON = 5
SAMPLE_CHARS = 600


def text_bytes(df: pl.DataFrame) -> int:
    """UTF-8 bytes of the text column: the unit of `bytes_in`/`bytes_out` everywhere."""
    if df.height == 0 or TEXT not in df.columns:
        return 0
    return int(df.get_column(TEXT).str.len_bytes().sum() or 0)


@dataclass
class StageStats:
    """One stage's counts; `docs_in == docs_out + sum(removed) - added` holds by construction."""

    name: str
    type: str
    docs_in: int = 0
    docs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    removed: Counter = field(default_factory=Counter)
    modified: Counter = field(default_factory=Counter)
    added: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, before: pl.DataFrame, result: StageResult, seconds: float, bytes_in: int | None = None) -> int:
        """Count one batch; returns bytes_out so the next stage can reuse it as its bytes_in."""
        bytes_out = text_bytes(result.kept)
        self.docs_in += before.height
        self.bytes_in += text_bytes(before) if bytes_in is None else bytes_in
        self.docs_out += result.kept.height
        self.bytes_out += bytes_out
        self.seconds += seconds
        self.added += result.added
        self.modified.update(result.modified)
        histogram.merge(self.tallies, result.tallies)
        _extend(self.examples, result.examples)
        if result.rejected.height:
            counts = result.rejected.get_column(REASON).value_counts()
            self.removed.update(dict(zip(counts.get_column(REASON).to_list(), counts.get_column("count").to_list())))
            self._sample(result.rejected)
        return bytes_out

    def _sample(self, rejected: pl.DataFrame) -> None:
        wanted = {r for r in rejected.get_column(REASON).unique().to_list() if len(self.samples.get(r, [])) < SAMPLES_PER_REASON}
        if not wanted:
            return
        rows = rejected.filter(pl.col(REASON).is_in(list(wanted))).group_by(REASON, maintain_order=True).head(SAMPLES_PER_REASON)
        extra = [c for c in rows.columns if c not in (ID, TEXT, REASON) and c.startswith((self.type, self.name, "duplicate_of"))]
        for row in rows.select([ID, TEXT, REASON, *extra]).iter_rows(named=True):
            bucket = self.samples.setdefault(row[REASON], [])
            if len(bucket) < SAMPLES_PER_REASON:
                text = row.pop(TEXT) or ""
                row["text"] = text[:SAMPLE_CHARS]
                row["truncated"] = len(text) > SAMPLE_CHARS
                row["id"] = str(row.pop(ID))
                del row[REASON]
                bucket.append(row)

    def merge(self, other: StageStats) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.seconds += other.seconds
        self.added += other.added
        self.removed.update(other.removed)
        self.modified.update(other.modified)
        histogram.merge(self.tallies, other.tallies)
        _extend(self.samples, other.samples)
        _extend(self.examples, other.examples)

    def summary(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": round(self.seconds, 3),
            "removed": dict(sorted(self.removed.items())),
            "modified": dict(sorted(self.modified.items())),
        }
        if self.added:
            entry["added"] = self.added
        return entry

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "samples": self.samples, "tallies": self.tallies, "examples": self.examples}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageStats:
        return cls(
            name=data["name"], type=data["type"], docs_in=data["docs_in"], docs_out=data["docs_out"],
            bytes_in=data["bytes_in"], bytes_out=data["bytes_out"], seconds=data["seconds"],
            removed=Counter(data["removed"]), modified=Counter(data["modified"]),
            added=data.get("added", 0), samples=data.get("samples", {}), tallies=data.get("tallies", {}),
            examples=data.get("examples", {}),
        )


def _extend(into: dict[str, list[dict[str, Any]]], more: dict[str, list[dict[str, Any]]]) -> None:
    """Keep the first few per key: merging in unit order makes the choice deterministic."""
    for key, rows in more.items():
        bucket = into.setdefault(key, [])
        bucket.extend(rows[: SAMPLES_PER_REASON - len(bucket)])
