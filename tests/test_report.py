"""report.html of the demo run: every stage, reason and plot; untrusted text inert; nothing loaded."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Literal

import polars as pl
import pytest
import yaml
from click.testing import CliRunner, Result

from cleanmix.filters.length import Length
from cleanmix.pipelines import registry
from cleanmix.pipelines.cli import main
from cleanmix.pipelines.report import CSP, write_report
from conftest import REPO

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


def _folder(tmp_path: Path, stages: list[dict], stats: dict[str, dict]) -> dict:
    """An output folder made by hand: pipeline.yaml, stats/<stage>.json; no data/ and no rejected/ at all."""
    entries = [{"name": s["name"], "type": s["type"], "docs_in": s.get("docs_in", 10), "docs_out": s.get("docs_out", 10),
                "bytes_in": 100, "bytes_out": 100, "seconds": 0.1, "removed": s.get("removed", {}), "modified": {},
                **({"added": s["added"]} if "added" in s else {})} for s in stages]
    (tmp_path / "stats").mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (tmp_path / "stats" / f"{entry['name']}.json").write_text(json.dumps({**entry, **stats.get(entry["name"], {})}))
    config = [{k: v for k, v in s.items() if k not in ("docs_in", "docs_out", "removed", "added")} for s in stages]
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"input": {"path": "in"}, "stages": config}))
    return {"pipeline": "p.yaml", "seconds": 0.2, "input": {"docs": 10, "bytes": 100}, "stages": entries,
            "output": {"docs": entries[-1]["docs_out"], "bytes": 100, "shards": 1}}


def test_stage_sections_come_from_the_recorded_stats(tmp_path):
    """Languages, dedup clusters and mix target vs achieved are drawn from stats/*.json alone (no data files)."""
    stages = [
        {"name": "language", "type": "language", "languages": ["en"], "docs_in": 16, "docs_out": 12, "removed": {"language:not_in[en]": 4}},
        {"name": "minhash_dedup", "type": "minhash_dedup", "docs_in": 12, "docs_out": 10, "removed": {"minhash_dedup:near_duplicate": 2}},
        {"name": "mix", "type": "mix", "weights": {"web": 0.6, "books": 0.4}, "docs_in": 10, "docs_out": 14, "added": 4},
    ]
    stats = {
        "language": {"tallies": {"language:kept": {"en": 12}, "language:removed": {"zh": 3, "<script>x()</script>": 1},
                                 "language_score:kept": {"0.8913": 12}, "language_score:removed": {"0.5012": 4}}},
        "minhash_dedup": {"details": {"clusters": 2, "duplicates": 2, "cluster_sizes": {"2": 2}}},
        "mix": {"details": {"by": "tokens", "total": {"requested": None, "planned": 1000.0, "achieved": 1002},
                            "sources": {"web": {"target_share": 0.6, "achieved_share": {"docs": 0.5, "tokens": 0.58}, "repeats": 4},
                                        "books": {"target_share": 0.4, "achieved_share": {"docs": 0.5, "tokens": 0.42}, "repeats": 0}},
                            "warnings": ["source(s) <b>forum</b> have no weight"]}},
    }
    page = write_report(tmp_path, _folder(tmp_path, stages, stats)).read_text(encoding="utf-8")
    languages = _section(page, "languages")
    assert 'aria-label="languages found"' in languages and "3 languages" in languages
    assert "<script" not in page and "&lt;script&gt;x()" in languages  # data-derived labels are escaped too
    assert 'aria-label="distributions of language measurements"' in _section(page, "distributions")
    assert 'aria-label="minhash_dedup cluster_sizes"' in _section(page, "global")
    mix = _section(page, "global").split("<h3>mix</h3>")[1]
    assert 'aria-label="mix target vs achieved"' in mix and "58.00%" in mix and "60.00%" in mix
    assert "&lt;b&gt;forum&lt;/b&gt;" in mix
    assert "could not be drawn" not in page


def test_an_entry_that_no_longer_parses_costs_only_its_own_sections(tmp_path):
    stages = [{"name": "length", "type": "length", "min_chars": 20, "docs_in": 10, "docs_out": 8, "removed": {"length:too_short": 2}},
              {"name": "gone", "type": "no_such_stage", "docs_in": 8, "docs_out": 8}]
    stats = {"length": {"tallies": {"length_chars:kept": {"100": 8}, "length_chars:removed": {"5.012": 2}}}}
    page = write_report(tmp_path, _folder(tmp_path, stages, stats)).read_text(encoding="utf-8")
    assert "<h3>length</h3><figure" in _section(page, "distributions")
    assert "gone: its entry in pipeline.yaml does not parse" in _section(page, "distributions")
    assert ">gone<" in _section(page, "funnel")


class Toxicity(Length):
    """A stage with its own section, as a plugin would add one."""

    type: Literal["toxicity"] = "toxicity"  # type: ignore[assignment]

    def report_sections(self, stats: dict) -> list[tuple[str, str]]:
        scores = stats["tallies"]["toxicity_score"]
        return [("Toxicity scores", f"<p>{self.label}: {sum(scores.values())} scored &amp; drawn by the stage</p>"),
                *super().report_sections(stats)]


class Broken(Length):
    type: Literal["broken"] = "broken"  # type: ignore[assignment]

    def report_sections(self, stats: dict) -> list[tuple[str, str]]:
        raise RuntimeError("no luck")


def test_a_stage_contributes_its_own_section(tmp_path, monkeypatch):
    """The core asks each stage for its sections: a new stage type adds one without a change to report.py."""
    monkeypatch.setattr(registry, "stage_class", {"toxicity": Toxicity, "broken": Broken}.__getitem__)
    stages = [{"name": "tox", "type": "toxicity", "docs_in": 10, "docs_out": 9, "removed": {"tox:too_short": 1}},
              {"name": "broken", "type": "broken", "docs_in": 9, "docs_out": 9}]
    stats = {"tox": {"tallies": {"toxicity_score": {"0": 7, "0.5": 3}, "length_chars:kept": {"100": 9},
                                 "length_chars:removed": {"2": 1}}}}
    page = write_report(tmp_path, _folder(tmp_path, stages, stats)).read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)">', page)
    assert sections.index("reasons") < sections.index("stage-toxicity-scores") < sections.index("samples")
    assert "<h2>Toxicity scores</h2><p>tox: 10 scored &amp; drawn by the stage</p>" in page
    assert '<a href="#stage-toxicity-scores">Toxicity scores</a>' in page
    assert "<h3>tox</h3><figure" in _section(page, "distributions")  # the inherited filter section still comes
    assert "broken: its sections could not be drawn: RuntimeError(&#x27;no luck&#x27;)" in page


def test_the_core_names_no_stage_type():
    source = (REPO / "pipelines" / "report.py").read_text(encoding="utf-8")
    assert [name for name in registry.stage_types() if re.search(rf"[\"']{name}[\"':]", source)] == []


def test_the_report_measures_nothing(demo_run, tmp_path, monkeypatch):
    """With data/ and rejected/ gone (and Parquet unreadable), the rewritten report is the same page."""
    copy = tmp_path / demo_run.name  # the page's title names the folder
    shutil.copytree(demo_run, copy)
    shutil.rmtree(copy / "data")
    shutil.rmtree(copy / "rejected")
    for reader in ("read_parquet", "scan_parquet"):
        monkeypatch.setattr(pl, reader, lambda *a, **k: pytest.fail("the report read a Parquet file"))
    clean("report", str(copy))
    assert (copy / "report.html").read_text(encoding="utf-8") == (demo_run / "report.html").read_text(encoding="utf-8")


def test_the_distributions_are_exact_counts_recorded_by_the_run(demo_run):
    """Per filter metric, the kept and removed tallies count the documents the stage kept and removed
    (those with a value: a metric may be null, e.g. a Han-only measure of English text)."""
    summary = json.loads((demo_run / "stats" / "summary.json").read_text())
    checked = 0
    for stage in summary["stages"]:
        tallies = json.loads((demo_run / "stats" / f"{stage['name']}.json").read_text())["tallies"]
        for metric in [key.removesuffix(":kept") for key in tallies if key.endswith(":kept")]:
            kept, removed = sum(tallies[f"{metric}:kept"].values()), sum(tallies.get(f"{metric}:removed", {}).values())
            assert kept <= stage["docs_out"] and removed <= sum(stage["removed"].values()), (stage["name"], metric)
            if metric in tallies:  # the 1-2-5 histogram of the same rows keeps its meaning
                assert sum(tallies[metric].values()) == kept + removed, (stage["name"], metric)
            checked += 1
    assert checked >= 40
    length = json.loads((demo_run / "stats" / "length.json").read_text())
    assert sum(length["tallies"]["length_chars:kept"].values()) == length["docs_out"]
    assert sum(length["tallies"]["length_chars:removed"].values()) == length["removed"]["length:too_short"]
    language = json.loads((demo_run / "stats" / "language.json").read_text())
    assert sum(language["tallies"]["language:kept"].values()) == language["docs_out"]
    assert set(language["tallies"]["language:kept"]) == {"en", "zh"}
    assert sum(language["tallies"]["language:removed"].values()) == sum(language["removed"].values())
    found = set(language["tallies"]["language:kept"]) | set(language["tallies"]["language:removed"])
    assert f"({len(found)} languages;" in _section((demo_run / "report.html").read_text(encoding="utf-8"), "languages")


def test_fine_tallies_merge_across_batches():
    """`<metric>:kept` / `:removed` are fine bins (1/20 decade) that sum exactly over batches."""
    from cleanmix.filters.length import Length as LengthFilter
    from cleanmix.pipelines.stats import StageStats

    stage, stats = LengthFilter(min_chars=20), StageStats("length", "length")
    for texts in (["x" * 5, "x" * 25, "x" * 100], ["x" * 5, "x" * 100, ""]):
        df = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
        stats.record(df, stage.process(df), 0.0)
    tallies = stats.tallies
    assert tallies["length_chars:kept"] == {"22.39": 1, "100": 2}
    assert tallies["length_chars:removed"] == {"0": 1, "4.467": 2}
    assert tallies["length_chars"] == {"0": 1, "5": 2, "20": 1, "100": 2}


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
