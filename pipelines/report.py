"""report.html: what a run did, for people — one self-contained file that opens offline.

Plots are matplotlib figures inlined as SVG (text kept as text, so CJK labels render with the
browser's fonts). The page loads nothing: no script at all, and a Content-Security-Policy that
forbids every fetch, so a `<script>` or a link inside an (escaped) document sample can never run
or call out. Inputs are the run's own files: stats/*.json, pipeline.yaml, and bounded samples of
data/ and rejected/ for the distributions of measured quantities.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow.parquet as pq
import yaml

from cleanmix.pipelines.errors import one_line
from cleanmix.pipelines.shards import write_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from cleanmix.pipelines.stage import Filter, Stage

SAMPLE_ROWS = 2000
"""Rows measured per population for a distribution: enough for a histogram, cheap at any scale."""
MAX_FILES = 40
"""Files a sample is spread over (evenly spaced), so sampling cost does not grow with the corpus."""
TOP_LANGUAGES = 25
RATIO_WORDS = ("target", "achieved", "actual", "ratio", "share", "weight")
"""Fields of a per-source mapping drawn side by side (a mix's target vs achieved); others are tabled."""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
KEPT, REMOVED, ACCENT = "#4c78a8", "#e45756", "#222222"


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """Write `out/report.html` from the run's files; called at the end of every run."""
    path = out / "report.html"
    write_text(path, render(out, summary))
    return path


def render(out: Path, summary: dict[str, Any]) -> str:
    """The page, as text: sections with nothing to show (no languages, no global stage) are left out."""
    import matplotlib

    run = Run(out, summary)
    sections = [
        ("funnel", "Funnel", _funnel),
        ("reasons", "Why documents were removed", _reasons),
        ("distributions", "Distributions of measured quantities", _distributions),
        ("languages", "Languages", _languages),
        ("changes", "Documents changed (PII and normalisation)", _changes),
        ("global", "Dedup and mix", _global_details),
        ("samples", "Samples of removed documents", _samples),
        ("time", "Run time per stage", _time),
        ("pipeline", "Pipeline", _pipeline),
    ]
    nav, body = [], []
    with matplotlib.rc_context(STYLE):  # style applies while artists are made, and stays local
        for anchor, title, build in sections:
            content = _guarded(build, run)
            if content:
                nav.append(f'<a href="#{anchor}">{_e(title)}</a>')
                body.append(f'<section id="{anchor}"><h2>{_e(title)}</h2>{content}</section>')
    return PAGE.format(csp=CSP, css=CSS, title=_e(f"cleanmix report: {out.name}"), header=_header(run),
                       nav=" ".join(nav), body="\n".join(body))


def _guarded(build: Callable[[Run], str], run: Run) -> str:
    """One broken section must not cost the user the rest of the report (or the run)."""
    try:
        return build(run)
    except Exception as error:  # noqa: BLE001 - reported on the page and on stderr
        print(f"report: section '{build.__name__.strip('_')}' failed: {error!r}", file=sys.stderr)
        return f'<p class="note">This section could not be drawn: {_e(repr(error))}</p>'


class Run:
    """The files of one output folder, read lazily and defensively (stage authors add keys)."""

    def __init__(self, out: Path, summary: dict[str, Any]) -> None:
        self.out = out
        self.summary = summary
        self.stages: list[dict[str, Any]] = summary.get("stages", [])
        self.resolved = _read(out / "pipeline.yaml")
        self.pipeline: dict[str, Any] = yaml.safe_load(self.resolved) or {} if self.resolved else {}
        self.problems: list[str] = []
        self._rows: dict[Path, int] = {}
        self.objects = self._stage_objects()

    def _stage_objects(self) -> dict[str, Stage]:
        """The resolved stages as objects, by label; one that no longer parses is left out, not fatal.

        pipeline.yaml is a JSON-mode dump, so JSON-mode validation is its exact inverse (int keys)."""
        from cleanmix.pipelines.registry import stage_types

        try:
            known, objects = stage_types(), {}
        except Exception as error:  # noqa: BLE001 - a broken stage module costs the distributions only
            self.problems.append(f"stage types could not be loaded ({error!r}): measured quantities are not drawn.")
            return {}
        for entry in self.pipeline.get("stages") or []:
            try:
                stage = known[entry["type"]].model_validate_json(json.dumps(entry))
            except Exception as error:  # noqa: BLE001 - a report of an older run still shows everything else
                self.problems.append(f"{entry.get('name') or entry.get('type')}: its entry in pipeline.yaml does not parse "
                                     f"as a stage of this version ({one_line(error)[:300]}), so it is not measured here.")
                continue
            objects[stage.label] = stage
        return objects

    def detail(self, name: str) -> dict[str, Any]:
        text = _read(self.out / "stats" / f"{name}.json")
        return json.loads(text) if text else {}

    def renames(self) -> dict[str, str]:
        """Output column names → canonical `id`/`text` (output files keep the input's names)."""
        source = self.pipeline.get("input") or {}
        return {source.get("text_column") or "text": "text", source.get("id_column") or "id": "id"}

    def files(self, folder: str) -> list[Path]:
        return sorted((self.out / folder).glob("*.parquet"))

    def rows(self, files: list[Path]) -> int:
        """Rows in these files, from their footers; each footer is read once per report (every filter counts data/)."""
        for path in files:
            if path not in self._rows:
                self._rows[path] = pq.ParquetFile(path).metadata.num_rows
        return sum(self._rows[path] for path in files)

    def pools_after(self, index: int) -> list[list[Path]]:
        """The documents stage `index` kept: the output, plus what any later stage removed."""
        pools = [self.files("data")]
        pools += [self.files(f"rejected/{stage['name']}") for stage in self.stages[index + 1:]]
        return [pool for pool in pools if pool]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: float | int) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"


