"""`clean compare OUT_A OUT_B`: two finished runs side by side — documents per stage, reasons
whose counts changed, and, by id, how many documents one run kept that the other removed (and
why the other removed them). Ids are read as one column, lazily, so it scales with the corpus.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cleanmix.pipelines.errors import UserError


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Everything `clean compare` prints, as data (exact counts)."""
    runs = [_Run(a), _Run(b)]
    names = list(dict.fromkeys([s["name"] for s in runs[0].stages] + [s["name"] for s in runs[1].stages]))
    stages = [{"name": name, "a": _counts(runs[0].stage(name)), "b": _counts(runs[1].stage(name))} for name in names]
    reasons = sorted(set(runs[0].reasons) | set(runs[1].reasons))
    changed = [{"reason": r, "a": runs[0].reasons.get(r, 0), "b": runs[1].reasons.get(r, 0)}
               for r in reasons if runs[0].reasons.get(r, 0) != runs[1].reasons.get(r, 0)]
    kept_a, kept_b = runs[0].kept_ids(), runs[1].kept_ids()
    only_a = kept_a.join(kept_b, on="id", how="anti")
    only_b = kept_b.join(kept_a, on="id", how="anti")
    both = kept_a.join(kept_b, on="id", how="semi").select(pl.len()).collect(engine="streaming").item()
    return {
        "a": str(a), "b": str(b),
        "input_docs": {"a": runs[0].summary["input"]["docs"], "b": runs[1].summary["input"]["docs"]},
        "output_docs": {"a": runs[0].summary["output"]["docs"], "b": runs[1].summary["output"]["docs"]},
        "stages": stages,
        "reasons_changed": changed,
        "kept_by_both": both,
        "kept_only_by_a": _why(only_a, runs[1]),
        "kept_only_by_b": _why(only_b, runs[0]),
        "pipeline_diff": list(difflib.unified_diff(runs[0].resolved.splitlines(), runs[1].resolved.splitlines(),
                                                   str(a / "pipeline.yaml"), str(b / "pipeline.yaml"), lineterm="", n=1)),
    }


def _counts(stage: dict[str, Any] | None) -> dict[str, int] | None:
    if stage is None:
        return None
    return {"docs_in": stage.get("docs_in", 0), "docs_out": stage.get("docs_out", 0),
            "removed": sum(stage.get("removed", {}).values()), "bytes_out": stage.get("bytes_out", 0)}


def _why(ids: pl.LazyFrame, other: _Run) -> dict[str, Any]:
    """How many ids one run kept, and the reasons the other run gave for removing them."""
    reasons = ids.join(other.rejected_ids(), on="id", how="left").group_by("reason").len()
    table = reasons.collect(engine="streaming").sort("len", descending=True)
    by_reason = {str(r) if r is not None else "(not in the other run's rejected files)": int(n)
                 for r, n in table.iter_rows()}
    return {"docs": sum(by_reason.values()), "by_reason_in_other": by_reason}


class _Run:
    """One finished output folder: its summary, resolved pipeline, and ids (kept and rejected)."""

    def __init__(self, out: Path) -> None:
        path = out / "stats" / "summary.json"
        if not path.exists():
            raise UserError(f"{path} does not exist: '{out}' is not a finished cleanmix output folder.")
        self.out = out
        self.summary = json.loads(path.read_text(encoding="utf-8"))
        self.stages: list[dict[str, Any]] = self.summary.get("stages", [])
        self.resolved = (out / "pipeline.yaml").read_text(encoding="utf-8") if (out / "pipeline.yaml").exists() else ""
        pipeline = yaml.safe_load(self.resolved) or {} if self.resolved else {}
        self.id_column = (pipeline.get("input") or {}).get("id_column") or "id"
        self.reasons = {r: n for s in self.stages for r, n in s.get("removed", {}).items()}

    def stage(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.stages if s["name"] == name), None)

    def kept_ids(self) -> pl.LazyFrame:
        """Distinct kept ids (a mix may repeat a document)."""
        files = sorted((self.out / "data").glob("*.parquet"))
        if not files:
            return pl.LazyFrame({"id": []}, schema={"id": pl.String})
        return pl.scan_parquet(files).select(pl.col(self.id_column).cast(pl.String).alias("id")).unique()

    def rejected_ids(self) -> pl.LazyFrame:
        files = sorted((self.out / "rejected").glob("*/*.parquet"))
        if not files:
            return pl.LazyFrame({"id": [], "reason": []}, schema={"id": pl.String, "reason": pl.String})
        frames = [pl.scan_parquet(f).select(pl.col(self.id_column).cast(pl.String).alias("id"), "reason") for f in files]
        return pl.concat(frames).unique("id", keep="first")
