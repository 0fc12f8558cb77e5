"""The local engine end to end on real Parquet files: outputs, stats, ids, edge cases."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cleanmix.pipelines.shards
from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter
from conftest import clean, write_pipeline, write_shards


def run(tmp_path: Path, input_path: Path, stages: list[dict], name: str = "out", **top) -> tuple[Path, dict]:
    out = tmp_path / name
    data = {"input": {"path": str(input_path)}, "output": {"path": str(out)}, "stages": stages}
    for key, value in top.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    summary = run_local(validate_pipeline(data), "test.yaml", Reporter(quiet=True))
    return out, summary


def check_invariants(summary: dict) -> None:
    docs = summary["input"]["docs"]
    for stage in summary["stages"]:
        assert stage["docs_in"] == docs, stage
        assert stage["docs_in"] == stage["docs_out"] + sum(stage["removed"].values()) - stage.get("added", 0)
        docs = stage["docs_out"]
    assert summary["output"]["docs"] == docs


def test_kept_rejected_and_stats_are_exact(tmp_path):
    corpus = write_shards(
        tmp_path / "in",
        [["short", "a document that is long enough", None], ["", "x" * 40, "ok\u200b  fine document here"]],
        meta=[[1, 2, 3], [4, 5, 6]],
    )
    out, summary = run(tmp_path, corpus, [{"type": "normalize"}, {"type": "length", "min_chars": 10}], output={"shard_rows": 2})
    check_invariants(summary)
    kept = pl.read_parquet(out / "data")
    assert kept.get_column("id").to_list() == ["doc-0-1", "doc-1-1", "doc-1-2"]
    assert kept.get_column("meta").to_list() == [2, 5, 6]
    assert kept.get_column("text").to_list()[2] == "ok fine document here"
    assert sorted(p.name for p in (out / "data").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    rejected = pl.read_parquet(out / "rejected" / "length").sort("id")
    assert rejected.select("id", "reason").rows() == [
        ("doc-0-0", "length:too_short"), ("doc-0-2", "length:no_text"), ("doc-1-0", "length:too_short")
    ]
    assert rejected.get_column("length_chars").to_list() == [5, None, 0]
    length, normalize = summary["stages"][1], summary["stages"][0]
    assert normalize["modified"] == {"normalize:control": 1, "normalize:whitespace": 1}
    assert length["removed"] == {"length:no_text": 1, "length:too_short": 2}
    assert length["bytes_out"] == len("a document that is long enough") + 40 + len("ok fine document here")
    assert summary["output"] == {"docs": 3, "bytes": length["bytes_out"], "shards": 2}
    detail = json.loads((out / "stats" / "length.json").read_text())
    assert detail["parameters"]["min_chars"] == 10
    assert [s["id"] for s in detail["samples"]["length:too_short"]] == ["doc-0-0", "doc-1-0"]
    assert detail["tallies"]["length_chars"] == {"0": 1, "5": 1, "20": 3}
    resolved = (out / "pipeline.yaml").read_text()
    assert "min_chars: 10" in resolved and "form: NFC" in resolved
    assert not (out / "_work").exists()
    assert "<td>length</td>" in (out / "report.html").read_text()


def test_stable_generated_ids_and_custom_columns(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pl.DataFrame({"body": ["one doc here", "two doc here"], "src": ["a", "b"]}).write_parquet(folder / "x.parquet")
    stages = [{"type": "length"}]
    cfg = {"input": {"text_column": "body", "id_column": "uid", "source_column": "src"}}
    out1, _ = run(tmp_path, folder, stages, "o1", **cfg)
    out2, _ = run(tmp_path, folder, stages, "o2", **cfg)
    first = pl.read_parquet(out1 / "data")
    assert first.columns == ["body", "src", "uid"]
    assert first.get_column("uid").to_list() == ["x.parquet:0", "x.parquet:1"]
    assert first.equals(pl.read_parquet(out2 / "data"))


def test_zero_row_shards_null_texts_and_empty_output(tmp_path):
    corpus = write_shards(tmp_path / "in", [[], [None, None], []])
    out, summary = run(tmp_path, corpus, [{"type": "normalize"}, {"type": "length"}])
    check_invariants(summary)
    assert summary["input"]["docs"] == 2
    assert summary["stages"][1]["removed"] == {"length:no_text": 2}
    assert summary["output"] == {"docs": 0, "bytes": 0, "shards": 1}
    empty = pq.read_table(out / "data" / "part-00000.parquet")
    assert empty.num_rows == 0 and {"id", "text"} <= set(empty.column_names)


def test_ten_megabyte_single_line_document(tmp_path):
    huge = "word " * 2_000_000
    corpus = write_shards(tmp_path / "in", [[huge, "small"]])
    out, summary = run(tmp_path, corpus, [{"type": "normalize"}, {"type": "length", "max_chars": 1_000_000}])
    check_invariants(summary)
    assert summary["stages"][1]["removed"] == {"length:too_long": 1}
    assert summary["input"]["bytes"] == len(huge) + 5
    rejected = pl.read_parquet(out / "rejected" / "length")
    assert rejected.get_column("text").str.len_chars().to_list() == [len(huge) - 1]


def test_no_stages_copies_input(tmp_path):
    corpus = write_shards(tmp_path / "in", [["a", "b"], ["c"]])
    out, summary = run(tmp_path, corpus, [])
    assert pl.read_parquet(out / "data").get_column("text").to_list() == ["a", "b", "c"]
    assert summary["stages"] == [] and summary["output"]["docs"] == 3


def test_shard_bytes_and_limit(tmp_path):
    corpus = write_shards(tmp_path / "in", [["x" * 10] * 25, ["y" * 10] * 25])
    out, summary = run(tmp_path, corpus, [], output={"shard_bytes": 100}, limit=33)
    sizes = [pq.read_metadata(p).num_rows for p in sorted((out / "data").iterdir())]
    assert sizes == [10, 10, 10, 3]
    assert summary["input"]["docs"] == 33


def test_a_shard_of_shard_bytes_ends_at_the_row_that_fills_it_or_at_shard_rows():
    from cleanmix.pipelines.compact import shard_starts

    assert shard_starts([np.array([5, 5, 0, 0, 5])], 10, 100) == [0, 2]  # empty texts after a full shard start the next
    assert shard_starts([np.array([4, 4]), np.array([4])], 10, 100) == [0, 2]  # before the row that would take it past
    assert shard_starts([np.array([3, 20, 3])], 10, 100) == [0, 1, 2]  # a row over shard_bytes alone
    assert shard_starts([np.ones(10, np.int64)], 100, 3) == [0, 3, 6, 9]  # shard_rows still ends a shard
    assert shard_starts([np.zeros(0, np.int64), np.zeros(0, np.int64)], 10, 100) == []


@given(st.lists(st.integers(0, 12), max_size=60), st.lists(st.integers(0, 60), max_size=5), st.integers(1, 30), st.integers(1, 9))
def test_shards_of_shard_bytes_start_where_a_plain_loop_starts_them_however_the_rows_come_in_files(sizes, cuts, shard_bytes, shard_rows):
    """`shard_starts` against the rule written plainly, one row at a time: a row joins the open shard if the
    shard is empty or the row fits; the shard closes once it holds shard_rows rows or shard_bytes bytes."""
    from cleanmix.pipelines.compact import shard_starts

    expected, rows, held = [], 0, 0
    for row, size in enumerate(sizes):
        if rows and held + size > shard_bytes:
            rows = held = 0
        if rows == 0:
            expected.append(row)
        rows, held = rows + 1, held + size
        if rows >= shard_rows or held >= shard_bytes:
            rows = held = 0
    bounds = sorted({0, len(sizes), *(min(c, len(sizes)) for c in cuts)})
    files = [np.array(sizes[a:b], np.int64) for a, b in zip(bounds, bounds[1:])]
    assert shard_starts(files, shard_bytes, shard_rows) == expected


def test_big_file_is_split_into_units_at_row_groups(tmp_path, monkeypatch):
    import cleanmix.pipelines.formats
    import cleanmix.pipelines.shards

    monkeypatch.setattr(cleanmix.pipelines.formats, "UNIT_ROWS", 100)
    folder = tmp_path / "in"
    folder.mkdir()
    table = pa.table({"id": list(range(1000)), "text": [f"document number {i}" for i in range(1000)]})
    pq.write_table(table, folder / "big.parquet", row_group_size=50)
    plan = cleanmix.pipelines.shards.plan_input(validate_pipeline({"input": {"path": str(folder)}, "output": {"path": "x"}}).input)
    assert [u.rows for u in plan.units] == [100] * 10
    out, summary = run(tmp_path, folder, [{"type": "length", "min_chars": 18}], workers=2)
    kept = pl.read_parquet(out / "data").get_column("id").to_list()
    assert kept == list(range(10, 1000))


def test_a_big_row_group_is_cut_into_row_ranges_numbered_as_one(tmp_path, monkeypatch):
    """One row group of 1,000 rows with ~4 units' worth of text, batches of 250 rows: four units of 250 rows, read from
    their first row, whose rows keep the numbers of one whole unit, so the output (cluster ids are
    row numbers) is byte for byte the output of one unit; generated ids keep the row's place."""
    import cleanmix.pipelines.formats
    import cleanmix.pipelines.shards

    folder = tmp_path / "in"
    folder.mkdir()
    texts = [f"document number {i % 300} of a few words" for i in range(1000)]  # copies: dedup's cluster ids
    pq.write_table(pa.table({"text": texts}), folder / "big.parquet")
    stages = [{"type": "length", "min_chars": 30}, {"type": "exact_dedup"}]
    whole, _ = run(tmp_path / "whole", folder, stages, workers=1, input={"batch_rows": 250})
    text_bytes = pq.read_metadata(folder / "big.parquet").row_group(0).column(0).total_uncompressed_size
    monkeypatch.setattr(cleanmix.pipelines.formats, "UNIT_TEXT_BYTES", text_bytes // 4 + 1)
    config = validate_pipeline({"input": {"path": str(folder), "batch_rows": 250}, "output": {"path": "x"}})
    plan = cleanmix.pipelines.shards.plan_input(config.input)
    assert [(u.slices[0].part, u.slices[0].first_row, u.rows, u.order_key, u.within) for u in plan.units] == [
        ((0,), r, 250, 0, r) for r in (0, 250, 500, 750)]
    cut, _ = run(tmp_path / "cut", folder, stages, workers=2, input={"batch_rows": 250})
    kept = pl.read_parquet(cut / "data")
    assert kept.get_column("id").to_list() == [f"big.parquet:{i}" for i in range(300)]
    assert kept.get_column("dup_cluster_size").max() == 4
    files = lambda out: {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}  # noqa: E731
    assert files(cut) == files(whole)


def test_arrow_and_polars_api_without_runner():
    from cleanmix.filters.length import Length
    from cleanmix.filters.normalize import Normalize

    df = pl.DataFrame({"id": [1, 2, 3], "text": ["A long enough document " * 3, "too short", None]})
    assert Length(min_chars=20).filter(df).get_column("id").to_list() == [1]
    table = Length(min_chars=20).filter(df.to_arrow())
    assert isinstance(table, pa.Table) and table.column("id").to_pylist() == [1]
    audit = Length(min_chars=20).annotate(df)
    assert audit.get_column("reason").to_list() == [None, "length:too_short", "length:no_text"]
    assert audit.get_column("length_chars").to_list() == [69, 9, None]
    assert Normalize(form="NFKC").filter(pl.DataFrame({"text": ["ｆｕｌｌ　width"]})).item(0, "text") == "full width"
    annotated = Length(min_chars=20, mode="annotate").filter(df)
    assert annotated.height == 3 and annotated.get_column("length_reason").to_list()[1] == "length:too_short"


def test_cli_validate_and_stages(tmp_path):
    corpus = write_shards(tmp_path / "in", [["a", "b"], ["c"]])
    path = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "o", [{"type": "normalize"}, {"type": "length"}])
    result = clean("validate", str(path), check=True)
    assert "2 file(s), 1 unit(s), 3 documents" in result.stdout  # small files are grouped
    assert "pass 0: normalize → length" in result.stdout
    assert not (tmp_path / "o").exists()
    listing = clean("stages", check=True).stdout
    assert "min_chars: int, default 1." in listing and "fix_mojibake" in listing