def _bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.2f} {unit}"
        value /= 1000
    return f"{value:,.2f} TB"


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "—"


# ---------------------------------------------------------------------------------------------
# matplotlib → inline SVG


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def _svg(fig: Figure, alt: str) -> str:
    """The figure as inline SVG, without the XML prolog, DTD link, RDF metadata or namespace URLs."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    svg = re.sub(r'\s(width|height)="[^"]*"', "", svg, count=2)
    return f'<figure role="img" aria-label="{_e(alt)}">{svg.replace("<svg", "<svg class=plot", 1)}</figure>'


STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "cleanmix",
    "text.parse_math": False,
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
}


def _hbars(ax: Axes, labels: list[str], values: list[float], notes: list[str], colors: list[str] | str = KEPT) -> None:
    """Horizontal bars, first label on top, each annotated (count and share)."""
    y = list(range(len(labels)))
    ax.barh(y, values, color=colors)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    top = max(values, default=0) or 1
    for yi, value, note in zip(y, values, notes):
        ax.text(value + top * 0.01, yi, note, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.3)
    ax.tick_params(axis="y", length=0)


# ---------------------------------------------------------------------------------------------
# sections


def _header(run: Run) -> str:
    s = run.summary
    inp, out = s.get("input", {}), s.get("output", {})
    facts = [
        ("pipeline", s.get("pipeline", "")),
        ("started", s.get("started", "")),
        ("took", f"{s.get('seconds', 0):,.1f} s"),
        ("documents", f"{_n(inp.get('docs', 0))} in → {_n(out.get('docs', 0))} kept ({_share(out.get('docs', 0), inp.get('docs', 0))})"),
        ("text", f"{_bytes(inp.get('bytes', 0))} in → {_bytes(out.get('bytes', 0))} kept ({_share(out.get('bytes', 0), inp.get('bytes', 0))})"),
        ("output shards", _n(out.get("shards", 0))),
    ]
    skipped = inp.get("skipped_shards") or {}
    if skipped:
        facts.append(("skipped input", "; ".join(f"{k}: {v}" for k, v in skipped.items())))
    return "<dl class=facts>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>"


def _funnel(run: Run) -> str:
    inp = run.summary.get("input", {})
    labels = ["input"] + [st["name"] for st in run.stages]
    docs = [inp.get("docs", 0)] + [st.get("docs_out", 0) for st in run.stages]
    size = [inp.get("bytes", 0)] + [st.get("bytes_out", 0) for st in run.stages]
    fig = _figure(10, 0.9 + 0.28 * len(labels))
    left, right = fig.subplots(1, 2, sharey=True)
    _hbars(left, labels, docs, [f"{_n(d)} ({_share(d, docs[0])})" for d in docs])
    left.set_title("documents kept after each stage")
    unit, scale = next((u, f) for u, f in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)) if max(size) >= f or f == 1)
    _hbars(right, labels, [b / scale for b in size], [f"{_bytes(b)} ({_share(b, size[0])})" for b in size], "#72b7b2")
    right.set_title(f"text kept after each stage ({unit}, UTF-8)")
    tokens = any("tokens_out" in st for st in run.stages)
    head = ["stage", "type", "docs in", "docs out", "kept", "bytes out", "removed", "changes", "added"] + (["tokens out"] if tokens else [])
    rows = []
    for st in run.stages:
        removed = sum(st.get("removed", {}).values())
        row = [st["name"], st.get("type", ""), _n(st.get("docs_in", 0)), _n(st.get("docs_out", 0)),
               _share(st.get("docs_out", 0), st.get("docs_in", 0)), _bytes(st.get("bytes_out", 0)), _n(removed),
               _n(sum(st.get("modified", {}).values())), _n(st.get("added", 0))]
        rows.append(row + ([_n(st.get("tokens_out", 0))] if tokens else []))
    return _svg(fig, "funnel: documents and bytes kept after each stage") + _table(head, rows, numeric_from=2)


def _table(head: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    def cells(row: list[Any], tag: str) -> str:
        return "".join(f'<{tag}{" class=num" if i >= numeric_from else ""}>{_e(v)}</{tag}>' for i, v in enumerate(row))

    return f"<table><thead><tr>{cells(head, 'th')}</tr></thead><tbody>" + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows) + "</tbody></table>"


def _reasons(run: Run) -> str:
    entries = [(st, reason, count) for st in run.stages for reason, count in st.get("removed", {}).items()]
    if not entries:
        return "<p>No stage removed any document.</p>"
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    color = {st["name"]: palette[i % len(palette)] for i, st in enumerate(run.stages)}
    fig = _figure(10, 0.8 + 0.24 * len(entries))
    ax = fig.subplots()
    _hbars(ax, [reason for _, reason, _ in entries], [count for _, _, count in entries],
           [f"{_n(count)} ({_share(count, st.get('docs_in', 0))} of the stage's input)" for st, _, count in entries],
           [color[st["name"]] for st, _, _ in entries])
    ax.set_title("documents removed, by stage and reason (share of the documents that reached the stage)")
    rows = [[st["name"], reason, _n(count), _share(count, st.get("docs_in", 0)), _share(count, run.summary.get("input", {}).get("docs", 0))]
            for st, reason, count in entries]
    return _svg(fig, "removal reasons per stage") + _table(["stage", "reason", "documents", "of stage input", "of run input"], rows, numeric_from=2)


def _time(run: Run) -> str:
    if not run.stages:
        return ""
    fig = _figure(10, 0.8 + 0.24 * len(run.stages))
    ax = fig.subplots()
    seconds = [float(st.get("seconds", 0)) for st in run.stages]
    total = sum(seconds)
    _hbars(ax, [st["name"] for st in run.stages], seconds, [f"{s:,.2f} s ({_share(s, total)})" for s in seconds], "#9d755d")
    ax.set_title("busy time per stage (seconds, summed over workers)")
    return _svg(fig, "run time per stage") + f"<p>Wall-clock time of the whole run: {run.summary.get('seconds', 0):,.2f} s.</p>"


def _pipeline(run: Run) -> str:
    return f"<p>The resolved pipeline that produced this folder (<code>pipeline.yaml</code>):</p><pre class=yaml>{_e(run.resolved)}</pre>"


def _changes(run: Run) -> str:
    entries = [(st, kind, count) for st in run.stages for kind, count in st.get("modified", {}).items()]
    if not entries:
        return ""
    fig = _figure(10, 0.8 + 0.24 * len(entries))
    ax = fig.subplots()
    colors = [REMOVED if st.get("type") == "pii" else "#b279a2" for st, _, _ in entries]
    _hbars(ax, [kind for _, kind, _ in entries], [c for _, _, c in entries],
           [f"{_n(c)} ({_share(c, st.get('docs_in', 0))})" for st, _, c in entries], colors)
    ax.set_title("documents changed, by stage and kind (PII: documents where that kind was replaced)")
    return _svg(fig, "documents changed by kind")


# ---------------------------------------------------------------------------------------------
# distributions


def _distributions(run: Run) -> str:
    from cleanmix.pipelines.stage import Filter

    parts = [_filter_distribution(run, index, stage) for index, st in enumerate(run.stages)
             if isinstance(stage := run.objects.get(st["name"]), Filter)]
    parts.append(_output_distribution(run))
    parts += [f"<p class=note>{_e(problem)}</p>" for problem in run.problems]
    return "".join(p for p in parts if p)


def _sample(files: list[Path], rows: int, columns: list[str] | None, renames: dict[str, str]) -> pl.DataFrame:
    """Up to `rows` rows spread over evenly spaced files, each read from its start (bounded I/O)."""
    if not files or rows <= 0:
        return pl.DataFrame()
    step = max(1, math.ceil(len(files) / MAX_FILES))
    chosen = files[::step]
    per_file = max(1, math.ceil(rows / len(chosen)))
    frames = []
    for path in chosen:
        lazy = pl.scan_parquet(path).rename(renames, strict=False)
        names = lazy.collect_schema().names()
        wanted = names if columns is None else [c for c in columns if c in names]
        frames.append(lazy.select(wanted).head(per_file).collect())
    return pl.concat(frames, how="diagonal_relaxed").head(rows)


def _filter_distribution(run: Run, index: int, stage: Filter) -> str:
    """Each measured quantity of one filter over the documents that reached it: kept vs removed."""
    rules = [rule for rule in stage.rules() if rule.metric]
    metrics = list(dict.fromkeys(rule.metric for rule in rules))
    st = run.stages[index]
    removed_files = run.files(f"rejected/{st['name']}")
    removed = _sample(removed_files, SAMPLE_ROWS, metrics, run.renames())
    kept_pools = run.pools_after(index)
    kept_rows = [run.rows(pool) for pool in kept_pools]
    total_kept = sum(kept_rows)
    parts = [part for pool, n in zip(kept_pools, kept_rows) if n
             if (part := _sample(pool, math.ceil(SAMPLE_ROWS * n / total_kept), ["id", "text"], run.renames())).height]
    kept = stage.measured(pl.concat(parts, how="diagonal_relaxed").select("id", "text")) if parts else pl.DataFrame()
    weights = (total_kept / kept.height if kept.height else 0.0,
               run.rows(removed_files) / removed.height if removed.height else 0.0)
    numeric = [m for m in metrics if _numeric(kept, m) or _numeric(removed, m)]
    if not numeric:
        return ""
    fig, axes = _grid(len(numeric))
    for ax, metric in zip(axes, numeric):
        thresholds = [(rule.name, rule.threshold) for rule in rules if rule.metric == metric and rule.threshold is not None]
        _histogram(ax, metric, _values(kept, metric), _values(removed, metric), weights, thresholds)
    _fit_titles(fig, axes)
    fig.suptitle(f"{st['name']}: measured over the documents that reached it "
                 f"(blue: kept by this stage, red: removed by it; dashed: thresholds)", fontsize=9)
    note = (f"<p class=note>From a sample of {_n(kept.height)} kept and {_n(removed.height)} removed documents, "
            "weighted to the stage's counts; kept documents are measured on their final text; the axis is clipped to "
            "the 0.5–99.5 percentiles.</p>")
    return f"<h3>{_e(st['name'])}</h3>" + _svg(fig, f"distributions of {st['name']} measurements") + note


def _grid(panels: int) -> tuple[Figure, Any]:
    """Three small histograms per row, the unused cells hidden. Fixed margins (in inches) instead
    of a constrained layout: the distributions have dozens of panels, and solving their layout took
    more than half the report's time."""
    rows = math.ceil(panels / 3)
    height = 2.4 * rows + 0.4
    fig = _figure(10, height, layout=None)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.45 / height, wspace=0.35)
    axes = fig.subplots(rows, 3, squeeze=False).ravel()
    for ax in axes[panels:]:
        ax.axis("off")
    return fig, axes


