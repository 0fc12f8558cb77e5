"""JSON Lines and WARC/WET in, JSON Lines out: the demo corpus through the demo's document stages,
kept exactly as the same documents given as Parquet, byte-identical across worker counts, resumed
after SIGKILL, and malformed input named or counted."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import re
import sys
from pathlib import Path

import polars as pl
import pytest
import zstandard
from test_resume import kill_when

import cleanmix.pipelines.jsonl
from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.shards import plan_input
from conftest import REPO, assert_user_error, clean, write_pipeline

CLUSTER = "dup_cluster_id"
"""Numbered from the order key, which counts units: the same clusters, other numbers, when files are cut otherwise."""
STAGES = [{"type": "normalize"}, {"type": "length", "min_chars": 20}, {"type": "pii"}, {"type": "exact_dedup"}]


def demo() -> pl.DataFrame:
    """The demo corpus (812 real English and Chinese documents, planted duplicates and PII) and a nested column."""
    df = pl.read_parquet(REPO / "sample" / "demo").select("id", "text", "source")
    return df.with_columns(pl.struct(pl.col("source"), n=pl.int_range(pl.len())).alias("meta"))


def write_jsonl(df: pl.DataFrame, path: Path, blank_every: int = 0) -> Path:
    """JSON Lines compressed by the file's extension; a blank line after every `blank_every` lines."""
    lines = df.write_ndjson().rstrip("\n").split("\n")  # not splitlines(): texts hold U+2028 and the like
    if blank_every:
        lines = [piece for i, line in enumerate(lines) for piece in ([line, ""] if i % blank_every == blank_every - 1 else [line])]
    data = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    elif path.suffix == ".bz2":
        data = bz2.compress(data)
    elif path.suffix == ".zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def run(input_path: Path, out: Path, stages: list[dict] = STAGES, **top) -> dict:
    data = {"input": {"path": str(input_path)}, "output": {"path": str(out)}, "stages": stages, "workers": 1}
    for key, value in top.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    return run_local(validate_pipeline(data), "test.yaml", Reporter(quiet=True))


def conserved(summary: dict) -> None:
    docs = summary["input"]["docs"]
    for stage in summary["stages"]:
        assert stage["docs_in"] == docs == stage["docs_out"] + sum(stage["removed"].values()), stage
        docs = stage["docs_out"]
    assert summary["output"]["docs"] == docs


def kept(out: Path) -> pl.DataFrame:
    files = sorted((out / "data").iterdir())
    frames = [pl.read_parquet(f) if f.suffix == ".parquet" else pl.read_ndjson(io.BytesIO(_decompress(f))) for f in files]
    return pl.concat(frames, how="diagonal_relaxed")


def _decompress(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else zstandard.ZstdDecompressor().decompressobj().decompress(data)


def data_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "data").iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, pl.DataFrame]:
    """The demo as Parquet, through the stages: what every other format must keep."""
    folder = tmp_path_factory.mktemp("parquet")
    demo().write_parquet(folder / "in.parquet")
    summary = run(folder / "in.parquet", folder / "out")
    conserved(summary)
    return summary, kept(folder / "out")


@pytest.mark.parametrize("layout", ["zst-folder", "gz", "bz2"])
def test_compressed_jsonl_keeps_what_parquet_keeps(tmp_path, reference, layout):
    df = demo()
    if layout == "zst-folder":
        for i, part in enumerate(df.iter_slices(300)):
            write_jsonl(part, tmp_path / "in" / f"part-{i}.jsonl.zst")
        source = tmp_path / "in"
    else:
        source = write_jsonl(df, tmp_path / f"demo.jsonl.{layout}")
    summary = run(source, tmp_path / "out")
    conserved(summary)
    expected_summary, expected = reference
    assert summary["input"]["docs"] == 812 and summary["input"]["skipped_records"] == {}
    assert [s["removed"] for s in summary["stages"]] == [s["removed"] for s in expected_summary["stages"]]
    got = kept(tmp_path / "out")
    assert got.columns == expected.columns
    assert got.drop(CLUSTER).equals(expected.drop(CLUSTER))  # the same documents, texts, nested columns and order