def test_cli_run_and_stats_table(tmp_path):
    corpus = write_shards(tmp_path / "in", [["a document", "b"], ["c"]])
    path = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "o", [{"type": "length", "min_chars": 2}])
    result = clean("run", str(path), check=True)
    assert "3 documents in, 1 kept" in result.stdout
    table = clean("stats", str(tmp_path / "o"), check=True).stdout
    assert "length:too_short 2" in table and "33.3%" in table


def test_input_sources_set_the_source_column(tmp_path):
    web = write_shards(tmp_path / "web", [["web one", "web two"]])
    books = write_shards(tmp_path / "books", [["book one"]])
    out = tmp_path / "out"
    config = validate_pipeline({"input": {"sources": {"web": str(web), "books": str(books)}}, "output": {"path": str(out)}})
    summary = run_local(config, "p.yaml", Reporter(quiet=True))
    kept = pl.read_parquet(out / "data")
    assert kept.select("id", "source").rows() == [("doc-0-0", "web"), ("doc-0-1", "web"), ("doc-0-0", "books")]
    assert summary["input"]["shards"] == 2


def test_input_needs_exactly_one_of_path_and_sources(tmp_path):
    from cleanmix.pipelines.errors import UserError

    for bad in ({}, {"path": "a", "sources": {"x": "b"}}, {"sources": {}}):
        try:
            validate_pipeline({"input": bad, "output": {"path": "o"}})
        except UserError as error:
            assert "input" in str(error)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_external_sort_by_order_is_exact_with_bounded_buckets(tmp_path, monkeypatch):
    import numpy as np

    import cleanmix.pipelines.compact
    from cleanmix.pipelines.compact import sort_by_order
    from cleanmix.pipelines.local import Pool

    monkeypatch.setattr(cleanmix.pipelines.compact, "SORT_BUCKET_ROWS", 700)
    order = np.random.default_rng(0).permutation(5000).astype(np.uint64)
    files = []
    for unit in range(5):
        path = tmp_path / f"u{unit:05d}.parquet"
        chunk = order[unit * 1000:(unit + 1) * 1000]
        pl.DataFrame({"_cm_order": chunk, "text": [str(v) for v in chunk]}).write_parquet(path)
        files.append(path)
    buckets = sort_by_order(files, tmp_path / "sorted", Pool(1).map)
    assert len(buckets) >= 6
    assert max(pq.read_metadata(b).num_rows for b in buckets) < 1400
    rows = pl.concat([pl.read_parquet(b) for b in buckets])
    assert rows.get_column("_cm_order").to_list() == list(range(5000))
    assert rows.get_column("text").to_list() == [str(v) for v in range(5000)]