def _fit_titles(fig: Figure, axes: Any) -> None:
    """Room above each row of a grid for its titles (a threshold off the scale adds a line)."""
    lines = [ax.get_title().count("\n") + 1 for ax in axes]
    first, later = max(lines[:3], default=1), max(lines[3:], default=1)
    fig.subplots_adjust(top=1 - (0.45 + 0.2 * first) / fig.get_figheight(), hspace=0.45 + 0.12 * later)


def _numeric(df: pl.DataFrame, column: str) -> bool:
    return column in df.columns and df.schema[column].is_numeric()


def _values(df: pl.DataFrame, column: str) -> list[float]:
    if not _numeric(df, column):
        return []
    values = df.get_column(column).cast(pl.Float64)
    return values.filter(values.is_finite()).to_list()


def _histogram(ax: Axes, metric: str, kept: list[float], removed: list[float], weights: tuple[float, float],
               thresholds: list[tuple[str, float]]) -> None:
    import numpy as np
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    every = np.asarray(kept + removed)
    if every.size == 0:
        ax.set_title(metric)
        ax.text(0.5, 0.5, "no values", ha="center", transform=ax.transAxes)
        return
    lo, hi = np.quantile(every, [0.005, 0.995])
    span = (hi - lo) or max(abs(hi), 1.0)
    shown = [(name, t) for name, t in thresholds if lo - span <= t <= hi + span]
    lo = min([lo] + [t for _, t in shown])
    hi = max([hi] + [t for _, t in shown])
    integral = bool((every == np.round(every)).all())
    if integral and hi - lo <= 60:
        bins = np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.5)
    elif integral and lo >= 0 and hi > 50 * max(lo, 1):
        bins = np.unique(np.round(np.geomspace(max(lo, 1), hi + 1, 40)))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
        ax.xaxis.set_major_locator(MaxNLocator(5))  # small numbers have long labels: fewer, so they never touch
    shown = [(name, t) for name, t in shown if bins[0] <= t <= bins[-1]]  # a 0 has no place on a log axis
    clip = (lambda v: np.clip(np.asarray(v), bins[0], bins[-1]))
    ax.hist([clip(kept), clip(removed)], bins=bins, stacked=True, histtype="stepfilled", color=[KEPT, REMOVED],
            weights=[np.full(len(kept), weights[0]), np.full(len(removed), weights[1])])
    for name, t in shown:
        ax.axvline(t, color=ACCENT, linestyle="--", linewidth=1)
        ax.annotate(name, (t, 1), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=7)
    hidden = [f"{name}={t:g}" for name, t in thresholds if (name, t) not in shown]
    ax.set_title(metric + (f"\n(off-scale: {', '.join(hidden)})" if hidden else ""))
    ax.set_ylabel("documents")
    ax.yaxis.set_major_locator(MaxNLocator(4))  # each tick label is laid out as text: a few suffice