def test_plain_jsonl_is_split_at_lines_and_identical_with_1_or_2_workers(tmp_path, reference, monkeypatch):
    monkeypatch.setattr(cleanmix.pipelines.jsonl, "UNIT_BYTES", 400_000)  # planning is in this process
    source = write_jsonl(demo(), tmp_path / "demo.jsonl", blank_every=100)
    config = validate_pipeline({"input": {"path": str(source)}, "output": {"path": "x"}}).input
    slices = [unit.slices[0] for unit in plan_input(config).units]
    assert len(slices) >= 4 and slices[0].part[0] == 0 and slices[-1].part[1] == source.stat().st_size
    assert all(a.part[1] == b.part[0] for a, b in zip(slices, slices[1:]))
    lines = source.read_bytes()[: slices[1].part[0]].count(b"\n")
    assert slices[1].first_row == lines and source.read_bytes()[slices[1].part[0] - 1] == ord("\n")
    conserved(run(source, tmp_path / "one", workers=1))
    run(source, tmp_path / "two", workers=2)
    assert data_files(tmp_path / "one") == data_files(tmp_path / "two")
    assert kept(tmp_path / "one").drop(CLUSTER).equals(reference[1].drop(CLUSTER))


def test_generated_ids_are_lines_and_a_malformed_line_is_named_or_counted(tmp_path):
    docs = [json.dumps({"text": f"document number {i} with enough words"}) for i in range(10)]
    docs[3] = '{"text": "cut short'
    docs[6] = "[1, 2]"
    source = tmp_path / "in" / "web.jsonl"
    source.parent.mkdir()
    source.write_text("\n".join(docs[:5] + [""] + docs[5:]) + "\n")  # a blank line 6: line numbers are the file's
    failed = clean("run", str(write_pipeline(tmp_path / "p.yaml", source, tmp_path / "out", STAGES)))
    assert_user_error(failed, f"input file {source}, line 4: not valid JSON", "input.on_error: skip")
    assert not (tmp_path / "out").exists()
    summary = run(source, tmp_path / "skip", input={"on_error": "skip"})
    conserved(summary)
    assert summary["input"]["docs"] == 8
    assert summary["input"]["skipped_records"] == {str(source): {"malformed_line": 2}}
    assert kept(tmp_path / "skip").get_column("id").to_list() == [f"web.jsonl:{n}" for n in (1, 2, 3, 5, 7, 9, 10, 11)]


def test_a_field_the_first_lines_never_had_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(cleanmix.pipelines.jsonl, "INFER_LINES", 2)
    monkeypatch.setattr(cleanmix.pipelines.jsonl, "BLOCK_BYTES", 64)
    source = tmp_path / "a.jsonl"
    source.write_text('{"text": "a long enough document"}\n' * 4 + '{"text": "another long document", "url": "x"}\n')
    with pytest.raises(Exception, match=r"a.jsonl, line 5: field 'url' is not in the input's schema"):
        run(source, tmp_path / "out")


@pytest.mark.parametrize("compression", ["gz", "zst"])
def test_jsonl_output_is_readable_and_identical_across_worker_counts(tmp_path, reference, compression):
    source = tmp_path / "in"
    for i, part in enumerate(demo().iter_slices(100)):
        write_jsonl(part, source / f"part-{i}.jsonl")
    output = {"format": f"jsonl.{compression}", "shard_rows": 300}
    one = run(source, tmp_path / "one", output=output, workers=1)
    run(source, tmp_path / "two", output=output, workers=2)
    files = data_files(tmp_path / "one")
    assert list(files) == [f"part-0000{i}.jsonl.{compression}" for i in range(one["output"]["shards"])] and len(files) > 1
    assert files == data_files(tmp_path / "two")
    got, expected = kept(tmp_path / "one"), reference[1]
    assert got.get_column("id").to_list() == expected.get_column("id").to_list()
    assert got.get_column("text").to_list() == expected.get_column("text").to_list()
    assert got.get_column("meta").to_list() == expected.get_column("meta").to_list()
    rejected = (tmp_path / "one" / "rejected").rglob("part-*")
    assert sorted(str(p.relative_to(tmp_path / "one")) for p in rejected) == [
        "rejected/exact_dedup/part-00000.parquet", "rejected/length/part-00000.parquet"]  # rejected/ stays Parquet
    from cleanmix.pipelines.compare import compare

    both = compare(tmp_path / "one", tmp_path / "two")  # `clean compare` reads JSON Lines output folders too
    assert both["kept_by_both"] == got.get_column("id").n_unique() > 0
    assert both["kept_only_by_a"]["docs"] == both["kept_only_by_b"]["docs"] == 0