def test_shared_tokens_give_what_each_stage_gives_alone(tmp_path):
    """The runner tokenizes once per batch for the quality filters, again after a stage that changes the
    text (pii), and writes no token column; every measure equals the stage's own on the same rows."""
    prose = (
        "The committee met on Tuesday to review the budget. Members agreed that the library should open longer "
        "on weekends, and the treasurer explained how the costs would be covered.\nWrite to {} with questions. "
        "The next meeting will be held in the town hall, where residents may speak about the plans for the park."
    )
    texts = [prose.format(f"clerk{i}@example.org, office{i}@example.org or help{i}@example.org") for i in range(4)]
    texts += ["buy now\n" * 30, "今年春天，这个小镇的图书馆进行了一次全面的修缮。工人们更换了屋顶，并且把阅览室的窗户都换成了新的。" * 3]
    corpus = write_shards(tmp_path / "in", [texts])
    stages = [{"type": "gopher_quality"}, {"type": "gopher_repetition"}, {"type": "pii"}, {"type": "fineweb_quality", "mode": "annotate"}]
    out, _ = run(tmp_path, corpus, stages)
    kept = pl.read_parquet(out / "data")
    rejected = pl.concat([pl.read_parquet(path) for path in sorted((out / "rejected").rglob("*.parquet"))], how="diagonal")
    assert not any(c.startswith("_cm") for c in [*kept.columns, *rejected.columns])

    from cleanmix.pipelines.registry import stage_types

    df = pl.read_parquet(corpus)
    for spec in stages[:-1]:
        df = stage_types()[spec["type"]](**spec).filter(df)
    alone = stage_types()["fineweb_quality"](mode="annotate").process(df).kept
    assert kept.equals(alone)
    assert kept.height == 4 and sorted(rejected["id"]) == ["doc-0-4", "doc-0-5"]
    before = stage_types()["fineweb_quality"]().annotate(pl.read_parquet(corpus).head(1))["fineweb_quality_newlines_per_word"][0]
    assert kept["fineweb_quality_newlines_per_word"][0] != pytest.approx(before)  # pii changed the tokens