def _output_distribution(run: Run) -> str:
    """Numeric columns that stages added to the kept documents (language_score, dup_cluster_size…)."""
    data = run.files("data")
    if not data:
        return ""
    schema = pq.read_schema(data[0])
    skip = set(run.renames()) | {"id", "text"}
    columns = [f.name for f in schema if f.name not in skip and not f.name.endswith("_id")]
    sample = _sample(data, SAMPLE_ROWS, columns, {})
    numeric = [c for c in columns if _numeric(sample, c)]
    if not numeric or not sample.height:  # (no kept document: an empty part with the schema)
        return ""
    weight = run.rows(data) / sample.height
    fig, axes = _grid(len(numeric))
    for ax, column in zip(axes, numeric):
        _histogram(ax, column, _values(sample, column), [], (weight, 0.0), [])
    _fit_titles(fig, axes)
    fig.suptitle("columns added to the kept documents", fontsize=9)
    return "<h3>kept documents</h3>" + _svg(fig, "distributions of columns of the kept documents")


# ---------------------------------------------------------------------------------------------
# languages, global stages, samples


def _languages(run: Run) -> str:
    """Exact counts of the `language` column over kept and removed documents (one column, streamed)."""
    pools = [("kept", run.files("data"))] + [("removed", run.files(f"rejected/{st['name']}")) for st in run.stages]
    counts = []
    for status, files in pools:
        if files and "language" in pq.read_schema(files[0]).names:
            counts.append(pl.scan_parquet(files).group_by("language").len().with_columns(pl.lit(status).alias("status")))
    if not counts:
        return ""
    table = (pl.concat(counts).collect().pivot("status", index="language", values="len", aggregate_function="sum")
             .fill_null(0))
    for status in ("kept", "removed"):
        if status not in table.columns:
            table = table.with_columns(pl.lit(0).alias(status))
    table = table.with_columns(pl.col("language").fill_null("(none)")).sort(pl.col("kept") + pl.col("removed"), descending=True)
    top = table.head(TOP_LANGUAGES)
    fig = _figure(10, 0.8 + 0.22 * top.height)
    ax = fig.subplots()
    labels, kept, removed = top["language"].to_list(), top["kept"].to_list(), top["removed"].to_list()
    y = range(len(labels))
    ax.barh(y, kept, color=KEPT, label="kept")
    ax.barh(y, removed, left=kept, color=REMOVED, label="removed")
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title(f"documents per detected language ({table.height} languages; top {top.height} shown)")
    return _svg(fig, "languages found")


