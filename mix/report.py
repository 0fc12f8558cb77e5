"""The mix's part of report.html, from the details its `decide` recorded: per source the target
share next to the achieved one (in the unit of `by`), what was available, selected and output,
the plan's totals, and its warnings."""

from __future__ import annotations

from typing import Any

from cleanmix.pipelines import charts


def sections(label: str, details: dict[str, Any]) -> list[tuple[str, str]]:
    if not details:
        return []
    by = details.get("by") or "tokens"
    sources: dict[str, dict[str, Any]] = details.get("sources") or {}
    parts = [f"<h3>{charts.e(label)}</h3>"]
    if sources:
        names = list(sources)
        target = [float(sources[s].get("target_share") or 0) for s in names]
        achieved = [float(_unit(sources[s].get("achieved_share"), by) or 0) for s in names]
        chart = charts.bars(f"{label}: share of the mix by {by}, target vs achieved", names,
                            [charts.Series("target", target, charts.KEPT), charts.Series("achieved", achieved, charts.TEAL)])
        rows = [[s, f"{t:.2%}", f"{a:.2%}", charts.n(_unit(info.get("available"), by) or 0), charts.n(_unit(info.get("selected"), by) or 0),
                 charts.n(_unit(info.get("output"), by) or 0), charts.n(info.get("repeats", 0)), f"{info.get('epochs', 0):.3g}",
                 charts.n(info.get("max_repeats", 1)), charts.n(info.get("shortfall", 0))]
                for (s, info), t, a in zip(sources.items(), target, achieved)]
        head = ["source", "target share", "achieved share", f"available {by}", f"selected {by}", f"output {by}",
                "repeated docs", "epochs", "max repeats", f"shortfall {by}"]
        parts += [charts.figure(f"{label} target vs achieved", chart), charts.table(head, rows)]
    total = details.get("total")
    if isinstance(total, dict):
        rows = [[k, "—" if v is None else charts.n(v)] for k, v in total.items()]
        parts.append(charts.table([f"total ({by})", "value"], rows + [["feasible", str(details.get("feasible", ""))]]))
    not_mixed = details.get("not_mixed") or {}
    if not_mixed:
        parts.append(charts.table(["source not in the mix", "documents removed"], [[s, charts.n(d)] for s, d in not_mixed.items()]))
    warnings = details.get("warnings") or []
    if warnings:
        parts.append("<ul>" + "".join(f"<li>{charts.e(w)}</li>" for w in warnings) + "</ul>")
    return [("global", "".join(parts))]


def _unit(value: Any, by: str) -> Any:
    """A {docs, bytes, tokens} breakdown's value in the mix's unit (a plain number is itself)."""
    return value.get(by) if isinstance(value, dict) else value
