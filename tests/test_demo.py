"""The README's demo does what it shows: planted duplicates and PII removed, the mix achieved."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from conftest import REPO, clean

DEMO = REPO / "pipelines" / "presets" / "demo.yaml"
RAW_PII = ["zhang.wei@example.com", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE", "li.na@example.cn", "138 1234 5678"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    clean("run", str(DEMO), "--output", str(out), "-q", check=True)
    return out


def removed_by(out: Path, stage: str) -> pl.DataFrame:
    folder = out / "rejected" / stage
    empty = pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "duplicate_of": pl.String})
    return pl.read_parquet(folder) if folder.exists() else empty


def test_every_planted_duplicate_that_reaches_dedup_is_resolved(demo):
    stages = [s["name"] for s in json.loads((demo / "stats" / "summary.json").read_text())["stages"]]
    before_dedup = stages[: stages.index("exact_dedup")]
    filtered = set(pl.concat([removed_by(demo, s).select("id") for s in before_dedup]).get_column("id"))
    dedup = pl.concat([removed_by(demo, s).select("id", "reason", "duplicate_of") for s in ("exact_dedup", "minhash_dedup")])
    involved = set(dedup.get_column("id")) | set(dedup.get_column("duplicate_of"))
    sample = pl.read_parquet(REPO / "sample" / "demo")
    planted = [i for i in sample.get_column("id") if i.startswith("planted-") and i not in filtered]
    assert len(planted) >= 20
    assert [i for i in planted if i not in involved] == []
    exact = [i for i in planted if i.startswith("planted-exact-")]
    assert dedup.filter(pl.col("id").is_in(exact) | pl.col("duplicate_of").is_in(exact)).height == len(exact)
    kept = pl.read_parquet(demo / "data").filter(pl.col("repeat") == 0)
    assert kept.get_column("id").is_unique().all() and kept.get_column("text").is_unique().all()


def test_pii_is_replaced_by_placeholders(demo):
    texts = "\n".join(pl.read_parquet(demo / "data").get_column("text").to_list())
    assert "<EMAIL>" in texts and "<PHONE>" in texts and "<CN_ID>" in texts
    assert [raw for raw in RAW_PII if raw in texts] == []


def test_mix_reaches_its_token_shares(demo):
    details = json.loads((demo / "stats" / "mix.json").read_text())["details"]
    for source, target in {"web": 0.6, "news_zh": 0.3, "reviews_zh": 0.1}.items():
        achieved = details["sources"][source]["achieved_share"]["tokens"]
        assert abs(achieved - target) < 0.02, (source, achieved)
