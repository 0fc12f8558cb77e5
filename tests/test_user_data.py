"""A user's data is sacred: hostile or unusual input gets a clear error, never a silent change (issue 18)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, _env, assert_user_error, clean, write_pipeline, write_shards


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_shards(tmp_path / "in", [["a first document", "a second one"], ["third"]])


def run_yaml(tmp_path: Path, text: str, *args: str, command: str = "run"):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return clean(command, str(path), *args)


# 5. stage names are path parts -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../../escaped", "/tmp/absolute", "a/b", "..", "with space", ""])
def test_stage_name_that_is_not_a_safe_path_part_is_refused(tmp_path: Path, corpus: Path, name: str) -> None:
    out = tmp_path / "work" / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "length", "min_chars": 1}, {"type": "length", "name": name}])
    result = clean("run", str(pipeline))
    assert_user_error(result, "p.yaml", "stages.1.name", "line", "letters, digits")
    assert not out.exists() and not (tmp_path / "escaped").exists() and not list(tmp_path.rglob("*.json"))


def test_safe_stage_names_still_work(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "length", "name": "len.v2-strict_1"}])
    clean("run", str(pipeline), check=True)
    assert (out / "stats" / "len.v2-strict_1.json").exists()


# 6. alias bombs ------------------------------------------------------------------------------------

BOMB = "".join(f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
"""Nine levels of nine aliases: 9**9 (387 million) strings once expanded, a few hundred bytes of YAML."""


def clean_bounded(*args: str) -> subprocess.CompletedProcess:
    """`clean` with at most 2 GB of address space and 60 s: a blow-up fails the test, not the machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "cleanmix.pipelines.cli", *args], cwd=REPO, capture_output=True, text=True,
        timeout=60, env=_env(), preexec_fn=limit,
    )


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("where", ["name", "unused"])
def test_yaml_alias_bomb_is_refused_cheaply(tmp_path: Path, corpus: Path, command: str, where: str) -> None:
    use = "    name: *l9\n" if where == "name" else "    unused_key: {deep: *l9}\n"
    text = (
        f"anchors:\n  - &l0 lol\n{BOMB}input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'out'}}}\n"
        f"stages:\n  - type: length\n{use}"
    )
    (tmp_path / "p.yaml").write_text(text)
    result = clean_bounded(command, str(tmp_path / "p.yaml"))
    assert_user_error(result, "p.yaml", "aliases expand", "billion laughs", "line 11")
    assert not (tmp_path / "out").exists()


def test_recursive_alias_is_refused(tmp_path: Path, corpus: Path) -> None:
    text = f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'out'}}}\nextra: &a [1, *a]\n"
    assert_user_error(run_yaml(tmp_path, text), "p.yaml", "key 'extra.1'", "recursive")


def test_a_few_aliases_for_shared_parameters_are_fine(tmp_path: Path, corpus: Path) -> None:
    text = (
        f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'out'}}}\n"
        "stages:\n  - &len {type: length, min_chars: 1}\n  - <<: *len\n    name: len2\n"
    )
    assert run_yaml(tmp_path, text, command="validate").returncode == 0


def test_a_long_wrong_value_is_cut_in_the_error(tmp_path: Path, corpus: Path) -> None:
    text = f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'out'}}}\nworkers: [{', '.join(['12345'] * 2000)}]\n"
    result = run_yaml(tmp_path, text, command="validate")
    assert_user_error(result, "key 'workers'", "…")
    assert len(result.stderr) < 1000


# 10. duplicate keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "lines"),
    [
        ("workers: 1\nseed: 3\nworkers: 2\n", "key 'workers'", "line 3 and line 5"),
        ("stages:\n  - type: length\n    min_chars: 10\n    min_chars: 20\n", "key 'stages.0.min_chars'", "line 5 and line 6"),
    ],
)
def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path, corpus: Path, body: str, key: str, lines: str) -> None:
    text = f"input: {{path: {corpus}}}\noutput: {{path: {tmp_path / 'out'}}}\n{body}"
    for command in ("validate", "run"):
        assert_user_error(run_yaml(tmp_path, text, command=command), "p.yaml", key, "appears twice", lines)
    assert not (tmp_path / "out").exists()


