"""Properties over random corpora and stage lists, document and global stages alike (dedup, PII
dropping, mix): conservation, one stage's output is the next one's input, determinism across workers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter
from conftest import write_shards

SOURCES = ("web", "books", "code")
DOC = "the river runs past the old mill and the children walk to school along its bank every morning "
POOL = [
    DOC * 2,
    DOC * 2,  # an exact duplicate
    DOC.upper() * 2,  # exact_dedup compares case-insensitively
    DOC * 2 + "today",  # a near duplicate
    "write to anna.berg@example.org or call +1 415 555 0132 " * 2,  # PII
    "身份证号 11010519491231002X，电话 13812345678。" * 2,
    "中文的文档也会重复出现在语料库里面，" * 4,
]
"""Texts drawn more than once, so that the dedup stages find duplicates and `pii` finds something to drop."""

texts = st.one_of(
    st.sampled_from(POOL),  # half of the documents
    st.one_of(st.none(), st.text(max_size=60), st.text(alphabet=" \n\t\u3000中文ab\u200b\x00", max_size=30)),
)
documents = st.tuples(texts, st.sampled_from(SOURCES))
corpora = st.lists(st.lists(documents, max_size=12), min_size=1, max_size=4)

document_stages = st.one_of(
    st.builds(lambda form, ws: {"type": "normalize", "form": form, "collapse_whitespace": ws},
              st.sampled_from(["NFC", "NFKC", None]), st.booleans()),
    st.builds(lambda lo, hi, lines: {"type": "length", "min_chars": lo, "max_chars": hi, "min_lines": lines},
              st.integers(0, 20), st.one_of(st.none(), st.integers(20, 60)), st.integers(0, 2)),
)
global_stages = st.one_of(
    st.builds(lambda lowercase, punctuation: {"type": "exact_dedup", "lowercase": lowercase, "punctuation": punctuation},
              st.booleans(), st.booleans()),
    st.builds(lambda threshold, ngram, keep: {"type": "minhash_dedup", "threshold": threshold, "num_perm": 32, "ngram": ngram,
                                              "keep": keep},
              st.sampled_from([0.5, 0.8]), st.integers(1, 5), st.sampled_from(["first", "longest"])),
    st.just({"type": "pii", "action": "drop"}),
)
mixes = st.builds(
    lambda by, weights, repeats, total: {"type": "mix", "by": by, "weights": weights, "max_repeats": repeats, "total": total},
    st.sampled_from(["docs", "tokens", "bytes"]),
    st.dictionaries(st.sampled_from(SOURCES), st.sampled_from([0.0, 0.2, 0.5, 1.0]), min_size=1).filter(lambda w: any(w.values())),
    st.integers(1, 3),
    st.one_of(st.none(), st.sampled_from([5.0, 200.0])),
)


@st.composite
def stage_lists(draw: st.DrawFn, kinds: st.SearchStrategy[dict], size: int) -> list[dict]:
    """Up to `size` stages of `kinds`, and maybe one mix among them (mix re-orders and adds copies)."""
    stages = draw(st.lists(kinds, max_size=size))
    if draw(st.booleans()):
        stages.insert(draw(st.integers(0, len(stages))), draw(mixes))
    return [{**stage, "name": f"s{i}"} for i, stage in enumerate(stages)]


any_stages = st.one_of(document_stages, global_stages)


def run(corpus: list[list[tuple[str | None, str]]], stages: list[dict], workers: int, root: Path) -> tuple[Path, dict]:
    source = root / "in"
    if not source.exists():
        write_shards(source, [[text for text, _ in shard] for shard in corpus], source=[[s for _, s in shard] for shard in corpus])
    out = root / f"out{workers}"
    config = validate_pipeline({"input": {"path": str(source), "source_column": "source"},
                                "output": {"path": str(out), "shard_rows": 5}, "workers": workers, "stages": stages})
    try:
        return out, run_local(config, "p.yaml", Reporter(quiet=True))
    except UserError as error:  # a weighted source that no document of it reaches: the user's mistake, by design
        if "no documents reached the mix" in str(error):
            reject()
        raise


def ids(folder: Path) -> list[str]:
    """The ids in every Parquet file under `folder` (the stages' rejected files differ in their other columns)."""
    return [i for path in sorted(folder.rglob("*.parquet")) for i in pl.read_parquet(path, columns=["id"]).get_column("id").to_list()]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora, stage_lists(any_stages, 4))
def test_every_document_is_kept_or_counted(corpus, stages):
    with tempfile.TemporaryDirectory() as tmp:
        out, summary = run(corpus, stages, 1, Path(tmp))
        docs = sum(len(shard) for shard in corpus)
        assert summary["input"]["docs"] == docs
        added = 0
        for stage in summary["stages"]:
            assert stage["docs_in"] == docs, stage["name"]  # the previous stage's output is this one's input
            assert stage["docs_in"] == stage["docs_out"] + sum(stage["removed"].values()) - stage.get("added", 0), stage
            docs, added = stage["docs_out"], added + stage.get("added", 0)
        assert {"id", "text"} <= set(pl.read_parquet_schema(out / "data" / "part-00000.parquet"))  # even when empty
        kept, rejected = ids(out / "data"), ids(out / "rejected")
        assert len(kept) == docs == summary["output"]["docs"]
        all_ids = {f"doc-{s}-{r}" for s, shard in enumerate(corpus) for r in range(len(shard))}
        assert set(kept) | set(rejected) == all_ids
        assert len(kept) + len(rejected) == len(all_ids) + added  # every row, and every copy a mix made, ends in one place


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora, stage_lists(any_stages, 3))
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