def test_many_tiny_files_are_grouped_and_a_bad_one_is_skipped_alone(tmp_path):
    """300 files of 2 documents are grouped into units of at least 256 rows; with on_error: skip, a
    damaged one among them is left out and counted, and every document of the others is there."""
    from conftest import clean, write_pipeline

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(300):
        pq.write_table(pa.table({"text": [f"file {i} first document", f"file {i} second document"]}),
                       folder / f"f{i:03d}.parquet")
    data = bytearray((folder / "f150.parquet").read_bytes())
    data[4:60] = b"\x00" * 56  # its column data destroyed, its footer intact: found only when read
    (folder / "f150.parquet").write_bytes(bytes(data))
    plan = cleanmix.pipelines.shards.plan_input(validate_pipeline({"input": {"path": str(folder)}, "output": {"path": "x"}}).input)
    assert [len(unit.slices) for unit in plan.units] == [128, 128, 44]
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", folder, out, [{"type": "length", "min_chars": 1}],
                              input={"on_error": "skip"})
    clean("run", str(pipeline), "-q", check=True)
    summary = json.loads((out / "stats" / "summary.json").read_text())
    assert list(summary["input"]["skipped_shards"]) == [str(folder / "f150.parquet")]
    assert summary["input"]["docs"] == summary["output"]["docs"] == 598
    ids = pl.read_parquet(out / "data").get_column("id").to_list()
    assert ids == [f"f{i:03d}.parquet:{r}" for i in range(300) if i != 150 for r in range(2)]
    failed = clean("run", str(write_pipeline(tmp_path / "q.yaml", folder, tmp_path / "failed", [{"type": "length"}])), "-q")
    assert failed.returncode == 2 and "f150.parquet could not be read" in failed.stderr, failed.stderr