# 15. a parenthesised area code is part of the phone number -----------------------------------------


@pytest.mark.parametrize("number", ["(283)-182-3829", "(283).182.3829", "(283) 182-3829", "(283)182-3829", "(283)-182.3829"])
def test_phone_with_parenthesised_area_code_is_replaced_whole(number: str) -> None:
    from cleanmix.filters.pii import PII

    out = PII().filter(pl.DataFrame({"text": [f"Call {number} today."]}))["text"][0]
    assert out == "Call <PHONE> today.", out


# 16. Gopher's stop words in any case -----------------------------------------------------------------


def test_gopher_stop_words_match_in_any_case() -> None:
    from cleanmix.filters.gopher_quality import GopherQuality

    sentence = "The history Of Rome is long, and complex. "  # The, Of, and: three distinct stop words
    df = pl.DataFrame({"text": [sentence * 10, "The THE the history rome long complex words here. " * 10]})
    out = GopherQuality().annotate(df)
    assert out["gopher_quality_stop_words"].to_list() == [3, 1]  # distinct words: `The THE the` is one
    assert out["reason"].to_list() == [None, "gopher_quality:few_stop_words"]
    exact = GopherQuality(stop_words_case_sensitive=True).annotate(df)
    assert exact["gopher_quality_stop_words"].to_list() == [1, 1]


# 7. input columns a stage would overwrite ----------------------------------------------------------


def run_on(tmp_path: Path, stages: list[dict], **columns: list) -> tuple[subprocess.CompletedProcess, Path]:
    """One input shard of two documents with the extra `columns`, run through `stages`."""
    texts = ["A first document that is long enough. " * 3, "a second"]
    corpus = write_shards(tmp_path / "in", [texts], **{name: [values] for name, values in columns.items()})
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, out, stages)
    return clean("run", str(pipeline)), out


@pytest.mark.parametrize(
    ("stages", "column", "values", "fragments"),
    [
        ([{"type": "length", "min_chars": 50}], "reason", ["mine", "also mine"], ["why a document was removed"]),
        ([{"type": "exact_dedup"}], "dup_cluster_id", [7, 8], ["stage 'exact_dedup' (exact_dedup)"]),
        ([{"type": "minhash_dedup"}], "duplicate_of", ["x", "y"], ["stage 'minhash_dedup'"]),
        ([{"type": "length", "name": "len", "mode": "annotate"}], "len_reason", ["a", "b"], ["stage 'len' (length)"]),
        ([{"type": "pii", "action": "annotate"}], "pii_spans", ["a", "b"], ["stage 'pii' (pii)"]),
        ([{"type": "length"}], "length_chars", ["long", "short"], ["stage 'length' (length)", "holding numbers", "this one holds strings"]),
        ([{"type": "length"}], "_cm_mine", [1, 2], ["reserves names starting with '_cm_'"]),
    ],
)
def test_input_column_a_stage_would_overwrite_is_refused(tmp_path: Path, stages, column, values, fragments) -> None:
    result, out = run_on(tmp_path, stages, **{column: values})
    assert_user_error(result, "shard-000.parquet", f"column '{column}'", "Rename", *fragments)
    assert not out.exists()


def test_source_column_overwritten_by_input_sources_is_refused(tmp_path: Path) -> None:
    corpus = write_shards(tmp_path / "web", [["some text"]], source=[["mine"]])
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "out", [])
    text = pipeline.read_text().replace(f"path: {corpus}", f"sources: {{web: {corpus}}}")
    pipeline.write_text(text)
    assert_user_error(clean("run", str(pipeline)), "column 'source'", "input.sources")


def test_columns_of_stages_not_in_the_pipeline_pass_through(tmp_path: Path) -> None:
    result, out = run_on(tmp_path, [{"type": "length", "min_chars": 1}], dup_cluster_id=[7, 8], repeat=["a", "b"])
    assert result.returncode == 0, result.stderr
    kept = pl.read_parquet(out / "data")
    assert kept["dup_cluster_id"].to_list() == [7, 8] and kept["repeat"].to_list() == ["a", "b"]