def _global_details(run: Run) -> str:
    """Whatever a global stage put in `details`: scalars and mappings as tables, numbers as bars."""
    parts = []
    for st in run.stages:
        details = run.detail(st["name"]).get("details")
        if not isinstance(details, dict) or not details:
            continue
        unit = details.get("by") if isinstance(details.get("by"), str) else None
        scalars = [[k, _n(v) if _number(v) else v] for k, v in details.items() if not isinstance(v, (dict, list))]
        figures = [_details_chart(st["name"], key, value, unit) for key, value in _paired(details).items() if isinstance(value, dict) and value]
        notes = [f"<li>{_e(key)}: {_e(item)}</li>" for key, value in details.items() if isinstance(value, list) for item in value]
        parts.append(f"<h3>{_e(st['name'])}</h3>" + "".join(figures) + (_table(["detail", "value"], scalars) if scalars else "")
                     + (f"<ul>{''.join(notes)}</ul>" if notes else ""))
    return "".join(parts)


def _paired(details: dict[str, Any]) -> dict[str, Any]:
    """{target: {web: .6}, achieved: {web: .58}} → {"target vs achieved": {web: {target: .6, achieved: .58}}}."""
    ratios = [k for k, v in details.items() if any(w in k for w in RATIO_WORDS) and isinstance(v, dict) and v and all(map(_number, v.values()))]
    if len(ratios) < 2:
        return details
    rest = {k: v for k, v in details.items() if k not in ratios}
    sources = dict.fromkeys(source for k in ratios for source in details[k])
    return {**rest, " vs ".join(ratios): {source: {k: details[k].get(source, 0) for k in ratios} for source in sources}}