def test_grouped_small_files_keep_their_own_ids_and_types(tmp_path):
    """Files grouped into one unit differ: ids in one, none in another (generated), a column all
    null in one and strings in another. Every value reaches the output as it was."""
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["one text", "two text"], "tag": pa.nulls(2, pa.string())}),
                   folder / "1.parquet")
    pq.write_table(pa.table({"text": ["three text"], "tag": pa.nulls(1)}), folder / "2.parquet")
    pq.write_table(pa.table({"id": ["d"], "text": ["four text"], "tag": ["x"]}), folder / "3.parquet")
    out, summary = run(tmp_path, folder, [])
    kept = pl.read_parquet(out / "data")
    assert kept.get_column("id").to_list() == ["a", "b", "2.parquet:0", "d"]
    assert kept.get_column("tag").to_list() == [None, None, None, "x"]
    assert summary["output"]["docs"] == 4


def test_the_same_id_in_two_shards_is_counted_and_warned(tmp_path):
    corpus = write_shards(tmp_path / "in", [["one", "two", "three"], ["four", "five"]])
    pl.DataFrame({"id": ["doc-0-1", "doc-0-1", "other"], "text": ["six", "seven", "eight"]}).write_parquet(
        tmp_path / "in" / "shard-002.parquet")
    result = clean("run", str(write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "out", [])), check=True)
    summary = json.loads((tmp_path / "out" / "stats" / "summary.json").read_text())
    assert summary["input"]["duplicate_ids"] == 3  # doc-0-1 three times
    assert "3 input documents share their id with another" in result.stderr
    assert "share their id with another" in (tmp_path / "out" / "report.html").read_text()
    (tmp_path / "in" / "shard-002.parquet").unlink()
    unique = clean("run", str(write_pipeline(tmp_path / "q.yaml", corpus, tmp_path / "unique", [])), check=True)
    assert json.loads((tmp_path / "unique" / "stats" / "summary.json").read_text())["input"]["duplicate_ids"] == 0
    assert "share their id" not in unique.stderr