def test_an_earlier_measurement_of_the_same_kind_is_measured_again(tmp_path: Path) -> None:
    """The documented rule: a cleanmix output run again through a filter gets fresh measurements."""
    first, out1 = run_on(tmp_path / "one", [{"type": "language"}, {"type": "length", "mode": "annotate"}])
    assert first.returncode == 0, first.stderr
    stages = [{"type": "language"}, {"type": "length", "mode": "annotate", "name": "len2"}]
    again = write_pipeline(tmp_path / "again.yaml", out1 / "data", tmp_path / "out2", stages)
    second = clean("run", str(again))
    assert second.returncode == 0, second.stderr
    assert pl.read_parquet(tmp_path / "out2" / "data")["length_chars"].to_list() == [114, 8]
    result, out = run_on(tmp_path / "three", [{"type": "language"}, {"type": "length"}], language=["xx", "yy"], length_chars=[1, 2])
    assert result.returncode == 0, result.stderr
    kept = pl.read_parquet(out / "data")
    assert kept["language"].to_list() == ["en", "en"] and kept["length_chars"].to_list() == [114, 8]


# 8. invalid UTF-8 in a Parquet string column -----------------------------------------------------------


def write_bad_utf8(folder: Path) -> Path:
    """Two good shards around one whose string column holds bytes that are not UTF-8 (Parquet writers don't check)."""
    write_shards(folder, [["good one", "good two"], [], ["good three"]])
    text = pa.array([b"fine", b"\xff\xfe broken", b"fine again"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": ["b0", "b1", "b2"], "text": text}), folder / "shard-001.parquet")
    return folder


@pytest.mark.parametrize("stages", [[], [{"type": "normalize"}]], ids=["passthrough", "normalize"])
def test_invalid_utf8_fails_naming_file_and_row(tmp_path: Path, stages: list[dict]) -> None:
    corpus = write_bad_utf8(tmp_path / "in")
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "out", stages)
    result = clean("run", str(pipeline), "--quiet")
    assert_user_error(result, "shard-001.parquet", "column 'text'", "not valid UTF-8", "row 1 ", "on_error: skip")


@pytest.mark.parametrize("stages", [[], [{"type": "normalize"}]], ids=["passthrough", "normalize"])
def test_invalid_utf8_shard_is_skipped_and_counted(tmp_path: Path, stages: list[dict]) -> None:
    corpus = write_bad_utf8(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, out, stages, input={"on_error": "skip"})
    clean("run", str(pipeline), check=True)
    assert sorted(pl.read_parquet(out / "data")["text"].to_list()) == ["good one", "good three", "good two"]
    assert "not valid UTF-8" in (out / "stats" / "summary.json").read_text()


# 9. one column, one type across shards ---------------------------------------------------------------


def write_tables(folder: Path, *tables: pa.Table) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, table in enumerate(tables):
        pq.write_table(table, folder / f"shard-{i:03d}.parquet")
    return folder


@pytest.mark.parametrize("stages", [[], [{"type": "exact_dedup"}]], ids=["copy", "dedup"])
@pytest.mark.parametrize(
    ("column", "first", "second", "shown"),
    [
        ("id", pa.array([1, 2], pa.int64()), pa.array(["a", "b"]), ["int64 in the first", "string in the second"]),
        ("meta", pa.array([{"k": 1}, {"k": 2}]), pa.array(["x", "y"]), ["struct<k: int64>", "string in the second"]),
        ("meta", pa.array([1, 2], pa.int64()), pa.array([1.5, 2.5]), ["int64", "double"]),
        ("meta", pa.array([1, 2], pa.int64()), pa.array([1, 2], pa.uint64()), ["int64", "uint64"]),
    ],
    ids=["int-string-ids", "struct-string", "int-float", "int-uint64"],
)
def test_a_column_whose_type_differs_between_files_is_refused(tmp_path: Path, stages, column, first, second, shown) -> None:
    base = {"id": pa.array(["d0", "d1"]), "text": pa.array(["same text", "other text"])}
    corpus = write_tables(tmp_path / "in", pa.table({**base, column: first}), pa.table({**base, column: second}))
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "out", stages)
    for command in ("validate", "run"):
        result = clean(command, str(pipeline))
        assert_user_error(result, "shard-000.parquet and", "shard-001.parquet", f"column '{column}'", *shown, "one type")
    assert not (tmp_path / "out").exists()


