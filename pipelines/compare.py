"""`clean compare OUT_A OUT_B`: two finished runs side by side — documents per stage, reasons
whose counts changed, and, by id, how many documents one run kept that the other removed (and
why the other removed them). Ids are read as one column, lazily, so it scales with the corpus.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import polars as pl

from cleanmix.pipelines.outputs import RunFolder


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Everything `clean compare` prints, as data (exact counts)."""
    runs = [RunFolder(a), RunFolder(b)]
    names = list(dict.fromkeys([s["name"] for s in runs[0].stages] + [s["name"] for s in runs[1].stages]))
    stages = [{"name": name, "a": _counts(runs[0].stage(name)), "b": _counts(runs[1].stage(name))} for name in names]
    reasons_a, reasons_b = runs[0].reasons(), runs[1].reasons()
    reasons = sorted(set(reasons_a) | set(reasons_b))
    changed = [{"reason": r, "a": reasons_a.get(r, 0), "b": reasons_b.get(r, 0)}
               for r in reasons if reasons_a.get(r, 0) != reasons_b.get(r, 0)]
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
        "pipeline_diff": list(difflib.unified_diff(runs[0].pipeline_text.splitlines(), runs[1].pipeline_text.splitlines(),
                                                   str(a / "pipeline.yaml"), str(b / "pipeline.yaml"), lineterm="", n=1)),
    }


def _counts(stage: dict[str, Any] | None) -> dict[str, int] | None:
    if stage is None:
        return None
    return {"docs_in": stage.get("docs_in", 0), "docs_out": stage.get("docs_out", 0),
            "removed": sum(stage.get("removed", {}).values()), "bytes_out": stage.get("bytes_out", 0)}


def _why(ids: pl.LazyFrame, other: RunFolder) -> dict[str, Any]:
    """How many ids one run kept, and the reasons the other run gave for removing them."""
    reasons = ids.join(other.rejected_ids(), on="id", how="left").group_by("reason").len()
    table = reasons.collect(engine="streaming").sort("len", descending=True)
    by_reason = {str(r) if r is not None else "(not in the other run's rejected files)": int(n)
                 for r, n in table.iter_rows()}
    return {"docs": sum(by_reason.values()), "by_reason_in_other": by_reason}
