"""report.html: what a run did, for people — one self-contained file that opens offline.

Everything on the page was recorded during the run (stats/summary.json, stats/<stage>.json,
pipeline.yaml): no document is read or measured here, so the report costs the same for any
corpus. The core draws what every stage has (funnel, reasons, changes, samples, time); each stage
adds its own sections through `Stage.report_sections` (a filter's distributions around its
thresholds, a mix's target vs achieved...), so this file names no stage type. Charts are inline
SVG (pipelines/charts.py). The page loads nothing: no script at all, and a Content-Security-Policy
that forbids every fetch, so a `<script>` or a link inside an (escaped) document sample can never
run or call out.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanmix.pipelines import charts
from cleanmix.pipelines.charts import Series, e, figure, n, nbytes, share, table
from cleanmix.pipelines.errors import one_line
from cleanmix.pipelines.outputs import RunFolder
from cleanmix.pipelines.shards import write_text

if TYPE_CHECKING:
    from cleanmix.pipelines.stage import Stage

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
SECTIONS = {
    "funnel": "Funnel",
    "reasons": "Why documents were removed",
    "distributions": "Distributions of measured quantities",
    "languages": "Languages",
    "changes": "Documents changed",
    "global": "Global stages",
    "samples": "Samples of removed documents",
    "time": "Run time per stage",
    "pipeline": "Pipeline",
}
"""The report's sections in page order; a stage's section with another name goes before the samples."""


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """Write `out/report.html` from the run's stats; called at the end of every run."""
    path = out / "report.html"
    write_text(path, render(RunFolder(out, summary)))
    return path


def render(run: RunFolder) -> str:
    """The page, as text: a section with nothing to show is left out."""
    fragments: dict[str, list[str]] = {name: [] for name in SECTIONS}
    for name, build in CORE.items():
        fragments[name].append(_guarded(name, build, run))
    stages, problems = _stages(run)
    for st in run.stages:
        if (stage := stages.get(st["name"])) is not None:
            for name, html in _stage_sections(stage, run.stats(st["name"])):
                fragments.setdefault(name, []).append(html)
    fragments["distributions"] += [f"<p class=note>{e(problem)}</p>" for problem in problems]
    core = list(SECTIONS)
    end = core.index("samples")
    order = core[:end] + [name for name in fragments if name not in SECTIONS] + core[end:]
    nav, body = [], []
    for name in order:
        content = "".join(fragments[name])
        if content:
            title, anchor = SECTIONS.get(name, name), _anchor(name)
            nav.append(f'<a href="#{anchor}">{e(title)}</a>')
            body.append(f'<section id="{anchor}"><h2>{e(title)}</h2>{content}</section>')
    return page(f"cleanmix report: {run.path.name}", "cleanmix run report", _header(run), "\n".join(body), " ".join(nav))


def _anchor(name: str) -> str:
    return name if name in SECTIONS else "stage-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "section")


def _guarded(name: str, build: Callable[[RunFolder], str], run: RunFolder) -> str:
    """One broken section must not cost the user the rest of the report (or the run)."""
    try:
        return build(run)
    except Exception as error:  # noqa: BLE001 - reported on the page and on stderr
        print(f"report: section '{name}' failed: {error!r}", file=sys.stderr)
        return f'<p class="note">This section could not be drawn: {e(repr(error))}</p>'


def _stage_sections(stage: Stage, stats: dict[str, Any]) -> list[tuple[str, str]]:
    """A stage whose sections fail costs only its own part, noted where its charts would be."""
    try:
        return list(stage.report_sections(stats))
    except Exception as error:  # noqa: BLE001 - reported on the page and on stderr
        print(f"report: stage '{stage.label}' failed to draw its sections: {error!r}", file=sys.stderr)
        return [("distributions", f'<p class="note">{e(stage.label)}: its sections could not be drawn: {e(repr(error))}</p>')]


def _stages(run: RunFolder) -> tuple[dict[str, Stage], list[str]]:
    """The resolved stages as objects, by label, and why any is left out: the report of an older
    run still shows everything the core draws. pipeline.yaml is a JSON-mode dump, so JSON-mode
    validation is its exact inverse (int keys)."""
    from cleanmix.pipelines import registry

    stages, problems = {}, []
    for entry in run.pipeline.get("stages") or []:
        label = entry.get("name") or entry.get("type")
        try:
            stage = registry.stage_class(entry["type"]).model_validate_json(json.dumps(entry))
        except Exception as error:  # noqa: BLE001 - e.g. a stage type that is no longer installed
            problems.append(f"{label}: its entry in pipeline.yaml does not parse as a stage of this version "
                            f"({one_line(error)[:300]}), so its own sections are not drawn.")
            continue
        stages[stage.label] = stage
    return stages, problems