def test_grouped_small_files_keep_the_input_order(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": ["small first"]}), folder / "1.parquet")
    pq.write_table(pa.table({"id": [f"b{i}" for i in range(300)], "text": ["a big file"] * 300}), folder / "2.parquet")
    pq.write_table(pa.table({"id": ["c"], "text": ["small last"]}), folder / "3.parquet")
    out, _ = run(tmp_path, folder, [])
    assert pl.read_parquet(out / "data").get_column("id").to_list() == ["a", *(f"b{i}" for i in range(300)), "c"]


def test_one_job_per_output_shard_writes_the_bytes_of_one_sequential_job(tmp_path, monkeypatch):
    """Shards written each by its own job (rows found from the unit files' footers, or their texts' sizes
    with shard_bytes; read from row groups that do not start at a batch) are byte for byte those one job
    writes in order."""
    import numpy as np
    import pyarrow.parquet as pq

    import cleanmix.pipelines.compact as compact

    monkeypatch.setattr(compact, "ROW_GROUP_BYTES", 20_000)  # several row groups per shard
    rng = np.random.default_rng(0)
    files, order = [], 0
    for unit, groups in enumerate([[9000, 3001], [], [5], [8200, 8200, 17]]):
        path = tmp_path / "units" / f"u{unit:05d}.parquet"
        path.parent.mkdir(exist_ok=True)
        writer = None
        for rows in groups or [0]:
            lengths = rng.integers(0, 40, rows)
            df = pl.DataFrame({"_cm_order": np.arange(order, order + rows, dtype=np.uint64),
                               "text": [("ab" * int(n)) if n % 7 else None for n in lengths]},
                              schema={"_cm_order": pl.UInt64, "text": pl.String})
            order += rows
            writer = writer or pq.ParquetWriter(path, df.to_arrow().schema)
            writer.write_table(df.to_arrow())
        writer.close()
        files.append(path)
    limits = [(4000, None, "parquet"), (777, None, "jsonl.gz"), (10**6, None, "parquet"),
              (10**6, 20_000, "parquet"), (300, 7_000, "jsonl.gz"), (10**6, 1_000, "parquet")]  # shard_bytes: texts of even sizes and nulls
    for case, (shard_rows, shard_bytes, fmt) in enumerate(limits):
        job = compact.Compaction(tuple(files), tmp_path / f"out-{case}", (("text", "body"),), shard_rows, shard_bytes, True, fmt)
        cuts = compact.plan_cuts((job, tmp_path / f"cuts-{case}"))
        done = [compact.compact(cut) for cut in cuts]
        for cut, (shards, _, _) in zip(cuts, done):
            assert shards == 1
            compact.place(cut, shards)
        whole = compact.Cut(tuple((f, 0, pq.read_metadata(f).num_rows) for f in files), 0, tmp_path / f"one-{case}",
                            cuts[0].schema, job)
        assert compact.compact(whole) == tuple(map(sum, zip(*done)))
        ours = sorted(job.dest.iterdir())
        assert [p.name for p in ours] == sorted(p.name for p in whole.folder.glob(f"part-*.{fmt}"))
        assert all(p.read_bytes() == (whole.folder / p.name).read_bytes() for p in ours)


def test_shared_columns_are_made_once_and_found_again_for_the_rows_a_stage_sees():
    """A shared column is computed at its first reader when a later one reads it, then gathered for the rows
    each later reader sees (after removals, after rows were reordered), never passed on by a stage, and made
    afresh after a stage that changes the text."""
    from typing import ClassVar, Literal

    from cleanmix.pipelines.stage import ROW, Filter, Mapper, Rule, SharedColumn, SharedColumns

    made: list[int] = []
    seen: list[tuple[list[int], list[int]]] = []  # (the shared column as a stage got it, the lengths of its rows)

    def byte_lengths(text: pl.Expr) -> pl.Expr:
        return text.map_batches(lambda texts: made.append(len(texts)) or texts.str.len_bytes(), return_dtype=pl.UInt32)

    lengths = SharedColumn("_cm_lengths", byte_lengths)

    class Shortest(Filter):
        type: Literal["shortest"] = "shortest"
        least: int
        shared: ClassVar = (lengths,)

        def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
            seen.append((lengths.of(df).to_list(), df["text"].str.len_bytes().to_list()))
            return df.with_columns(lengths.of(df).alias(f"{self.label}_bytes"))

        def rules(self) -> list[Rule]:
            return [Rule.below("short", f"{self.label}_bytes", self.least)]

    class Longer(Mapper):
        type: Literal["longer"] = "longer"

        def transform(self, df: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
            return df.with_columns(pl.col("text") + "!!"), {"longer": df.height}

    stages = [Shortest(least=3, name="a"), Shortest(least=6, name="b"), Longer(), Shortest(least=9, name="c"),
              Shortest(least=10, name="d")]
    texts = ["x" * n for n in (8, 1, 5, 12, 3, 7, 2, 9, 6)]
    df, held = pl.DataFrame({"id": [str(i) for i in range(9)], "text": texts}), SharedColumns(stages)
    for i, stage in enumerate(stages):
        result = stage.process(held.attach(df.reverse() if i == 4 else df, i))  # (d: rows in another order)
        assert "_cm_lengths" not in result.kept.columns and "_cm_lengths" not in result.rejected.columns
        df = result.kept.drop(ROW) if isinstance(stage, Mapper) else result.kept
    assert [got == wanted for got, wanted in seen] == [True] * 4
    assert [len(got) for got, _ in seen] == [9, 7, 5, 4]
    assert made == [9, 5, 4]  # at a (b gathers what a kept), at c (the text changed), at d (rows reordered)
    assert sorted(df["text"].str.len_bytes()) == [10, 11, 14]


BLAS_THREADS = """
import ctypes, sys
from cleanmix.pipelines.cli import main
try:
    main(["run", sys.argv[1], "-q"])
except SystemExit as e:
    assert not e.code, e.code
import numpy  # (the run imported it)
libraries = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower() and ".so" in line}
counts = [getattr(ctypes.CDLL(lib), name)() for lib in libraries for name in
          ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")
          if hasattr(ctypes.CDLL(lib), name)]
print("blas threads:", *counts)
"""


def test_a_run_starts_no_blas_threads(tmp_path):
    """NumPy's OpenBLAS would start a thread per core in every process of a run (the driver and each
    worker) for linear algebra no stage does; `clean run` asks it for one."""
    import subprocess
    import sys

    if (os.cpu_count() or 1) < 2 or not sys.platform.startswith("linux"):
        pytest.skip("OpenBLAS starts one thread on one core anyway; /proc/self/maps is Linux's")
    pipeline = write_pipeline(tmp_path / "p.yaml", write_shards(tmp_path / "in", [["some text", "more text"]]), tmp_path / "out",
                              [{"type": "length", "min_chars": 5}], workers=1)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    found = subprocess.run([sys.executable, "-c", BLAS_THREADS, str(pipeline)], capture_output=True, text=True, timeout=300,
                           check=True, env=env)
    line = found.stdout.splitlines()[-1]
    if line == "blas threads:":
        pytest.skip("this NumPy has no OpenBLAS")
    assert line == "blas threads: 1"


def test_a_run_imports_only_what_it_uses(tmp_path):
    """A one-worker run of the speed issue's pipeline leaves out what its start-up once paid for: pandas (pyarrow
    imports it for `pa.array(mask=...)`, `to_numpy`, scalars: 0.15 s), pyarrow.compute (Polars imports it for a
    pyarrow array: 30 ms), fastText (the bundled model runs in `_fasttext.c`), rich off a terminal, the process pool."""
    import subprocess
    import sys

    texts = ["The council met on Tuesday to discuss the new library and the park. " * 20, None, "",
             "今年春天，这个小镇的图书馆进行了一次全面的修缮，工人们更换了屋顶。" * 10,
             "Bonjour à tous, voici la réunion du conseil. " * 20]
    corpus = write_shards(tmp_path / "in", [texts, texts[::-1]])
    stages = [{"type": "language", "languages": ["en", "zh"]}, {"type": "gopher_repetition"}, {"type": "gopher_quality"},
              {"type": "c4_quality"}, {"type": "fineweb_quality"}, {"type": "pii"}, {"type": "minhash_dedup"}]
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "out", stages, workers=1)
    script = ("import sys\nfrom cleanmix.pipelines.cli import main\ntry:\n    main(['run', sys.argv[1]])\nexcept SystemExit as e:\n"
              "    assert not e.code, e.code\nprint('imported:', *(m for m in ('pandas', 'pyarrow.compute', 'fasttext', 'rich', "
              "'concurrent.futures.process') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", script, str(pipeline)], capture_output=True, text=True, timeout=300, check=True)
    assert found.stdout.splitlines()[-1] == "imported:"
    assert (tmp_path / "out" / "stats" / "summary.json").exists()


