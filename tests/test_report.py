"""report.html of the demo run: every stage, reason and plot; untrusted text inert; nothing loaded."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from click.testing import CliRunner, Result

from conftest import REPO
from cleanmix.pipelines.cli import main
from cleanmix.pipelines.report import CSP, write_report

DEMO = REPO / "pipelines" / "presets" / "demo.yaml"
HOSTILE = {
    # Short enough for the demo's length filter: removed, so it is among the report's samples.
    "hostile-script": "<script>x</script>",
    "hostile-link": "<a href='http://evil.example/x'>click</a> <img src=http://evil.example/p.png onerror=bad()> "
                    "and enough ordinary words after it to look like a document of some kind. " * 3,
}


def demo_runs(base: Path, both: bool = True) -> tuple[Path, Path, Path]:
    """The demo corpus plus hostile documents, run as the preset (A) and with min_chars 200 (B).

    Shared by the report, browser, explain and compare tests: each run is made once per session."""
    corpus, a, b = base / "corpus", base / "run-a", base / "run-b"
    if not corpus.exists():
        shutil.copytree(REPO / "sample" / "demo", corpus)
        source = pl.read_parquet(REPO / "sample" / "demo" / "part-00.parquet").schema
        hostile = pl.DataFrame({"id": list(HOSTILE), "text": list(HOSTILE.values()), "source": ["web"] * len(HOSTILE)})
        hostile.select(source.names()).cast(dict(source)).write_parquet(corpus / "00-hostile.parquet")  # type: ignore[arg-type]
    for out, sets in ((a, []), (b, ["--set", f"stages.{_length_index()}.min_chars=200"]))[: 2 if both else 1]:
        if not (out / "stats" / "summary.json").exists():
            clean("run", str(DEMO), "--set", f"input.path={corpus}", "--output", str(out), "--workers", "1", "--quiet", *sets)
    return corpus, a, b


def clean(*args: str, code: int = 0) -> Result:
    """The real `clean` command, in this process (no interpreter start-up per call)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def _length_index() -> int:
    stages = yaml.safe_load(DEMO.read_text())["stages"]
    return next(i for i, stage in enumerate(stages) if stage["type"] == "length")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    return demo_runs(tmp_path_factory.getbasetemp() / "demo", both=False)[1]


def test_report_has_every_stage_reason_and_plot(demo_run):
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    summary = json.loads((demo_run / "stats" / "summary.json").read_text())
    sections = re.findall(r'<section id="([^"]+)"', page)
    for section in ("funnel", "reasons", "distributions", "samples", "time", "pipeline"):
        assert section in sections
    for section in ("funnel", "reasons", "time"):
        assert "<svg" in _section(page, section), section
    for stage in summary["stages"]:
        assert f">{stage['name']}<" in page
        for reason in stage["removed"]:
            assert reason in _section(page, "reasons") and reason in _section(page, "samples")
    resolved = yaml.safe_load((demo_run / "pipeline.yaml").read_text())
    filters = [s["type"] for s in resolved["stages"] if s["type"] in ("length", "gopher_quality", "c4_quality", "fineweb_quality")]
    for name in filters:
        assert f"<h3>{name}</h3><figure" in _section(page, "distributions")
    assert "length_chars" in _section(page, "distributions")
    assert "min_chars: 20" in _section(page, "pipeline")
    assert "report: section" not in page and "could not be drawn" not in page