def test_sigkill_then_rerun_gives_identical_output_on_jsonl(tmp_path):
    """24 plain .jsonl files, one unit each: killed with 2 workers inside the first pass, finished with 1."""
    df = demo()
    for i in range(24):
        longer = df.slice(i * 34, 34).with_columns(pl.concat_str([pl.col("text")] * 3, separator=" "))  # > SMALL_FILE_BYTES
        write_jsonl(longer, tmp_path / "in" / f"s{i:02d}.jsonl")
    reference, out = tmp_path / "reference", tmp_path / "crashed"
    top = {"workers": 2, "output": {"format": "jsonl.gz"}}
    clean("run", str(write_pipeline(tmp_path / "ref.yaml", tmp_path / "in", reference, STAGES, **top)), "-q", check=True)
    pipeline = write_pipeline(tmp_path / "p.yaml", tmp_path / "in", out, STAGES, **top)
    cmd = [sys.executable, "-m", "cleanmix.pipelines.cli", "run", str(pipeline), "-q"]
    assert kill_when(cmd, out, 6)
    resumed = clean("run", str(pipeline), "--workers", "1", check=True)
    assert re.search(r"\(\d+ already done, resuming\)", " ".join(resumed.stderr.split()))
    assert data_files(out) == data_files(reference)
    a, b = (json.loads((d / "stats" / "summary.json").read_text()) for d in (out, reference))
    assert a["input"] == b["input"] and a["output"] == b["output"]


def test_warc_and_wet_pages_are_documents_and_other_records_are_counted(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    texts = demo().get_column("text").to_list()[:40]
    warc, wet = tmp_path / "in" / "crawl.warc.gz", tmp_path / "in" / "crawl.wet"
    warc.parent.mkdir()
    expected = []
    with open(warc, "wb") as file:
        writer = WARCWriter(file, gzip=True)
        writer.write_record(writer.create_warcinfo_record("crawl.warc.gz", {"software": "test"}))
        number = 1
        for i, text in enumerate(texts):
            url = f"https://example.org/{i}"
            writer.write_record(writer.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
            number += 1
            html, kind = f"<html><body><p>{text}</p></body></html>", "text/html; charset=utf-8" if i % 8 else "image/png"
            headers = StatusAndHeaders("200 OK", [("Content-Type", kind)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(html.encode()), http_headers=headers))
            if i % 8:
                expected.append({"id": f"crawl.warc.gz:{number}", "text": html})
            number += 1
    with open(wet, "wb") as file:
        writer = WARCWriter(file, gzip=False)
        for i, text in enumerate(texts[:10]):
            writer.write_record(writer.create_warc_record(f"https://example.org/{i}", "conversion", payload=io.BytesIO(text.encode()),
                                                          warc_headers_dict={"Content-Type": "text/plain"}))
            expected.append({"id": f"crawl.wet:{i}", "text": text})
    summary = run(tmp_path / "in", tmp_path / "out")
    conserved(summary)
    assert summary["input"]["docs"] == 35 + 10
    assert summary["input"]["skipped_records"] == {str(warc): {"warcinfo_record": 1, "request_record": 40, "non_html_response": 5}}
    got = kept(tmp_path / "out")
    assert {"html", "url", "warc_date", "warc_record_id", "content_type"} <= set(got.columns)
    page = got.filter(pl.col("id") == "crawl.warc.gz:4").row(0, named=True)
    assert page["url"] == "https://example.org/1" and page["content_type"] == "text/html"
    assert page["warc_record_id"].startswith("<urn:uuid:") and page["html"] == page["text"]
    converted = got.filter(pl.col("id").str.starts_with("crawl.wet"))
    assert converted.height and converted.get_column("html").is_null().all()
    pl.DataFrame(expected).write_parquet(tmp_path / "same.parquet")
    run(tmp_path / "same.parquet", tmp_path / "parquet")
    assert got.get_column("id").to_list() == kept(tmp_path / "parquet").get_column("id").to_list()


@pytest.mark.parametrize("suffix", ["zst", "gz", "bz2"])
def test_a_compressed_file_cut_short_is_named_or_skipped_never_read_short(tmp_path, suffix):
    whole = write_jsonl(demo(), tmp_path / "in" / f"a.jsonl.{suffix}")
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 2])
    write_jsonl(demo().head(50), tmp_path / "in" / "b.jsonl")
    with pytest.raises(Exception, match=rf"input file {re.escape(str(whole))} is not a readable JSON Lines file \(Compressed file ended"):
        run(tmp_path / "in", tmp_path / "out")
    summary = run(tmp_path / "in", tmp_path / "skip", input={"on_error": "skip"})
    assert list(summary["input"]["skipped_shards"]) == [str(whole)] and summary["input"]["docs"] == 50


