"""Stages from outside, and the installed layout, for real: a third-party package installed with pip
(tests/plugin_example) adds a stage that `clean` lists, validates and runs like a built-in one, and
cleanmix's own wheel installs `cleanmix/` and nothing else at the top level of site-packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest

from conftest import REPO, write_pipeline, write_shards

SHOUTING = "BUY NOW!!! CHEAP WATCHES, FREE SHIPPING, LIMITED OFFER TODAY ONLY"
TEXTS = {
    "calm": "A normal sentence about the weather in Paris, written the usual way.",
    "loud": SHOUTING,
    "loud-again": "PLEASE READ THIS NOTICE BEFORE YOU POST ANYTHING IN THIS FORUM.",
    "short": "OK FINE",  # too few letters to judge
    "chinese": "中文没有大小写，所以这篇文档不会被判断为大写。",
    "mixed": "NASA and the ESA said on Monday that the launch of the probe was delayed again.",
}
BUILD_LEFTOVERS = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "*.so")


def pip(*args: str) -> None:
    """pip of this interpreter, offline: both packages build with the setuptools already installed."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--no-deps", "--no-build-isolation", "--no-index"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugin_example pip-installed into a folder of its own (built from a copy: pip builds in the tree)."""
    tmp = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(REPO / "tests" / "plugin_example", tmp / "src", ignore=BUILD_LEFTOVERS)
    pip("install", "--target", str(tmp / "site"), str(source))
    return tmp / "site"


def clean(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real `clean`, with the plugin's folder on the path, as an installed package is."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "cleanmix.pipelines.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_clean_stages_lists_the_installed_stage_with_its_parameters(site: Path, tmp_path: Path) -> None:
    result = clean(site, "stages", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    block = result.stdout.split("\nshouting ", 1)[1].split("\n\n", 1)[0]
    assert "Drop documents whose letters are mostly capitals" in block
    assert "max_upper_share: float, default 0.5. largest share of cased letters that may be capitals" in block
    assert "min_letters: int, default 20." in block
    assert "\nlength " in result.stdout  # the built-in stages are still there


def test_clean_validate_rejects_a_bad_parameter_of_the_installed_stage(site: Path, tmp_path: Path) -> None:
    corpus = write_shards(tmp_path / "in", [["some text"]])
    out = tmp_path / "out"
    path = write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "normalize"}, {"type": "shouting", "max_upper_share": 2}])
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "max_upper_share" in text)
    result = clean(site, "validate", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in ("p.yaml", "stages.1.max_upper_share", f"line {line}", "less than or equal to 1", "found 2"):
        assert fragment in result.stderr, (fragment, result.stderr)
    assert not out.exists()


def test_clean_run_removes_with_the_installed_stage_and_counts_its_reasons(site: Path, tmp_path: Path) -> None:
    ids, texts = list(TEXTS), list(TEXTS.values())
    corpus = tmp_path / "in"
    corpus.mkdir()
    pl.DataFrame({"id": ids, "text": texts}).write_parquet(corpus / "shard-000.parquet")
    out = tmp_path / "out"
    path = write_pipeline(tmp_path / "p.yaml", corpus, out, [{"type": "length", "min_chars": 5}, {"type": "shouting"}], workers=1)
    result = clean(site, "run", str(path), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    kept = pl.read_parquet(out / "data").get_column("id").to_list()
    rejected = pl.read_parquet(out / "rejected" / "shouting")
    assert sorted(kept) == ["calm", "chinese", "mixed", "short"]
    assert dict(zip(rejected["id"], rejected["reason"])) == {"loud": "shouting:uppercase", "loud-again": "shouting:uppercase"}
    summary = json.loads((out / "stats" / "summary.json").read_text())
    stage = summary["stages"][1]
    assert (stage["name"], stage["type"], stage["removed"]) == ("shouting", "shouting", {"shouting:uppercase": 2})
    assert stage["docs_in"] == stage["docs_out"] + 2 == len(TEXTS)


def test_a_broken_plugin_stops_only_the_pipelines_that_use_it(tmp_path: Path) -> None:
    """A run imports only the stage types it names: a plugin whose import fails is a clear error
    where a pipeline uses it, and costs nothing (neither an error nor an import) where none does."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "broken_stage.py").write_text("raise ImportError('needs a library that is not installed')\n")
    info = site / "broken_stage-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-stage\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cleanmix.stages]\nbroken = broken_stage:Broken\n")
    corpus = write_shards(tmp_path / "in", [["some text", "more text here"]])

    uses = write_pipeline(tmp_path / "uses.yaml", corpus, tmp_path / "out1", [{"type": "length"}, {"type": "broken"}])
    result = clean(site, "validate", str(uses), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "entry point 'broken = broken_stage:Broken'" in result.stderr and "package broken-stage 1.0" in result.stderr
    assert "could not be loaded: needs a library that is not installed" in result.stderr

    plain = write_pipeline(tmp_path / "plain.yaml", corpus, tmp_path / "out2", [{"type": "length", "min_chars": 10}], workers=1)
    probe = ("import sys; from cleanmix.pipelines.config import load_pipeline; load_pipeline(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.startswith('cleanmix.filters.') or m == 'broken_stage'))")
    loaded = subprocess.run([sys.executable, "-c", probe, str(plain)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(site)}, check=True)
    assert loaded.stdout.split() == ["['cleanmix.filters.length']"]  # not the 21 other stage modules
    result = clean(site, "run", str(plain), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert pl.read_parquet(tmp_path / "out2" / "data")["text"].to_list() == ["more text here"]


def test_the_wheel_installs_cleanmix_and_nothing_else_at_the_top_level(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a copy: pip builds in the tree, and the checkout stays untouched
    for name in ("pipelines", "filters", "dedup", "mix"):
        shutil.copytree(REPO / name, project / name, ignore=BUILD_LEFTOVERS)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    pip("wheel", "--wheel-dir", str(tmp_path / "dist"), str(project))
    (wheel,) = (tmp_path / "dist").glob("cleanmix-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    name, version = wheel.name.split("-")[:2]
    assert tops == {"cleanmix", f"{name}-{version}.dist-info"}, tops
    assert {"cleanmix/filters/resources/zh_word_pairs.txt", "cleanmix/pipelines/presets/demo.yaml"} <= set(names)
    assert "cleanmix/pipelines/cli.py" in names
    kernels = {name.split("/")[-1].split(".")[0] for name in names if name.endswith(".so")}  # compiled from the copy, not carried
    assert kernels == {"_fasttext", "_lines", "_repetition", "_script", "_shingles", "_tokens"}, kernels

    pip("install", "--target", str(tmp_path / "site"), str(wheel))
    check = (
        "import importlib.util, os, cleanmix, cleanmix.filters.length as length, cleanmix.pipelines.cli\n"
        "assert length.__file__.startswith(os.environ['PYTHONPATH']), length.__file__\n"
        "assert [n for n in ('pipelines', 'filters', 'dedup', 'mix') if importlib.util.find_spec(n)] == []\n"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert result.returncode == 0, result.stderr