# ---------------------------------------------------------------------------------------------
# sections every run has


def _header(run: RunFolder) -> str:
    s = run.summary
    inp, out = s.get("input", {}), s.get("output", {})
    facts = [
        ("pipeline", s.get("pipeline", "")),
        ("started", s.get("started", "")),
        ("took", f"{s.get('seconds', 0):,.1f} s"),
        ("documents", f"{n(inp.get('docs', 0))} in → {n(out.get('docs', 0))} kept ({share(out.get('docs', 0), inp.get('docs', 0))})"),
        ("text", f"{nbytes(inp.get('bytes', 0))} in → {nbytes(out.get('bytes', 0))} kept "
                 f"({share(out.get('bytes', 0), inp.get('bytes', 0))})"),
        ("output shards", n(out.get("shards", 0))),
    ]
    if inp.get("duplicate_ids"):
        facts.append(("duplicate ids", f"{n(inp['duplicate_ids'])} input documents share their id with another"))
    skipped = inp.get("skipped_shards") or {}
    if skipped:
        facts.append(("skipped input", "; ".join(f"{k}: {v}" for k, v in skipped.items())))
    return "<dl class=facts>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>"


def _funnel(run: RunFolder) -> str:
    inp = run.summary.get("input", {})
    labels = ["input"] + [st["name"] for st in run.stages]
    docs = [inp.get("docs", 0)] + [st.get("docs_out", 0) for st in run.stages]
    size = [inp.get("bytes", 0)] + [st.get("bytes_out", 0) for st in run.stages]
    half = charts.WIDE / 2
    left = charts.bars("documents kept after each stage", labels, [Series("documents", docs)],
                       [f"{n(d)} ({share(d, docs[0])})" for d in docs], width=half)
    unit, scale = next((u, f) for u, f in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)) if max(size) >= f or f == 1)
    right = charts.bars(f"text kept after each stage ({unit}, UTF-8)", labels, [Series(unit, [b / scale for b in size], charts.TEAL)],
                        [f"{nbytes(b)} ({share(b, size[0])})" for b in size], width=half)
    tokens = any("tokens_out" in st for st in run.stages)
    head = ["stage", "type", "docs in", "docs out", "kept", "bytes out", "removed", "changes", "added"] + (["tokens out"] if tokens else [])
    rows = []
    for st in run.stages:
        row = [st["name"], st.get("type", ""), n(st.get("docs_in", 0)), n(st.get("docs_out", 0)),
               share(st.get("docs_out", 0), st.get("docs_in", 0)), nbytes(st.get("bytes_out", 0)),
               n(sum(st.get("removed", {}).values())), n(sum(st.get("modified", {}).values())), n(st.get("added", 0))]
        rows.append(row + ([n(st.get("tokens_out", 0))] if tokens else []))
    return figure("funnel: documents and bytes kept after each stage", left, right, columns=2) + table(head, rows, numeric_from=2)


def _stage_colors(run: RunFolder) -> dict[str, str]:
    return {st["name"]: charts.PALETTE[i % len(charts.PALETTE)] for i, st in enumerate(run.stages)}


def _reasons(run: RunFolder) -> str:
    entries = [(st, reason, count) for st in run.stages for reason, count in st.get("removed", {}).items()]
    if not entries:
        return "<p>No stage removed any document.</p>"
    color = _stage_colors(run)
    chart = charts.bars("documents removed, by stage and reason (share of the documents that reached the stage)",
                        [reason for _, reason, _ in entries], [Series("documents", [count for _, _, count in entries])],
                        [f"{n(count)} ({share(count, st.get('docs_in', 0))} of the stage's input)" for st, _, count in entries],
                        colors=[color[st["name"]] for st, _, _ in entries])
    docs = run.summary.get("input", {}).get("docs", 0)
    rows = [[st["name"], reason, n(count), share(count, st.get("docs_in", 0)), share(count, docs)] for st, reason, count in entries]
    head = ["stage", "reason", "documents", "of stage input", "of run input"]
    return figure("removal reasons per stage", chart) + table(head, rows, numeric_from=2)