def test_a_file_cut_short_past_its_first_lines_is_found_while_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(cleanmix.pipelines.jsonl, "INFER_LINES", 10)  # planning sees only the whole start
    monkeypatch.setattr(cleanmix.pipelines.jsonl, "INFER_BYTES", 10_000)
    whole = write_jsonl(demo(), tmp_path / "in" / "a.jsonl.zst")
    whole.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(Exception, match=rf"input file {re.escape(str(whole))} could not be read: Compressed file ended"):
        run(tmp_path / "in", tmp_path / "out")
    summary = run(tmp_path / "in", tmp_path / "skip", input={"on_error": "skip"})
    assert list(summary["input"]["skipped_shards"]) == [str(whole)] and summary["input"]["docs"] == 0


def test_a_jsonl_file_without_ids_gets_generated_ones_beside_one_with_ids(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"id": "x1", "text": "a document long enough"}\n')
    (tmp_path / "in" / "b.jsonl").write_text('{"text": "another document long enough", "extra": 1}\n\n{"text": "a third long document"}\n')
    summary = run(tmp_path / "in", tmp_path / "out")
    got = kept(tmp_path / "out")
    assert got.select("id", "extra").rows() == [("x1", None), ("b.jsonl:1", 1), ("b.jsonl:3", None)]
    assert summary["input"]["docs"] == 3


def test_an_empty_jsonl_file_is_an_empty_shard(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"id": "x1", "text": "a document long enough"}\n')
    (tmp_path / "in" / "b.jsonl.gz").write_bytes(gzip.compress(b""))
    summary = run(tmp_path / "in", tmp_path / "out")
    assert summary["input"]["docs"] == 1 and kept(tmp_path / "out").get_column("id").to_list() == ["x1"]


def test_dates_stay_strings_as_written(tmp_path):
    source = tmp_path / "a.jsonl"
    source.write_text('{"text": "a document long enough", "added": "2024-01-01T00:00:00", "meta": {"at": ["2024-02-03"]}}\n')
    run(source, tmp_path / "out", output={"format": "jsonl.gz"})
    line = json.loads(_decompress(next((tmp_path / "out" / "data").iterdir())))
    assert (line["added"], line["meta"]) == ("2024-01-01T00:00:00", {"at": ["2024-02-03"]})


def test_input_format_reads_a_file_whatever_its_name(tmp_path):
    source = tmp_path / "dump.data"
    source.write_text('{"text": "a document long enough"}\n')
    failed = clean("run", str(write_pipeline(tmp_path / "p.yaml", source, tmp_path / "out", STAGES)))
    assert_user_error(failed, f"input file {source}: cannot tell its format from its name", "input.format")
    assert run(source, tmp_path / "out", input={"format": "jsonl"})["input"]["docs"] == 1
