"""Rule by rule, the quality stages decide like datatrove's implementation on English web pages.

tests/fixtures/datatrove_cc_wet.json holds datatrove 0.10.1's decision for each rule alone on
each page of web_en_cc_wet (recorded by benchmarks/bench_filters.py, which runs datatrove).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from cleanmix.filters.language import Language
from cleanmix.pipelines.registry import stage_types

FIXTURE = Path(__file__).parent / "fixtures" / "datatrove_cc_wet.json"
AGREEMENT_PARAMS = {"gopher_quality": {"alpha_share_of": "tokens", "stop_words_case_sensitive": True}}
"""Settings that reproduce datatrove where cleanmix's default differs on purpose."""
PRECHECKS = {"gopher_repetition": ["empty"], "fineweb_quality": ["empty"]}
"""Rules datatrove checks before any other (an empty page fails every isolated rule)."""
MERGED = {"gopher_quality:hashes": ["hashes", "ellipses"]}
"""datatrove switches these two rules with one parameter."""


def our_rule_decisions(texts: list[str], params: dict[str, dict] | None = None) -> dict[str, list[bool]]:
    """For every rule of the four quality stages: does it alone remove the document?"""
    params = AGREEMENT_PARAMS if params is None else params
    df = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
    decisions: dict[str, list[bool]] = {}
    for stage_type in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"):
        stage = stage_types()[stage_type](**params.get(stage_type, {}))
        measured = stage.metrics(df)
        fails = {rule.name: rule.fails.fill_null(False) for rule in stage.rules()}
        pre = [fails[name] for name in PRECHECKS.get(stage_type, [])]
        for name in fails:
            parts = MERGED.get(f"{stage_type}:{name}", [name])
            decisions[f"{stage_type}:{name}"] = measured.select(pl.any_horizontal(*pre, *(fails[p] for p in parts))).to_series().to_list()
    return decisions


def agreement(theirs: dict[str, list[bool | None]], ours: dict[str, list[bool]]) -> dict[str, dict[str, float]]:
    """Per rule: the share of documents where both keep or both drop (None: left out)."""
    table = {}
    for key, their in theirs.items():
        pairs = [(t, o) for t, o in zip(their, ours[key]) if t is not None]
        table[key] = {
            "agreement": sum(t == o for t, o in pairs) / len(pairs),
            "datatrove_drops": sum(t for t, _ in pairs),
            "cleanmix_drops": sum(o for _, o in pairs),
            "documents": len(pairs),
        }
    return table


def read_fixture() -> dict[str, list[bool | None]]:
    rows = json.loads(FIXTURE.read_text())["decisions"]
    return {key: [None if c == "-" else c == "1" for c in row] for key, row in rows.items()}


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> pl.DataFrame:
    return Language().annotate(pl.read_parquet(shared_data / "web_en_cc_wet.parquet"))


def test_every_rule_agrees_on_pages_not_in_cjk(pages: pl.DataFrame) -> None:
    theirs = read_fixture()
    cjk = pages["language"].is_in(["zh", "ja", "ko"]).to_list()
    theirs = {key: [None if c else d for d, c in zip(row, cjk)] for key, row in theirs.items()}
    table = agreement(theirs, our_rule_decisions(pages["text"].to_list()))
    assert len(table) == 29
    low = {key: row["agreement"] for key, row in table.items() if row["agreement"] < 0.99}
    assert not low, low
    assert sum(row["agreement"] for row in table.values()) / len(table) >= 0.998


def test_most_rules_agree_on_all_pages(pages: pl.DataFrame) -> None:
    """Chinese and Japanese pages are tokenized per character on purpose: rules that count words differ there."""
    table = agreement(read_fixture(), our_rule_decisions(pages["text"].to_list()))
    assert sum(row["agreement"] >= 0.99 for row in table.values()) >= 22
    assert min(row["agreement"] for row in table.values()) >= 0.96
