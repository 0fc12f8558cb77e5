"""exact_dedup and minhash_dedup: what is kept and removed, across shards, by policy, deterministically."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanmix.dedup.clusters import file_components, write_edges
from cleanmix.dedup.exact_dedup import ExactDedup
from cleanmix.dedup.minhash_dedup import MinhashDedup
from cleanmix.pipelines.order import order_of
from cleanmix.pipelines.registry import stage_types
from cleanmix.pipelines.stage import ORDER, Context, GlobalStage, StageResult
from conftest import crash_on_call

WORDS = (
    "the of and to in is was for on that with as by at from his her an were are which this be or has had "
    "not but their one its new after who first two been also they year more other time city people state "
    "school world during when all would into season him only most some there three between team may than"
).split()


def document(rng: random.Random, words: int = 120) -> str:
    return " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(words))


def run_engine(stage: GlobalStage, batches: list[pl.DataFrame], workdir: Path) -> tuple[dict, list[StageResult]]:
    """What the local engine does: scan every batch to Parquet, decide once, apply every batch."""
    scans = []
    for i, batch in enumerate(batches):
        path = workdir / f"scan-{i:05d}.parquet"
        stage.scan(batch).write_parquet(path)
        scans.append(path)
    details = stage.decide(scans, Context(workdir=workdir))
    return details, [stage.apply(batch, Context(workdir=workdir)) for batch in batches]


def shard(unit: int, ids: list[str], texts: list[str | None], **columns: list) -> pl.DataFrame:
    return pl.DataFrame({"id": ids, "text": texts, **columns}).with_columns(order_of(unit, 0, len(ids)).alias(ORDER))


def kept_ids(results: list[StageResult]) -> list[str]:
    return [i for r in results for i in r.kept["id"].to_list()]


def test_both_stages_are_registered() -> None:
    assert stage_types()["exact_dedup"] is ExactDedup
    assert stage_types()["minhash_dedup"] is MinhashDedup


def test_exact_dedup_normalises_case_and_whitespace_not_punctuation() -> None:
    df = pl.DataFrame({"id": list("abcde"), "text": ["Hello  World", "hello world\n", "Hello, world", "ＨＥＬＬＯ world", "x"]})
    out = ExactDedup().annotate(df)
    assert out.filter(pl.col("reason").is_null())["id"].to_list() == ["a", "c", "e"]
    assert out.filter(pl.col("reason").is_not_null())["duplicate_of"].to_list() == ["a", "a"]
    assert ExactDedup(punctuation=True).filter(df)["id"].to_list() == ["a", "e"]
    assert ExactDedup(lowercase=False, whitespace=False, nfkc=False).filter(df)["id"].to_list() == list("abcde")


def test_exact_duplicates_across_shards(tmp_path: Path) -> None:
    a = shard(0, ["a0", "a1", "a2"], ["same text", "only here", "twice"])
    b = shard(1, ["b0", "b1"], ["twice", "same  TEXT"])
    c = shard(7, ["c0"], ["same text"])
    details, results = run_engine(ExactDedup(), [a, b, c], tmp_path)
    assert kept_ids(results) == ["a0", "a1", "a2"]
    rejected = pl.concat([r.rejected for r in results])
    assert rejected["id"].to_list() == ["b0", "b1", "c0"]
    assert rejected["duplicate_of"].to_list() == ["a2", "a0", "a0"]
    assert set(rejected["reason"]) == {"exact_dedup:duplicate"}
    assert results[0].kept["dup_cluster_size"].to_list() == [3, 1, 2]
    assert details["clusters"] == 2 and details["duplicates"] == 3


def test_near_duplicates_across_shards_keep_one_per_cluster(tmp_path: Path) -> None:
    rng = random.Random(0)
    originals = [document(rng) for _ in range(20)]
    batches = [shard(0, [f"o{i}" for i in range(20)], originals)]
    copies = []
    for text in originals[:10]:
        words = text.split()
        words[rng.randrange(len(words))] = "edited"
        copies.append(" ".join(words) + " footer")
    batches.append(shard(1, [f"c{i}" for i in range(10)], copies))
    batches.append(shard(2, [f"d{i}" for i in range(5)], [c.upper() for c in copies[:5]]))
    details, results = run_engine(MinhashDedup(), batches, tmp_path)
    kept = pl.concat([r.kept for r in results])
    rejected = pl.concat([r.rejected for r in results])
    assert kept["id"].to_list() == [f"o{i}" for i in range(20)]
    assert rejected.height == 15 and set(rejected["reason"]) == {"minhash_dedup:near_duplicate"}
    assert rejected.sort("id")["duplicate_of"].to_list() == [f"o{i}" for i in range(10)] + [f"o{i}" for i in range(5)]
    assert kept["dup_cluster_id"].n_unique() == kept.height  # one document per cluster
    sizes = dict(zip(kept["id"], kept["dup_cluster_size"]))
    assert sizes["o0"] == 3 and sizes["o7"] == 2 and sizes["o15"] == 1
    assert details["clusters"] == 10 and details["duplicates"] == 15
    assert details["bands"] * details["rows"] <= details["num_perm"]


@pytest.mark.parametrize(
    ("stage", "expected", "also_kept"),
    [
        (MinhashDedup(), "a", ["e"]),
        (MinhashDedup(keep="longest"), "c", ["e"]),
        (MinhashDedup(keep="highest", keep_column="score"), "b", ["e"]),
        (MinhashDedup(keep="lowest", keep_column="score"), "d", ["e"]),
        (MinhashDedup(keep="source_priority", source_priority=["books", "web"]), "c", ["e"]),
        (ExactDedup(keep="highest", keep_column="score", punctuation=True), "b", ["c", "e"]),
        (ExactDedup(keep="source_priority", source_priority=["web"], punctuation=True), "a", ["c", "e"]),
    ],
)
def test_keep_policies(stage: GlobalStage, expected: str, also_kept: list[str]) -> None:
    base = " ".join(f"w{i}" for i in range(200))
    df = pl.DataFrame(
        {
            "id": list("abcde"),
            "text": [base, base + ".", base + " extra words", base + "!", "unrelated short text"],
            "score": [0.5, 0.9, 0.7, 0.1, 1.0],
            "source": ["web", "forum", "books", "web", "books"],
        }
    )
    result = stage.process(df)
    assert sorted(result.kept["id"]) == sorted([expected, *also_kept])
    assert set(result.rejected["duplicate_of"]) == {expected}


def test_keep_policy_needs_its_inputs() -> None:
    with pytest.raises(ValueError, match="keep_column"):
        MinhashDedup(keep="highest")
    with pytest.raises(ValueError, match="source_priority"):
        ExactDedup(keep="source_priority")
    with pytest.raises(ValueError, match="exceeds num_perm"):
        MinhashDedup(num_perm=64, bands=10, rows=10)
    with pytest.raises(ValueError, match="extra"):
        MinhashDedup(tresh=0.5)  # type: ignore[call-arg]


def test_empty_one_token_all_duplicate_and_no_duplicate_corpora() -> None:
    odd = pl.DataFrame({"id": list("abcdefg"), "text": ["", None, "one", "one", "ONE!", "two", "   "]})
    assert MinhashDedup().filter(odd)["id"].to_list() == ["a", "b", "c", "f", "g"]  # no shingles: never near-dup
    assert ExactDedup().filter(odd)["id"].to_list() == ["a", "c", "e", "f"]
    same = pl.DataFrame({"id": [str(i) for i in range(50)], "text": ["all the same words here, always"] * 50})
    for stage in (ExactDedup(), MinhashDedup()):
        kept = stage.filter(same)
        assert kept["id"].to_list() == ["0"] and kept["dup_cluster_size"].to_list() == [50]
    rng = random.Random(1)
    distinct = pl.DataFrame({"id": [str(i) for i in range(200)], "text": [document(rng, 60) for _ in range(200)]})
    for stage in (ExactDedup(), MinhashDedup()):
        kept = stage.filter(distinct)
        assert kept.height == 200 and set(kept["dup_cluster_size"]) == {1}
    assert MinhashDedup().filter(distinct.clear()).height == 0


def test_arrow_input_and_no_scans(tmp_path: Path) -> None:
    table = pl.DataFrame({"id": ["a", "b"], "text": ["same words in both", "same words in both"]}).to_arrow()
    assert MinhashDedup().filter(table).num_rows == 1
    stage = ExactDedup()
    assert stage.decide([], Context(workdir=tmp_path))["duplicates"] == 0
    assert stage.apply(shard(0, ["a"], ["text"]), Context(workdir=tmp_path)).kept.height == 1


def test_exact_then_minhash_sizes_count_every_input_document() -> None:
    base = " ".join(f"w{i}" for i in range(100))
    df = pl.DataFrame({"id": list("abcd"), "text": [base, base, base + " tail", "other text entirely"]})
    after_exact = ExactDedup().filter(df.with_row_index(ORDER).with_columns(pl.col(ORDER).cast(pl.UInt64)))
    kept = MinhashDedup().filter(after_exact)
    assert kept["id"].to_list() == ["a", "d"]
    assert kept["dup_cluster_size"].to_list() == [3, 1]


def test_cjk_is_shingled_by_character_and_mixed_text_works() -> None:
    zh = "国务院办公厅近日印发关于进一步加强城市规划建设管理工作的若干意见要求各地区各部门结合实际认真贯彻落实切实提高城市治理水平"
    df = pl.DataFrame({"id": list("abc"), "text": [zh, zh + "。", "完全不同的一段中文文字内容，与上面没有任何关系。"]})
    assert MinhashDedup().filter(df)["id"].to_list() == ["a", "c"]
    mixed = "Apple 发布了新款 iPhone 手机，售价为 999 美元，将于下周在中国和美国同步上市销售，消费者反应热烈。"
    near = mixed.replace("下周", "下月")
    sig, hashed = MinhashDedup().signatures(pl.Series([mixed, near, ""]))
    assert hashed.tolist() == [True, True, False]
    assert (sig[0] == sig[1]).mean() > 0.6


def test_signatures_are_stable_and_deterministic() -> None:
    """Pinned values: a change of library, platform or code that alters signatures fails here."""
    sig, _ = MinhashDedup(num_perm=8).signatures(pl.Series(["The quick brown fox jumps over the lazy dog", "中文文本去重测试"]))
    assert sig.dtype == np.uint32
    assert sig[0].tolist() == PINNED_EN and sig[1].tolist() == PINNED_ZH
    rng = random.Random(2)
    texts = [document(rng, 80) for _ in range(30)]
    texts += [t.replace("the", "a", 1) for t in texts[:15]]
    df = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
    first = MinhashDedup().annotate(df)
    assert 30 <= first["reason"].null_count() < 45
    again = MinhashDedup().annotate(df)
    assert first.equals(again)
    for verify in ("exact", "signature", "none"):
        whole = MinhashDedup(verify=verify).annotate(df)
        assert whole.equals(MinhashDedup(verify=verify, partition_mb=0.001).annotate(df))  # many partitions
    assert ExactDedup().annotate(df).equals(ExactDedup(partition_mb=0.0001).annotate(df))


PINNED_EN = [1189672768, 6450471, 192784907, 428602360, 473277618, 481224865, 2096926603, 2410926374]
PINNED_ZH = [1214190369, 1408297173, 661903626, 2139265652, 1173928381, 101497544, 887256098, 1261302289]


def test_an_interrupted_decide_is_redone_from_scratch(tmp_path: Path, monkeypatch) -> None:
    """A crash inside minhash's decide, then a re-run: the decide starts over in a fresh folder
    (leftovers of the crashed attempt are discarded) and the output is the uninterrupted run's."""
    import cleanmix.dedup.minhash_dedup as module
    import cleanmix.pipelines.formats
    from cleanmix.pipelines.config import validate_pipeline
    from cleanmix.pipelines.local import run_local
    from cleanmix.pipelines.progress import Reporter

    monkeypatch.setattr(cleanmix.pipelines.formats, "SMALL_FILE_ROWS", 1)  # a unit, and a scan, per file
    rng = random.Random(3)
    source = tmp_path / "in"
    source.mkdir()
    base = [document(rng) for _ in range(30)]
    for shard_index in range(3):
        texts = [text if (i + shard_index) % 4 else text.replace("the", "a", 1) for i, text in enumerate(base)]
        pl.DataFrame({"id": [f"s{shard_index}-{i}" for i in range(30)], "text": texts}).write_parquet(source / f"{shard_index}.parquet")

    def run(out: Path) -> dict:
        config = {"input": {"path": str(source)}, "output": {"path": str(out)}, "workers": 1, "stages": [{"type": "minhash_dedup"}]}
        return run_local(validate_pipeline(config), "p.yaml", Reporter(quiet=True))

    reference = run(tmp_path / "reference")
    bucket = module._bucket  # after the scans are split into partition files: a crash with scratch files written
    monkeypatch.setattr(module, "_bucket", crash_on_call(bucket, 1))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crashed")
    monkeypatch.setattr(module, "_bucket", bucket)
    leftover = tmp_path / "crashed" / "_work" / "global-minhash_dedup" / "decisions" / "u00000099" / "junk.parquet"
    leftover.parent.mkdir(parents=True)
    pl.DataFrame({ORDER: [0]}, schema={ORDER: pl.UInt64}).write_parquet(leftover)
    resumed = run(tmp_path / "crashed")
    assert resumed["stages"][0]["removed"] == reference["stages"][0]["removed"] == {"minhash_dedup:near_duplicate": 60}
    files = lambda out: {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}  # noqa: E731
    assert files(tmp_path / "crashed") == files(tmp_path / "reference")