def test_untrusted_text_is_escaped_and_nothing_is_loaded(demo_run):
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;x&lt;/script&gt;" in _section(page, "samples")
    assert not re.search(r"<\s*(script|img|iframe|object|embed|link|base)\b", page, re.I)
    tags = re.findall(r"<[a-zA-Z][^>]*>", page)  # real tags: document text is escaped, so never matches
    assert not [t for t in tags if re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", t, re.I)]
    assert not re.search(r"""url\(\s*["']?(?!#)|@import""", page, re.I)  # url(#id): the plots' own clip paths
    assert f'content="{CSP}"' in page and "default-src 'none'" in CSP
    assert not [t for t in tags if "evil.example" in t]  # the hostile link appears only as escaped text, if at all


def test_report_command_rewrites_the_report(demo_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    (copy / "report.html").unlink()
    result = clean("report", str(copy))
    assert Path(result.stdout.strip()) == copy / "report.html"
    assert "<section id=\"funnel\">" in (copy / "report.html").read_text(encoding="utf-8")
    assert "not a finished cleanmix output folder" in clean("report", str(tmp_path / "nothing"), code=2).stderr


def test_details_of_global_stages_and_missing_files(tmp_path):
    """Dedup and mix authors' detail shapes (and absent files) are drawn, never fatal."""
    stages = [
        {"name": "minhash_dedup", "type": "minhash_dedup", "docs_in": 10, "docs_out": 8, "bytes_in": 100, "bytes_out": 80,
         "seconds": 0.1, "removed": {"minhash_dedup:near_duplicate": 2}, "modified": {}},
        {"name": "mix", "type": "mix", "docs_in": 8, "docs_out": 12, "bytes_in": 80, "bytes_out": 120, "seconds": 0.1,
         "removed": {}, "modified": {}, "added": 4},
    ]
    details = {
        "minhash_dedup": {"clusters": 2, "cluster_sizes": {"2": 2}},
        "mix": {"by": "tokens", "sources": {"web": {"target": 0.6, "achieved": 0.58, "repeats": 1.2},
                                            "books": {"target": 0.4, "achieved": 0.42}}},
    }
    for stage in stages:
        (tmp_path / "stats").mkdir(exist_ok=True)
        (tmp_path / "stats" / f"{stage['name']}.json").write_text(json.dumps({**stage, "details": details[stage["name"]]}))
    summary = {"pipeline": "p.yaml", "seconds": 0.2, "input": {"docs": 10, "bytes": 100}, "stages": stages,
               "output": {"docs": 12, "bytes": 120, "shards": 1}}
    (tmp_path / "data").mkdir()
    pl.DataFrame({"id": [f"d{i}" for i in range(12)], "text": ["x"] * 12, "language": ["en"] * 8 + ["zh"] * 4,
                  "language_score": [0.5 + i / 30 for i in range(12)]}).write_parquet(tmp_path / "data" / "part-00000.parquet")
    (tmp_path / "rejected" / "minhash_dedup").mkdir(parents=True)
    pl.DataFrame({"id": ["r1", "r2"], "text": ["y", "y"], "language": ["<script>x()</script>", "en"], "reason": ["minhash_dedup:near_duplicate"] * 2}
                 ).write_parquet(tmp_path / "rejected" / "minhash_dedup" / "part-00000.parquet")
    page = write_report(tmp_path, summary).read_text(encoding="utf-8")
    assert 'aria-label="languages found"' in page and "3 languages" in page
    assert "<script" not in page and "&lt;script&gt;x()" in page  # data-derived plot labels are escaped too
    assert 'aria-label="mix sources"' in page and "achieved" in page and "target" in page
    details["mix"] = {"target": {"web": 0.6, "books": 0.4}, "achieved": {"web": 0.55, "books": 0.45}}
    (tmp_path / "stats" / "mix.json").write_text(json.dumps({**stages[1], "details": details["mix"]}))
    page = write_report(tmp_path, summary).read_text(encoding="utf-8")
    assert 'aria-label="mix target vs achieved"' in page
    assert "language_score" in page and 'aria-label="distributions of columns of the kept documents"' in page
    assert 'aria-label="minhash_dedup cluster_sizes"' in page
    assert "could not be drawn" not in page


def _section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


def test_run_that_keeps_nothing_has_a_whole_report(tmp_path):
    """Every document removed, after an annotate stage added columns: the empty output still draws."""
    corpus = tmp_path / "in"
    corpus.mkdir()
    pl.DataFrame({"id": ["a", "b"], "text": ["buy now\n" * 30, "x y z\n" * 20]}).write_parquet(corpus / "s.parquet")
    pipeline = tmp_path / "p.yaml"
    stages = [{"type": "fineweb_quality", "mode": "annotate"}, {"type": "gopher_repetition"}]
    pipeline.write_text(yaml.safe_dump({"input": {"path": str(corpus)}, "output": {"path": str(tmp_path / "out")}, "stages": stages}))
    clean("run", str(pipeline), "--quiet")
    assert json.loads((tmp_path / "out" / "stats" / "summary.json").read_text())["output"]["docs"] == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "could not be drawn" not in page and "gopher_repetition:dup_line_frac" in page