def test_the_shards_of_rows_a_pass_removed_are_started_when_the_pass_is_done(tmp_path, monkeypatch):
    """The rows a pass's stages removed are final when the pass ends: their shards are started on the workers
    then (the last pass's with data/) and written while the dedup decides, not after everything else; the
    output is what one worker writes at the end."""
    import cleanmix.pipelines.run as run_module
    from cleanmix.pipelines.local import Pool

    texts = [f"document {i % 30} with enough words in it to be kept by the length filter" if i % 4 else "short" for i in range(400)]
    corpus = write_shards(tmp_path / "in", [texts[:200], texts[200:]])
    stages = [{"type": "length", "min_chars": 20}, {"type": "minhash_dedup", "ngram": 3}]
    events: list[str] = []
    start, decide = Pool.start, run_module.decide

    def recorded_start(self, fn, items):
        items = list(items)
        events.extend(f"start {fn.__name__} {cut.job.dest.name}" for cut in items if fn is run_module.compact)
        return start(self, fn, items)

    def recorded_decide(state, seg):
        events.append("decide")
        return decide(state, seg)

    monkeypatch.setattr(Pool, "start", recorded_start)
    monkeypatch.setattr(run_module, "decide", recorded_decide)
    out, summary = run(tmp_path, corpus, stages, name="two", workers=2)
    assert events == ["start compact length", "decide", "start compact data", "start compact minhash_dedup"]
    monkeypatch.undo()
    one, _ = run(tmp_path, corpus, stages, name="one", workers=1)
    assert summary["stages"][0]["removed"] and summary["stages"][1]["removed"]
    files = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    assert files == sorted(p.relative_to(one) for p in one.rglob("*.parquet"))
    assert all((out / f).read_bytes() == (one / f).read_bytes() for f in files)
