"""Every user mistake: one paragraph naming file, key and line; exit code 2; nothing written."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from conftest import assert_user_error, clean, write_pipeline, write_shards


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_shards(tmp_path / "in", [["a first document", "a second one"], ["third"]])


def run_yaml(tmp_path: Path, text: str, *args: str):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return clean("run", str(path), *args)


def test_unknown_stage_type(tmp_path, corpus):
    out = tmp_path / "out"
    result = run_yaml(tmp_path, f"input: {{path: {corpus}}}\noutput: {{path: {out}}}\nstages:\n  - type: lenght\n")
    assert_user_error(result, "p.yaml", "stages.0", "line 4", "unknown stage type 'lenght'", "length")
    assert not out.exists()


def test_wrong_value_type(tmp_path, corpus):
    out = tmp_path / "out"
    result = run_yaml(tmp_path, f"input: {{path: {corpus}}}\noutput: {{path: {out}}}\nstages:\n  - type: length\n    min_chars: many\n")
    assert_user_error(result, "stages.0.min_chars", "line 5", "valid integer", "'many'")
    assert not out.exists()


def test_out_of_range_value(tmp_path, corpus):
    result = run_yaml(tmp_path, f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'o'}}}\nworkers: 0\n")
    assert_user_error(result, "key 'workers'", "line 3", "greater than or equal to 1", "found 0")


def test_unknown_key(tmp_path, corpus):
    result = run_yaml(tmp_path, f"input: {{path: {corpus}, txt_column: body}}\noutput: {{path: {tmp_path / 'o'}}}\n")
    assert_user_error(result, "input.txt_column", "line 1", "not allowed")


def test_unknown_stage_parameter(tmp_path, corpus):
    stages = "stages:\n  - type: normalize\n    forms: NFC\n"
    result = run_yaml(tmp_path, f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'o'}}}\n{stages}")
    assert_user_error(result, "stages.0.forms", "line 5", "not allowed")


def test_invalid_yaml(tmp_path):
    result = run_yaml(tmp_path, "input: [unclosed\n")
    assert_user_error(result, "p.yaml", "not valid YAML", "line")


def test_missing_pipeline_file(tmp_path):
    assert_user_error(clean("run", str(tmp_path / "nope.yaml")), "nope.yaml", "cannot read")


def test_missing_input_path(tmp_path):
    out = tmp_path / "out"
    result = run_yaml(tmp_path, f"input: {{path: {tmp_path / 'absent'}}}\noutput: {{path: {out}}}\n")
    assert_user_error(result, "absent", "does not exist")
    assert not out.exists()


def test_missing_text_column(tmp_path, corpus):
    out = tmp_path / "out"
    result = run_yaml(tmp_path, f"input: {{path: {corpus}, text_column: body}}\noutput: {{path: {out}}}\n")
    assert_user_error(result, "shard-000.parquet", "no text column 'body'", "id, text")
    assert not out.exists()


def test_empty_input_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_yaml(tmp_path, f"input: {{path: {tmp_path / 'empty'}}}\noutput: {{path: {tmp_path / 'o'}}}\n")
    assert_user_error(result, "holds no *.parquet files")


def test_duplicate_stage_names(tmp_path, corpus):
    stages = "stages: [{type: length}, {type: length}]\n"
    result = run_yaml(tmp_path, f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'o'}}}\n{stages}")
    assert_user_error(result, "both named 'length'", "`name`")


def test_bad_override(tmp_path, corpus):
    path = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "o", [{"type": "length"}])
    assert_user_error(clean("run", str(path), "--set", "stages.3.min_chars=1"), "stages.3", "not an index")
    assert_user_error(clean("run", str(path), "--set", "stages.0.min_chars=-1"), "stages.0.min_chars", "greater than or equal to 0")


def test_override_applies(tmp_path, corpus):
    path = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "o", [{"type": "length"}])
    clean("run", str(path), "--set", "stages.0.min_chars=10", "-q", check=True)
    kept = pl.read_parquet(tmp_path / "o" / "data").get_column("id").to_list()
    assert kept == ["doc-0-0", "doc-0-1"]


def test_corrupt_shard_among_good_ones(tmp_path, corpus):
    (corpus / "shard-001.parquet").write_bytes(b"PAR1 this is not parquet at all PAR1")
    out = tmp_path / "out"
    path = write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "length"}])
    assert_user_error(clean("run", str(path)), "shard-001.parquet", "not a readable Parquet file", "on_error: skip")
    assert not out.exists()
    skip = write_pipeline(tmp_path / "skip.yaml", corpus, out, [{"type": "length"}], input={"on_error": "skip"})
    clean("run", str(skip), "-q", check=True)
    summary = __import__("json").loads((out / "stats" / "summary.json").read_text())
    assert summary["input"]["docs"] == 2
    assert list(summary["input"]["skipped_shards"]) == [str(corpus / "shard-001.parquet")]
    assert summary["output"]["docs"] == 2


def test_non_cleanmix_output_folder_is_never_touched(tmp_path, corpus):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")
    path = write_pipeline(tmp_path / "p.yaml", corpus, out, [])
    assert_user_error(clean("run", str(path), "--overwrite"), "not written by cleanmix")
    assert (out / "thesis.txt").read_text() == "do not delete"


def test_different_pipeline_into_same_output_is_refused(tmp_path, corpus):
    out = tmp_path / "out"
    first = write_pipeline(tmp_path / "a.yaml", corpus, out, [{"type": "length"}])
    clean("run", str(first), "-q", check=True)
    second = write_pipeline(tmp_path / "b.yaml", corpus, out, [{"type": "length", "min_chars": 10}])
    assert_user_error(clean("run", str(second)), "different pipeline", "--overwrite")
    clean("run", str(second), "--overwrite", "-q", check=True)
    assert pl.read_parquet(out / "data").height == 2
    again = clean("run", str(second), "--workers", "1")
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_a_stage_that_needs_sources_without_them(tmp_path, corpus):
    result = run_yaml(tmp_path, f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'o'}}}\nstages:\n  - type: mix\n    by: docs\n")
    assert_user_error(result, "stages.0 (mix) needs each document's source", "input.source_column")