def reference_components(left: np.ndarray, right: np.ndarray) -> tuple[list[int], list[int]]:
    """Union-find in plain Python: every node of an edge, and the smallest node of its component."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    nodes = sorted(parent)
    return nodes, [find(n) for n in nodes]


def test_connected_components_match_a_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, 3000, 2000).astype(np.uint64), rng.integers(0, 3000, 2000).astype(np.uint64)
    nodes, roots = file_components([write_edges(pl.DataFrame({"a": left, "b": right}), tmp_path / "edges.parquet", positions=True)])
    assert (nodes.tolist(), roots.tolist()) == reference_components(left, right)


@pytest.mark.parametrize("partition_mb", [256, 0.0001])
def test_candidate_pairs_count_each_pair_once_however_many_partitions(tmp_path: Path, partition_mb: float) -> None:
    """Five copies meet in every band; spread over many partitions they are still 4 pairs, verified once."""
    rng = random.Random(3)
    texts = [document(rng, 60)] * 5 + [document(rng, 60) for _ in range(5)]
    df = pl.DataFrame({"id": [str(i) for i in range(10)], "text": texts}).with_row_index(ORDER).with_columns(pl.col(ORDER).cast(pl.UInt64))
    stage = MinhashDedup(partition_mb=partition_mb)
    scan = tmp_path / "scan.parquet"
    stage.scan(df).write_parquet(scan)
    details = stage.decide([scan], Context(workdir=tmp_path / "work"))
    assert (partition_mb < 1) == (details["partitions"] > 1)
    assert details["candidate_pairs"] == details["verified_pairs"] == 4
    assert details["clusters"] == 1 and details["duplicates"] == 4


@pytest.mark.parametrize("num_perm", [64, 128])
def test_banding_is_datasketchs_choice(num_perm: int) -> None:
    """The (bands, rows) integrated in NumPy are the ones datasketch's scipy quadrature picks, for
    thresholds from 0.30 to 0.98 and every verify mode (their weights differ)."""
    from datasketch.lsh import _optimal_param

    from cleanmix.dedup.minhash_dedup import _RECALL_WEIGHTS, _banding

    for threshold in np.round(np.arange(0.30, 0.99, 0.02), 2).tolist():
        for verify, weights in _RECALL_WEIGHTS.items():
            assert _banding(threshold, num_perm, verify) == _optimal_param(threshold, num_perm, *weights), (threshold, verify)


HASHES = st.sets(st.one_of(st.integers(0, 60), st.integers(0, 2**32 - 1)), max_size=40)


@given(st.lists(st.tuples(HASHES, HASHES), max_size=30))
def test_exact_jaccard_is_set_jaccard(pairs: list[tuple[set[int], set[int]]]) -> None:
    """The vectorised exact verification equals |A ∩ B| / |A ∪ B| of Python sets, row by row
    (two empty sets: 1.0), on small and full-range 32-bit shingle hashes."""
    from cleanmix.dedup.verify import exact_jaccard

    left = pl.Series([np.asarray(sorted(a), "<u4").tobytes() for a, _ in pairs], dtype=pl.Binary)
    right = pl.Series([np.asarray(sorted(b), "<u4").tobytes() for _, b in pairs], dtype=pl.Binary)
    expected = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]
    assert exact_jaccard(left, right).tolist() == expected


def test_components_over_files_are_the_components_of_all_edges(tmp_path: Path) -> None:
    """Edges read one file at a time give the same (nodes, roots) as all edges at once, whatever
    the split (the union-find holds nodes, never every pair)."""
    rng = np.random.default_rng(1)
    left, right = rng.integers(0, 5000, 4000).astype(np.uint64), rng.integers(0, 5000, 4000).astype(np.uint64)
    cuts = [0, 7, 1000, 1001, 2500, 4000]
    files = []
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:])):
        files.append(write_edges(pl.DataFrame({"a": left[lo:hi], "b": right[lo:hi]}), tmp_path / f"p{i}.parquet", positions=True))
    nodes, roots = file_components(files[::-1])
    assert (nodes.tolist(), roots.tolist()) == reference_components(left, right)
    assert len(set(roots.tolist())) > 1  # more than one component: the split matters
    empty_nodes, empty_roots = file_components([])
    assert empty_nodes.size == empty_roots.size == 0


def test_pair_counts_do_not_depend_on_partitions(tmp_path: Path) -> None:
    """Candidate pairs meet in several band partitions and are made distinct per pair partition:
    the counts in the stats (candidate, verified, clusters) are the same with one partition or
    hundreds, for every verify mode, and exact verification drops some candidates."""
    rng = random.Random(3)
    texts = [document(rng, 60) for _ in range(40)]
    texts += [" ".join(t.split()[: 60 - k]) + " tail" for k, t in zip(range(1, 30), texts)]  # near copies, less and less alike
    df = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts}).with_row_index(ORDER)
    df = df.with_columns(pl.col(ORDER).cast(pl.UInt64))
    for verify in ("exact", "signature", "none"):
        details = []
        for partition_mb in (256, 0.0005):
            stage = MinhashDedup(verify=verify, partition_mb=partition_mb, threshold=0.7)
            work = tmp_path / f"{verify}-{partition_mb}"
            (work / "scans").mkdir(parents=True)
            scans = []
            for i, part in enumerate(df.iter_slices(25)):
                scans.append(work / "scans" / f"u{i}.parquet")
                stage.scan(part).write_parquet(scans[-1])
            found = stage.find_clusters(scans, Context(work / "g"), work / "g")
            details.append({k: v for k, v in found.items() if k != "partitions"})
        assert details[0] == details[1], verify
        if verify == "exact":
            assert details[0]["candidate_pairs"] > details[0]["verified_pairs"] > 0


TEXTS = st.lists(st.text(st.sampled_from("abc中文 \n"), max_size=40), min_size=1, max_size=12)


@settings(deadline=None)  # (the first example builds the hash power tables)
@given(TEXTS)
def test_columnar_shingles_are_the_python_reference_shingles(texts: list[str]) -> None:
    """Per text, the columnar shingle hashes are one per distinct shingle of the per-document Python
    reference (texts shorter than the shingle size: one; empty: none), and two texts share a hash
    exactly where they share a shingle."""
    from cleanmix.dedup.shingles import shingle_hashes, shingle_set, shingle_sets

    hashes, starts = shingle_hashes(pl.Series(texts), 3)
    sets = [np.frombuffer(values, "<u4").tolist() for values in shingle_sets(hashes, starts).to_list()]
    assert all(values == sorted(set(values)) for values in sets)
    reference = [shingle_set(text, 3) for text in texts]
    assert [len(s) for s in sets] == [len(r) for r in reference]
    shared = [[len(set(a) & set(b)) for b in sets] for a in sets]
    assert shared == [[len(a & b) for b in reference] for a in reference]


def test_only_paired_documents_have_their_payload_split(tmp_path: Path) -> None:
    """Exact verification copies shingle sets only of documents in some candidate pair: in a corpus of few
    duplicates, a few of them (the rest would fill partitions that no pair reads)."""
    from cleanmix.dedup.verify import SHINGLES, split_payload

    scan = tmp_path / "scan.parquet"
    pl.DataFrame({ORDER: np.arange(10, dtype=np.uint64), SHINGLES: [bytes([i]) * 4 for i in range(10)]}).write_parquet(scan)
    split_payload(([scan], "s0", SHINGLES, 3, tmp_path, np.array([2, 7, 9, 50], np.uint64)))
    split = pl.read_parquet(tmp_path / "payload" / "*" / "*.parquet").sort(ORDER)
    assert split[ORDER].to_list() == [2, 7, 9]
    assert split[SHINGLES].to_list() == [b"\x02" * 4, b"\x07" * 4, b"\t" * 4]
    split_payload(([scan], "s1", SHINGLES, 3, tmp_path / "none", np.zeros(0, np.uint64)))
    assert not (tmp_path / "none" / "payload").exists()


MEMBERS = st.lists(st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(-2, 2)), st.integers(1, 3)), max_size=40)


@given(MEMBERS, st.sampled_from(["first", "highest", "lowest"]))
def test_each_cluster_keeps_the_member_its_policy_names(members: list[tuple[int, int | None, int]], keep: str) -> None:
    """`keepers` against plain Python: in each group, the member with the highest (lowest) key, nulls
    last, ties and `first` to the earliest in input order, is kept; it names the cluster and is what
    the others duplicate; the size adds the members' weights. Members come in any order."""
    from cleanmix.dedup.clusters import CLUSTER_ID, CLUSTER_SIZE, DOC_ID, DUPLICATE_OF, GROUP, KEY, REMOVED, WEIGHT

    orders = [(i * 7919) % 1009 for i in range(len(members))]  # distinct, not ascending
    keys = [0 if keep == "first" else key for _, key, _ in members]
    df = pl.DataFrame({ORDER: orders, DOC_ID: [f"doc{o}" for o in orders], WEIGHT: [w for *_, w in members], KEY: keys,
                       GROUP: [g for g, *_ in members]},
                      schema={ORDER: pl.UInt64, DOC_ID: pl.String, WEIGHT: pl.UInt64, KEY: pl.Int64, GROUP: pl.UInt64})
    stage = MinhashDedup() if keep == "first" else MinhashDedup(keep=keep, keep_column="score")
    expected = {}
    for group in {g for g, *_ in members}:
        rows = [(o, k, w) for o, k, (g, _, w) in zip(orders, keys, members) if g == group]
        best = min(rows, key=lambda r: (r[1] is None, -(r[1] or 0) if keep == "highest" else (r[1] or 0), r[0]))
        for order, _, _ in rows:
            expected[order] = (best[0], sum(w for *_, w in rows), f"doc{best[0]}", order != best[0])
    got = stage.keepers(df)
    assert {row[0]: row[1:] for row in got.select(ORDER, CLUSTER_ID, CLUSTER_SIZE, DUPLICATE_OF, REMOVED).rows()} == expected
    assert got.height == len(members)
