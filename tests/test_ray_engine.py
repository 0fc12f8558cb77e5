"""`--engine ray` on a real local Ray instance: the same output and stats as the local engine."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter
from conftest import REPO, clean, write_pipeline

DEMO = REPO / "sample" / "demo"
NO_RAY = "Ray is not installed: pip install 'cleanmix[ray]' to run the Ray engine tests"
STAGES = [
    {"type": "normalize"},
    {"type": "length", "min_chars": 20},
    {"type": "exact_dedup"},
    {"type": "pii"},
    {"type": "gopher_quality"},
    {"type": "minhash_dedup", "threshold": 0.7},
    {"type": "mix", "by": "docs", "weights": {"web": 0.5, "reviews_zh": 0.3, "news_zh": 0.2}, "max_repeats": 2},
]


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray for the whole module (starting one costs seconds), shut down afterwards."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"POLARS_MAX_THREADS": "1"}})
    yield ray
    ray.shutdown()


def config(out: Path, stages: list[dict] = STAGES, source: Path = DEMO, **top) -> object:
    data = {"input": {"path": str(source), "source_column": "source", "batch_rows": 128},
            "output": {"path": str(out), "shard_rows": 150}, "workers": 2, "stages": stages, **top}
    return validate_pipeline(data, "test.yaml")


def run_ray(out: Path, stream: io.StringIO | None = None, **kwargs) -> dict:
    from cleanmix.pipelines.ray_engine import run_ray as run

    return run(config(out, **kwargs), "test.yaml", Reporter(stream=stream, quiet=stream is None))


def comparable(out: Path) -> dict:
    """Everything a run's folder says, but timings: summary, per-stage stats, every shard's bytes."""
    summary = json.loads((out / "stats" / "summary.json").read_text())
    for key in ("started", "finished", "seconds"):
        summary.pop(key)
    stages = {}
    for path in sorted((out / "stats").glob("*.json")):
        if path.name == "summary.json":
            continue
        data = json.loads(path.read_text())
        data.pop("seconds", None)
        stages[path.name] = data
    for entry in summary["stages"]:
        entry.pop("seconds")
    shards = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}
    return {"summary": summary, "stages": stages, "shards": shards}


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    run_local(config(out), "test.yaml", Reporter(quiet=True))
    return out


def test_same_documents_and_stats_as_local(ray_instance, local_reference, tmp_path):
    summary = run_ray(tmp_path / "ray")
    kept_local = pl.read_parquet(local_reference / "data")
    kept_ray = pl.read_parquet(tmp_path / "ray" / "data")
    assert kept_ray.select("id", "text").equals(kept_local.select("id", "text"))
    assert summary["output"]["docs"] == kept_local.height
    removed = {stage["name"]: sum(stage["removed"].values()) for stage in summary["stages"]}
    assert removed["length"] and removed["exact_dedup"] and removed["minhash_dedup"], removed
    assert summary["stages"][-1].get("added"), "the mix up-samples a source"
    reference, ours = comparable(local_reference), comparable(tmp_path / "ray")
    assert ours["summary"] == reference["summary"]
    assert ours["stages"] == reference["stages"]
    assert ours["shards"].keys() == reference["shards"].keys()
    assert ours["shards"] == reference["shards"], "the shards are the same bytes as the local engine's"
    assert not (tmp_path / "ray" / "_work").exists()


def test_resume_keeps_finished_units_and_redoes_the_rest(ray_instance, local_reference, tmp_path, monkeypatch):
    """Crash just before the output is written, then undo parts of the work as a crash mid-pass
    would (before the pass is done, what it read is still there: no `release_read`); the re-run
    (the same resume as the local engine's) redoes exactly those units."""
    import cleanmix.pipelines.run as run_module

    out = tmp_path / "resumed"

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "finish", crash)
        patch.setattr(run_module, "release_read", lambda state, seg: None)
        with pytest.raises(KeyboardInterrupt):
            run_ray(out)
    work = out / "_work"
    last = max(int(p.name.split("-")[1]) for p in work.glob("seg-*"))
    (work / f"seg-{last}" / "u00001.json").unlink()  # unit 1: its rows written, its marker not yet
    (work / f"seg-{last}" / "u00002.json").unlink()  # unit 2: killed before it wrote anything
    (work / f"seg-{last}" / "u00002.parquet").unlink()

    log = io.StringIO()
    run_ray(out, stream=log)
    assert "3 units (1 already done, resuming)" in log.getvalue()
    assert comparable(out) == comparable(local_reference)


def test_unreadable_input_is_skipped_and_counted_like_local(ray_instance, tmp_path):
    source = tmp_path / "in"
    shutil.copytree(DEMO, source)
    data = bytearray((source / "part-01.parquet").read_bytes())
    data[200:4000] = b"\x00" * 3800  # column data destroyed, footer intact: found only when read
    (source / "part-01.parquet").write_bytes(bytes(data))
    stages = STAGES[:3]
    run_local(config(tmp_path / "local", stages, source, input={"path": str(source), "on_error": "skip",
                                                                  "source_column": "source"}), "test.yaml", Reporter(quiet=True))
    with pytest.raises(UserError, match="part-01.parquet could not be read"):
        run_ray(tmp_path / "failed", stages=stages, source=source)
    run_ray(tmp_path / "ray", stages=stages, source=source, input={"path": str(source), "on_error": "skip", "source_column": "source"})
    local, ours = comparable(tmp_path / "local"), comparable(tmp_path / "ray")
    assert ours == local
    assert list(ours["summary"]["input"]["skipped_shards"]) == [str(source / "part-01.parquet")]


def test_everything_removed_still_gives_the_columns(ray_instance, tmp_path):
    stages = [{"type": "length", "min_chars": 10**6}]
    run_local(config(tmp_path / "local", stages), "test.yaml", Reporter(quiet=True))
    run_ray(tmp_path / "ray", stages=stages)
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    assert pl.read_parquet(tmp_path / "ray" / "data").columns == ["id", "text", "source"]


def test_cli_runs_the_demo_on_its_own_ray(tmp_path):
    """`clean run --engine ray` starts a Ray of its own, gives the local engine's output, and stops it."""
    pytest.importorskip("ray", reason=NO_RAY)
    local = clean("run", "pipelines/presets/demo.yaml", "-q", "-o", str(tmp_path / "local"), check=True)
    result = clean("run", "pipelines/presets/demo.yaml", "--engine", "ray", "-o", str(tmp_path / "ray"), check=True)
    assert "starting a local Ray instance" in result.stderr
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    assert result.stdout == local.stderr.replace(str(tmp_path / "local"), str(tmp_path / "ray"))
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")


def test_missing_ray_says_how_to_install(monkeypatch):
    from cleanmix.pipelines.ray_engine import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"pip install 'cleanmix\[ray\]'"):
        import_ray()


def test_address_needs_the_ray_engine(tmp_path):
    pipeline = write_pipeline(tmp_path / "p.yaml", DEMO, tmp_path / "out", [{"type": "length"}])
    result = clean("run", str(pipeline), "--address", "auto")
    assert result.returncode == 2 and "--engine ray" in result.stderr
    assert not (tmp_path / "out").exists()
