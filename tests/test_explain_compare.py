"""`clean explain` agrees with `clean run` document by document; `clean compare` counts are exact."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from test_report import DEMO, _length_index, clean, demo_runs

from cleanmix.pipelines.compare import compare
from cleanmix.pipelines.config import load_pipeline
from cleanmix.pipelines.explain import explain
from cleanmix.pipelines.registry import stage_types
from cleanmix.pipelines.shards import plan_input, read_unit
from cleanmix.pipelines.stage import GlobalStage


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    return demo_runs(tmp_path_factory.getbasetemp() / "demo")


def _kept(out: Path) -> set[str]:
    return {str(i) for f in sorted((out / "data").glob("*.parquet")) for i in pq.read_table(f, columns=["id"])["id"].to_pylist()}


def _rejected(out: Path) -> dict[str, str]:
    rows = [pq.read_table(f, columns=["id", "reason"]).to_pylist() for f in sorted((out / "rejected").glob("*/*.parquet"))]
    return {str(row["id"]): row["reason"] for part in rows for row in part}


RICH = ["normalize", {"type": "length", "min_chars": 20, "max_lines": 400}, "gopher_quality", "exact_dedup",
        "gopher_repetition", "c4_quality", "fineweb_quality", "pii"]
"""Every filter there is, with a global stage in the middle (explain skips it, not what follows)."""


@pytest.fixture(scope="module")
def rich(runs, tmp_path_factory):
    """The demo corpus through the RICH pipeline (the stages that exist in this checkout)."""
    known, tmp_path = stage_types(), tmp_path_factory.mktemp("rich")
    stages = [s if isinstance(s, dict) else {"type": s} for s in RICH]
    pipeline = tmp_path / "rich.yaml"
    pipeline.write_text(yaml.safe_dump({"input": {"path": str(runs[0]), "source_column": "source"},
                                        "output": {"path": str(tmp_path / "rich")}, "workers": 1, "limit": 400,
                                        "stages": [s for s in stages if s["type"] in known]}))
    clean("run", str(pipeline), "--quiet")
    return pipeline, tmp_path / "rich"


@pytest.mark.parametrize("which", ["demo", "rich"])
def test_explain_agrees_with_the_run_on_every_document(which, runs, request):
    if which == "demo":
        config, out = load_pipeline(DEMO, [f"input.path={runs[0]}"]), runs[1]
    else:
        pipeline, out = request.getfixturevalue("rich")
        config = load_pipeline(pipeline)
    source = config.input
    units = plan_input(source, config.limit).units
    docs = pl.concat([batch for unit in units for batch in read_unit(unit, source)], how="diagonal_relaxed")
    explained = {e["id"]: e for e in explain(config, docs)}
    kept, rejected = _kept(out), _rejected(out)
    assert len(explained) == docs.height == len(kept) + len(rejected)
    stages = {stage.label: (i, stage) for i, stage in enumerate(config.stages)}
    for doc_id in kept:
        assert explained[doc_id]["verdict"] == "kept", explained[doc_id]
    for doc_id, reason in rejected.items():
        position, stage = stages[reason.split(":")[0]]
        if not isinstance(stage, GlobalStage):
            assert explained[doc_id]["reason"] == reason, (doc_id, reason, explained[doc_id]["reason"])
        else:  # explain skips global stages: a duplicate may pass, or fail a later stage it never reached
            later = explained[doc_id]["reason"]
            assert later is None or stages[later.split(":")[0]][0] > position
    assert any(r == "length:too_short" for r in rejected.values())


def test_explain_command_shows_value_threshold_and_verdict(runs):
    corpus = runs[0]
    result = clean("explain", str(DEMO), "--set", f"input.path={corpus}", "--id", "hostile-script", "--json")
    data = json.loads(result.stdout)
    assert (data["verdict"], data["reason"]) == ("removed", "length:too_short")
    length = next(s for s in data["stages"] if s["name"] == "length")
    rule = next(r for r in length["rules"] if r["rule"] == "too_short")
    assert rule == {"rule": "too_short", "metric": "length_chars", "value": 18, "threshold": 20, "fails": True}
    article = (
        "The city council met on Tuesday evening to discuss the new budget for the coming year. Members of the public "
        "were invited to share their views on the plans. Several residents asked about the cost of repairing the old "
        "bridge near the river. The mayor said that the work would begin in the spring and finish before the end of "
        "the summer. She also promised that the library would stay open on weekends. The meeting ended with a vote, "
        "and the budget was approved by a large majority."
    )
    text = clean("explain", str(DEMO), "--text", article).stdout
    assert "kept" in text and "too_short" in text and "length_chars" in text and "passes" in text
    assert "exactly one of" in clean("explain", str(DEMO), code=2).stderr
    assert "no-such-id" in clean("explain", str(DEMO), "--set", f"input.path={corpus}", "--id", "no-such-id", code=2).stderr


def test_compare_counts_are_exact(runs):
    _, a, b = runs
    result = compare(a, b)
    assert json.loads(clean("compare", str(a), str(b), "--json").stdout) == json.loads(json.dumps(result))
    kept_a, kept_b, rejected_a, rejected_b = _kept(a), _kept(b), _rejected(a), _rejected(b)
    assert result["kept_by_both"] == len(kept_a & kept_b)
    only_a = dict(Counter(rejected_b[i] for i in kept_a - kept_b))
    assert result["kept_only_by_a"] == {"docs": len(kept_a - kept_b), "by_reason_in_other": only_a}
    assert result["kept_only_by_b"]["docs"] == len(kept_b - kept_a)
    assert result["kept_only_by_b"]["by_reason_in_other"] == dict(Counter(rejected_a[i] for i in kept_b - kept_a))
    assert result["kept_only_by_a"]["docs"] > 0 and "length:too_short" in result["kept_only_by_a"]["by_reason_in_other"]
    summaries = [json.loads((out / "stats" / "summary.json").read_text()) for out in (a, b)]
    for i, stage in enumerate(result["stages"]):
        for side, summary in zip("ab", summaries):
            assert stage[side]["docs_out"] == summary["stages"][i]["docs_out"]
    short = next(r for r in result["reasons_changed"] if r["reason"] == "length:too_short")
    assert (short["a"], short["b"]) == tuple(s["stages"][_length_index()]["removed"]["length:too_short"] for s in summaries)
    assert any(line.startswith("-") and "min_chars: 20" in line for line in result["pipeline_diff"])
    assert any(line.startswith("+") and "min_chars: 200" in line for line in result["pipeline_diff"])
    printed = clean("compare", str(a), str(b)).stdout
    assert f"kept only by A: {len(kept_a - kept_b):,}" in printed and "length:too_short" in printed
