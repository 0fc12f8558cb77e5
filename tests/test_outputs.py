"""RunFolder: the one reader of an output folder behind `clean stats`, `clean report` and `clean compare`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_report import clean, demo_runs

from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.outputs import RunFolder


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return demo_runs(tmp_path_factory.getbasetemp() / "demo", both=False)[1]


def test_it_reads_what_the_run_wrote(run):
    folder = RunFolder(run)
    summary = json.loads((run / "stats" / "summary.json").read_text())
    assert folder.summary == summary and [s["name"] for s in folder.stages] == [s["name"] for s in summary["stages"]]
    assert folder.stage("length") == summary["stages"][1] and folder.stage("nothing") is None
    assert folder.stats("length")["parameters"]["min_chars"] == 20 and folder.stats("nothing") == {}
    assert folder.id_column == "id" and folder.text_column == "text" and "min_chars: 20" in folder.pipeline_text
    assert folder.reasons()["length:too_short"] == summary["stages"][1]["removed"]["length:too_short"]
    kept = {i for f in folder.data_files() for i in pq.read_table(f, columns=["id"])["id"].to_pylist()}
    assert set(folder.kept_ids().collect()["id"]) == kept
    rejected = folder.rejected_ids().collect()
    assert rejected.height == sum(sum(s["removed"].values()) for s in summary["stages"])
    too_short = sum(pq.read_metadata(f).num_rows for f in folder.rejected_files("length"))
    assert rejected.filter(rejected["reason"] == "length:too_short").height == too_short == folder.reasons()["length:too_short"]
    assert "length:too_short" in clean("stats", str(run)).stdout


@pytest.mark.parametrize("make, problem", [
    (lambda p: p / "absent", "it does not exist"),
    (lambda p: (p / "file.txt", (p / "file.txt").write_text("x"))[0], "it is not a folder"),
    (lambda p: (p / "empty", (p / "empty").mkdir())[0], "it has no stats/summary.json"),
    (lambda p: _summary(p / "broken", "{not json"), "its stats/summary.json cannot be read"),
    (lambda p: _summary(p / "other", json.dumps({"stages": "?"})), "lacks the stages, input and output entries"),
])
def test_a_folder_that_is_not_a_finished_output_is_one_paragraph(make, problem, run, tmp_path):
    folder = make(tmp_path)
    with pytest.raises(UserError, match=problem):
        RunFolder(folder)
    for args in (["stats", str(folder)], ["report", str(folder)], ["compare", str(run), str(folder)]):
        message = clean(*args, code=2).stderr
        assert message.startswith(f"error: '{folder}' is not a finished cleanmix output folder: ") and problem in message
        assert "Traceback" not in message and message.count("\n") == 1


def _summary(folder: Path, text: str) -> Path:
    (folder / "stats").mkdir(parents=True)
    (folder / "stats" / "summary.json").write_text(text)
    return folder
