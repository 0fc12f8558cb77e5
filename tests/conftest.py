from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's real public text (../shared/data): every test that reads it goes through here."""
    return require_shared_data(SHARED_DATA)


def require_shared_data(folder: Path) -> Path:
    """`folder` if it is there; else skip on a fresh clone, but fail in CI (`CI=true`), where a
    skipped real-data test would pass unseen."""
    if not folder.is_dir():
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{folder} is absent and CI=true: the real-data tests must run in CI (lay out ../shared/data)", pytrace=False)
        pytest.skip(f"{folder} is absent (fresh clone): real-data tests skipped")
    return folder


def write_shards(folder: Path, texts: list[list[str | None]], **extra_columns: list[list]) -> Path:
    """One Parquet file per inner list, with ids doc-<shard>-<row>."""
    import polars as pl

    folder.mkdir(parents=True, exist_ok=True)
    for shard, shard_texts in enumerate(texts):
        columns = {"id": [f"doc-{shard}-{row}" for row in range(len(shard_texts))], "text": shard_texts}
        columns.update({name: values[shard] for name, values in extra_columns.items()})
        pl.DataFrame(columns, schema_overrides={"text": pl.String}).write_parquet(folder / f"shard-{shard:03d}.parquet")
    return folder


def write_pipeline(path: Path, input_path: Path, output_path: Path, stages: list[dict], **top) -> Path:
    import yaml

    data = {"input": {"path": str(input_path)}, "output": {"path": str(output_path)}, "stages": stages}
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def clean(*args: str, cwd: Path | None = None, check: bool = False):
    """Run the real `clean` command in a subprocess."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "cleanmix.pipelines.cli", *args], cwd=cwd or REPO, capture_output=True, text=True, timeout=600,
        env=_env(),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"clean {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def run_with_workers(tmp_path: Path, source: Path, stages: list[dict], **top) -> Path:
    """`clean run` of the same stages with 1 and then 2 workers; asserts every output shard is byte-identical
    and returns the 1-worker output folder."""
    shards = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        pipeline = write_pipeline(tmp_path / f"p{workers}.yaml", source, out, stages, workers=workers, **top)
        clean("run", str(pipeline), "-q", check=True)
        shards[workers] = {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}
    assert shards[1] and shards[1] == shards[2]
    return tmp_path / "out1"


def crash_on_call(function, call: int):
    """`function`, except that its `call`-th call raises KeyboardInterrupt: a crash mid-step."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == call:
            raise KeyboardInterrupt(f"crash on call {call}")
        return function(*args, **kwargs)

    return wrapper


def assert_user_error(result, *fragments: str) -> None:
    """A user mistake: exit 2 and one line (one paragraph) on stderr naming what is wrong, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def shared_text_columns(folder: Path) -> Iterator[pl.Series]:
    """Every text column of the real data: string columns, lists of strings (exploded) and HTML pages
    (bytes, decoded): what the tokenizer's tests run on."""
    for path in sorted(folder.glob("*.parquet")) + sorted(folder.glob("*.jsonl")):
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_ndjson(path, infer_schema_length=None)
        for name, dtype in frame.schema.items():
            if dtype == pl.String:
                yield frame[name]
            elif dtype == pl.List(pl.String):
                yield frame[name].explode()
            elif dtype == pl.Binary:  # (HTML pages)
                yield pl.Series(name, [page.decode("utf-8", "replace") for page in frame[name]])