def _changes(run: RunFolder) -> str:
    entries = [(st, kind, count) for st in run.stages for kind, count in st.get("modified", {}).items()]
    if not entries:
        return ""
    color = _stage_colors(run)
    chart = charts.bars("documents changed, by stage and kind", [kind for _, kind, _ in entries],
                        [Series("documents", [c for _, _, c in entries])],
                        [f"{n(c)} ({share(c, st.get('docs_in', 0))})" for st, _, c in entries],
                        colors=[color[st["name"]] for st, _, _ in entries])
    return figure("documents changed by kind", chart)


def _samples(run: RunFolder) -> str:
    parts = []
    for st in run.stages:
        for reason, rows in (run.stats(st["name"]).get("samples") or {}).items():
            count = st.get("removed", {}).get(reason, 0)
            items = "".join(_sample(row) for row in rows)
            parts.append(f"<details><summary><b>{e(reason)}</b> — {n(count)} removed, {len(rows)} shown</summary>{items}</details>")
    return "".join(parts) or "<p>No samples (no document was removed).</p>"


def _sample(row: dict[str, Any]) -> str:
    """One removed document: its id and measured values, and its text as escaped, inert text."""
    meta = [f"<b>id</b> {e(row.get('id', ''))}"]
    meta += [f"<b>{e(k)}</b> {e(n(v) if charts.is_number(v) else v)}" for k, v in row.items() if k not in ("id", "text", "truncated")]
    more = " <i>(truncated)</i>" if row.get("truncated") else ""
    return f'<div class=sample><div class=meta>{" · ".join(meta)}{more}</div><pre>{e(row.get("text") or "")}</pre></div>'


def _time(run: RunFolder) -> str:
    if not run.stages:
        return ""
    seconds = [float(st.get("seconds", 0)) for st in run.stages]
    total = sum(seconds)
    chart = charts.bars("busy time per stage (seconds, summed over workers)", [st["name"] for st in run.stages],
                        [Series("seconds", seconds, charts.BROWN)], [f"{s:,.2f} s ({share(s, total)})" for s in seconds])
    return figure("run time per stage", chart) + f"<p>Wall-clock time of the whole run: {run.summary.get('seconds', 0):,.2f} s.</p>"


def _pipeline(run: RunFolder) -> str:
    return ("<p>The resolved pipeline that produced this folder (<code>pipeline.yaml</code>):</p>"
            f"<pre class=yaml>{e(run.pipeline_text)}</pre>")


CORE: dict[str, Callable[[RunFolder], str]] = {
    "funnel": _funnel, "reasons": _reasons, "changes": _changes, "samples": _samples, "time": _time, "pipeline": _pipeline,
}


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;
margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:14px 28px}
header h1{margin:0 0 6px;font-size:20px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 28px;z-index:1}
nav a{margin-right:14px;color:#1f3b57;text-decoration:none;font-size:13px}
main{padding:6px 28px 40px;max-width:1180px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:6px 18px 14px;margin:16px 0}
h2{font-size:17px;border-bottom:1px solid #eee;padding-bottom:4px}
h3{font-size:14px;margin:18px 0 4px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0;font-size:13px}
dl.facts dt{opacity:.75}dl.facts dd{margin:0}
figure{margin:8px 0}svg.plot{display:block;width:100%;height:auto}svg.plot text{fill:#222}
figure.cols2{display:grid;grid-template-columns:1fr 1fr;gap:8px}figure.cols3{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;word-break:break-word;background:#f5f5f5;padding:8px;border-radius:4px;font-size:12px;max-height:320px;overflow:auto}
details{margin:6px 0}summary{cursor:pointer}
.sample{border-left:3px solid #e45756;padding-left:10px;margin:8px 0}.sample .meta{font-size:12px;color:#555}
.note{font-size:12px;color:#666}
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head><body>
<header><h1>{heading}</h1>{header}</header>
{nav}<main>
{body}
</main>
</body></html>
"""


def page(title: str, heading: str, header: str, body: str, nav: str | None = None) -> str:
    """A self-contained page: no script, nothing loaded (the CSP forbids it); `title` and `heading`
    are escaped here, `header`, `body` and `nav` are HTML the caller escaped."""
    return PAGE.format(csp=CSP, css=CSS, title=e(title), heading=e(heading), header=header,
                       nav="" if nav is None else f"<nav>{nav}</nav>\n", body=body)
