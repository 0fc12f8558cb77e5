"""design.html for `clean mix-design fit`: is the fit good enough to trust, and what does it propose?

Predicted (out of fold) vs actual objective per proxy run, the cross-validated ρ and RMSE of every
engine per target, the proposed weights against the prior and the repeat limits, and each source's
effect. Self-contained like report.html: inline SVG from pipelines/charts.py (every string escaped),
no script, the same Content-Security-Policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cleanmix.mix.design import EFFECT_STEP, SEARCH_SAMPLES, TOP
from cleanmix.pipelines import charts
from cleanmix.pipelines.charts import Series, e, figure, table
from cleanmix.pipelines.report import page


def render(design: dict[str, Any], actual: np.ndarray, predicted: np.ndarray) -> str:
    sources = design["sources"]
    goal = "maximise" if design["maximize"] else "minimise"
    targets = design["targets"]
    objective = "weighted mean of " + ", ".join(f"{k:g}·{t}" for t, k in targets.items()) if len(targets) > 1 else next(iter(targets))
    plotted = objective if len(targets) == 1 else "objective"
    facts = [("runs", design["runs"]), ("objective", f"{goal} {objective}"),
             ("cross-validated ρ (objective)", f"{design['cv_objective']['spearman']:.4f}"),
             ("predicted objective of the proposal", f"{design['predicted_objective']:.6g}"),
             ("best proxy run", f"{design['best_run']['id']} ({design['best_run']['objective']:.6g})")]
    facts += [("fixed", ", ".join(f"{s} = {v:g}" for s, v in design["fixed"].items()))] if design["fixed"] else []
    header = "<dl class=facts>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>"
    proposal = [design["proposal"][s] for s in sources]
    prior = [design["prior"][s] for s in sources]
    shares = charts.bars("proposed share vs prior (natural distribution, or the runs' mean)", sources,
                         [Series("proposed", proposal, charts.KEPT), Series("prior", prior, charts.TEAL)])
    limits = [[s, f"{design['proposal'][s]:.2%}", f"{design['prior'][s]:.2%}", f"{design['limits'][s]:.2%}",
               f"{design['effects'][s]:+.4g}"] for s in sources]
    effect = charts.bars(f"change of the predicted objective when {EFFECT_STEP:.0%} of the mix moves to the source "
                         f"({'higher' if design['maximize'] else 'lower'} is better)", sources,
                         [Series("effect", [abs(design["effects"][s]) for s in sources])],
                         [f"{design['effects'][s]:+.3g}" for s in sources],
                         colors=[charts.KEPT if (design["effects"][s] > 0) == design["maximize"] else charts.REMOVED for s in sources])
    cv_rows = [[t, e_, f"{s['spearman']:.4f}", f"{s['rmse']:.4g}", "chosen" if design["engines"][t] == e_ else ""]
               for t, engines in design["cv"].items() for e_, s in engines.items()]
    body = [
        _section("Proposed mixture", figure("proposed vs prior shares", shares)
                 + table(["source", "proposed", "prior", "most share allowed", "effect"], limits)
                 + f"<p class=note>The mean of the {TOP} best predicted mixtures among {SEARCH_SAMPLES:,} drawn around the "
                   "mixtures trained on (the feasible ones). Most share allowed: max_repeats × available ÷ total, and any cap.</p>"
                 + figure("effect per source", effect)),
        _section("How well the fit predicts", figure("predicted vs actual objective", scatter(actual, predicted, plotted), columns=2)
                 + "<p class=note>Each run predicted by a model fitted without it (5-fold cross-validation).</p>"
                 + table(["target", "engine", "Spearman ρ", "RMSE", ""], cv_rows, numeric_from=2)),
    ]
    return page(f"cleanmix mixture design: {design['results']}", "cleanmix mixture design", header, "\n".join(body))


def _section(title: str, content: str) -> str:
    return f"<section><h2>{e(title)}</h2>{content}</section>"


def scatter(actual: np.ndarray, predicted: np.ndarray, label: str, width: float = 520, height: float = 420) -> str:
    """Actual (x) vs predicted (y), one dot per run, and the diagonal."""
    lo, hi = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    x0, y0, size = 60.0, 30.0, min(width - 80, height - 70)

    def at(v: np.ndarray | float) -> np.ndarray | float:
        return (v - lo) / (hi - lo) * size

    body = [charts.svg_text(x0 + size / 2, 12, f"{label}: predicted (out of fold) vs actual", "middle", bold=True)]
    body += [charts.svg_rect(x0, y0, size, size, "#fff"), charts.svg_line(x0, y0 + size, x0 + size, y0, charts.GRID, dashed=True)]
    for tick in np.linspace(lo, hi, 5)[1:-1]:
        body += [charts.svg_text(x0 + at(tick), y0 + size + 12, f"{tick:.4g}", "middle", size=10),
                 charts.svg_text(x0 - 4, y0 + size - at(tick), f"{tick:.4g}", "end", size=10)]
    body += [f'<circle cx="{x0 + at(a):.1f}" cy="{y0 + size - at(p):.1f}" r="2.2" fill="{charts.KEPT}" fill-opacity="0.6"/>'
             for a, p in zip(actual, predicted)]
    body += [charts.svg_line(x0, y0 + size, x0 + size, y0 + size), charts.svg_line(x0, y0, x0, y0 + size),
             charts.svg_text(x0 + size / 2, y0 + size + 28, "actual", "middle"),
             charts.svg_text(x0 - 44, y0 + size / 2, "predicted", "middle", rotate=True)]
    return charts.svg_page(width, height, body)
