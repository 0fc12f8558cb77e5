"""Properties over random corpora and stage lists: conservation, determinism across workers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_shards
from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter

texts = st.lists(st.one_of(st.none(), st.text(max_size=60), st.text(alphabet=" \n\t\u3000中文ab\u200b\x00", max_size=30)), max_size=12)
corpora = st.lists(texts, min_size=1, max_size=4)
stage_lists = st.lists(
    st.one_of(
        st.builds(lambda form, ws: {"type": "normalize", "form": form, "collapse_whitespace": ws},
                  st.sampled_from(["NFC", "NFKC", None]), st.booleans()),
        st.builds(lambda lo, hi, lines: {"type": "length", "min_chars": lo, "max_chars": hi, "min_lines": lines},
                  st.integers(0, 20), st.one_of(st.none(), st.integers(20, 60)), st.integers(0, 2)),
    ),
    max_size=4,
).map(lambda stages: [{**s, "name": f"s{i}"} for i, s in enumerate(stages)])


def run(corpus: list[list[str | None]], stages: list[dict], workers: int, root: Path) -> tuple[Path, dict]:
    source = root / "in"
    if not source.exists():
        write_shards(source, corpus)
    out = root / f"out{workers}"
    config = validate_pipeline({"input": {"path": str(source)}, "output": {"path": str(out), "shard_rows": 5},
                                "workers": workers, "stages": stages})
    return out, run_local(config, "p.yaml", Reporter(quiet=True))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora, stage_lists)
def test_every_document_is_kept_or_counted(corpus, stages):
    with tempfile.TemporaryDirectory() as tmp:
        out, summary = run(corpus, stages, 1, Path(tmp))
        docs = sum(len(shard) for shard in corpus)
        assert summary["input"]["docs"] == docs
        for stage in summary["stages"]:
            assert stage["docs_in"] == docs == stage["docs_out"] + sum(stage["removed"].values())
            docs = stage["docs_out"]
        kept = pl.read_parquet(out / "data")
        assert kept.height == docs == summary["output"]["docs"]
        rejected = pl.read_parquet(out / "rejected") if (out / "rejected").exists() else pl.DataFrame({"id": []})
        all_ids = {f"doc-{s}-{r}" for s, shard in enumerate(corpus) for r in range(len(shard))}
        assert set(kept.get_column("id")) | set(rejected.get_column("id")) == all_ids
        assert kept.height + rejected.height == len(all_ids)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora, stage_lists)
def test_one_or_two_workers_write_identical_bytes(corpus, stages):
    with tempfile.TemporaryDirectory() as tmp:
        one, first = run(corpus, stages, 1, Path(tmp))
        two, second = run(corpus, stages, 2, Path(tmp))
        files = sorted(p.relative_to(one) for p in one.rglob("*.parquet"))
        assert files == sorted(p.relative_to(two) for p in two.rglob("*.parquet"))
        for name in files:
            assert (one / name).read_bytes() == (two / name).read_bytes(), name
        for a, b in zip(first["stages"], second["stages"]):
            assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