def test_generated_ids_and_integer_ids_are_refused_together(tmp_path: Path) -> None:
    corpus = write_tables(tmp_path / "in", pa.table({"id": [1], "text": ["a"]}), pa.table({"text": ["b"]}))
    pipeline = write_pipeline(tmp_path / "p.yaml", corpus, tmp_path / "out", [])
    assert_user_error(clean("run", str(pipeline)), "column 'id'", "int64 in the first", "generated: that file has no 'id' column")


def test_lossless_type_differences_mix(tmp_path: Path) -> None:
    """Integer widths, string flavours and an all-null column unify; ids stay integers through dedup."""
    corpus = write_tables(
        tmp_path / "in",
        pa.table({"id": pa.array([1, 2], pa.int32()), "text": ["dup text", "one"], "tag": pa.array(["x", "y"]), "n": pa.nulls(2)}),
        pa.table({"id": pa.array([2**40, 5], pa.int64()), "text": pa.array(["dup text", "two"], pa.large_string()),
                  "tag": pa.array(["z", "w"], pa.large_string()), "n": pa.array([1.5, None])}),
    )
    out = tmp_path / "out"
    clean("run", str(write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "exact_dedup"}])), check=True)
    kept = pl.read_parquet(out / "data")
    assert kept["id"].dtype == pl.Int64 and sorted(kept["id"].to_list()) == [1, 2, 5]
    assert pl.read_parquet(out / "rejected")["duplicate_of"].to_list() == [1]


# an output folder given as input: only its kept documents ------------------------------------------


def test_output_folder_as_input_reads_only_its_data(tmp_path: Path) -> None:
    corpus = write_shards(tmp_path / "in", [["A kept document, long enough. " * 3, "short"]])
    first = tmp_path / "runs" / "first"
    clean("run", str(write_pipeline(tmp_path / "p1.yaml", corpus, first, [{"type": "length", "min_chars": 50}])), check=True)
    assert list((first / "rejected").rglob("*.parquet"))
    for given in (first, tmp_path / "runs"):  # the output folder itself, or a folder holding it
        out = tmp_path / f"again-{given.name}"
        clean("run", str(write_pipeline(tmp_path / "p2.yaml", given, out, [])), check=True)
        assert pl.read_parquet(out / "data")["id"].to_list() == ["doc-0-0"], given


def test_unfinished_output_folder_as_input_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "_work").mkdir(parents=True)
    (folder / "pipeline.yaml").write_text("input: {}\n")
    write_shards(folder / "_work" / "seg-0", [["scratch"]])
    pipeline = write_pipeline(tmp_path / "p.yaml", folder, tmp_path / "o2", [])
    assert_user_error(clean("run", str(pipeline)), "cleanmix output folder", "not finished")


def test_empty_or_non_string_text_in_the_python_api() -> None:
    from cleanmix.filters.gopher_quality import GopherQuality
    from cleanmix.filters.length import Length

    empty = pl.DataFrame({"id": [], "text": []})  # pl.Null columns, as users often build them
    assert empty.schema["text"] == pl.Null
    for stage in (Length(), GopherQuality()):
        assert stage.filter(empty).height == 0 and stage.annotate(empty).schema["text"] == pl.String
        assert stage.annotate(pl.DataFrame({"text": [None]}))["reason"].to_list() == [f"{stage.type}:no_text"]
        with pytest.raises(TypeError, match="'text' column holds Int64, expected strings"):
            stage.filter(pl.DataFrame({"text": [1, 2]}))