def _flat(row: dict[str, Any], unit: str | None) -> dict[str, Any]:
    """One level of nesting flattened; {docs, bytes, tokens} breakdowns keep only the mix's unit."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            picked = {unit: value[unit]} if unit in value else value
            flat.update({key if unit in value else f"{key}.{sub}": v for sub, v in picked.items()})
        else:
            flat[key] = value
    return flat


def _details_chart(stage: str, key: str, value: dict[str, Any], unit: str | None) -> str:
    """Numbers → bars; per-source records → their shares (target vs achieved) as grouped bars and a table;
    other mappings → a table."""
    import numpy as np

    if all(_number(v) for v in value.values()):
        fig = _figure(10, 0.8 + 0.24 * len(value))
        ax = fig.subplots()
        total = sum(value.values())
        _hbars(ax, list(map(str, value)), list(value.values()), [f"{_n(v)} ({_share(v, total)})" for v in value.values()])
        ax.set_title(f"{stage}: {key.replace('_', ' ')}")
        ax.set_ylabel(key.replace("_", " "))
        return _svg(fig, f"{stage} {key}")
    rows = {k: _flat(v, unit) for k, v in value.items() if isinstance(v, dict)}
    if not rows:
        return _table([key, "value"], [[k, _n(v) if _number(v) else v] for k, v in value.items()])
    fields = list(dict.fromkeys(f for v in rows.values() for f in v))
    numeric = [f for f in fields if all(_number(v.get(f, 0)) for v in rows.values())]
    shares = [f for f in numeric if "share" in f or "ratio" in f]
    ratios = shares or [f for f in numeric if any(word in f for word in RATIO_WORDS)]
    table = _table([key, *fields], [[k, *(_n(v[f]) if _number(v.get(f)) else v.get(f, "") for f in fields)] for k, v in rows.items()])
    if not ratios:
        return table
    fig = _figure(10, 0.9 + 0.3 * len(rows) * max(1, len(ratios)) / 2)
    ax = fig.subplots()
    height = 0.8 / len(ratios)
    y = np.arange(len(rows))
    for i, name in enumerate(ratios):
        values = [float(v.get(name, 0) or 0) for v in rows.values()]
        bars = ax.barh(y + i * height, values, height=height, label=name)
        ax.bar_label(bars, labels=[f"{v:,.4g}" for v in values], fontsize=7, padding=2)
    ax.set_yticks(y + height * (len(ratios) - 1) / 2, list(rows))
    ax.invert_yaxis()
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title(f"{stage}: {key.replace('_', ' ')}" + (f" (by {unit})" if unit else ""))
    return _svg(fig, f"{stage} {key}") + table


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _samples(run: Run) -> str:
    parts = []
    for st in run.stages:
        samples = run.detail(st["name"]).get("samples") or {}
        for reason, rows in samples.items():
            count = st.get("removed", {}).get(reason, 0)
            items = "".join(_sample_html(row) for row in rows)
            parts.append(f"<details><summary><b>{_e(reason)}</b> — {_n(count)} removed, {len(rows)} shown</summary>{items}</details>")
    return "".join(parts) or "<p>No samples (no document was removed).</p>"


def _sample_html(row: dict[str, Any]) -> str:
    """One removed document: its id and measured values, and its text as escaped, inert text."""
    meta = [f"<b>id</b> {_e(row.get('id', ''))}"]
    meta += [f"<b>{_e(k)}</b> {_e(_n(v) if _number(v) else v)}"
             for k, v in row.items() if k not in ("id", "text", "truncated")]
    more = " <i>(truncated)</i>" if row.get("truncated") else ""
    return f'<div class=sample><div class=meta>{" · ".join(meta)}{more}</div><pre>{_e(row.get("text") or "")}</pre></div>'


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;margin:0;color:#222;background:#fafafa}
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
figure{margin:8px 0}svg.plot{max-width:100%;height:auto}
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
<header><h1>cleanmix run report</h1>{header}</header>
<nav>{nav}</nav>
<main>
{body}
</main>
</body></html>
"""
