"""`clean mix-design`: propose a data mixture from small proxy runs, as RegMix (Liu et al., 2024) does.

sweep   survey each source's size the way the `mix` stage counts it, draw candidate mixtures from a
        Dirichlet around the natural distribution (a random temperature between natural and uniform
        and a random concentration between extreme and balanced, so both kinds are sampled), drop
        those that would repeat a source more than `max_repeats` at the planned total (or break a
        cap), and write the candidates as a CSV and as one pipeline file per proxy run.
fit     regress a metric of the proxy runs on their weights (design_models.py), cross-validated;
        then sample many mixtures around the ones trained on, keep the feasible ones (repeat limit,
        caps, `--fix`), and average the best few (RegMix averages its top 100): a convex mean of
        feasible mixtures is feasible. Or `--predict` another CSV of mixtures.

A share's repeat limit is linear: share_s · total ≤ max_repeats_s · available_s, so the feasible
mixtures are a box on the simplex, and the same check serves the sweep and the proposal.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from cleanmix.mix.design_models import FITS, available_engines, best_engine, cross_validate, has_lightgbm, spearman
from cleanmix.mix.mix import BYTES, DOCS, TOKENS, Mix
from cleanmix.pipelines.config import InputConfig, PipelineConfig, load_pipeline
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.shards import Unit, plan_input, read_unit, write_json, write_text
from cleanmix.pipelines.stage import SOURCE

SURVEY_FILE, CANDIDATES_FILE, RUNS_DIR = "survey.json", "candidates.csv", "runs"
RUN_COLUMN = "run"
BATCH = 1024
"""Candidates are drawn in fixed batches: the first N of `--runs 2N` are those of `--runs N`."""
MAX_DRAWS = 1000
"""Draws per requested run before the sweep gives up on finding feasible mixtures."""
SEARCH_SAMPLES, TOP = 50_000, 100
DIGITS = 6
"""Weights are written rounded; feasibility is checked on the rounded, renormalised weights."""
EFFECT_STEP = 0.05


@dataclass
class Survey:
    """The sources' sizes in the mix's unit, and what limits a share: repeats at the planned total, caps."""

    by: str
    available: dict[str, float]
    total: float | None
    max_repeats: dict[str, int]
    caps: dict[str, float] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        return list(self.available)

    def natural(self) -> np.ndarray:
        sizes = np.array([self.available[s] for s in self.sources], dtype=np.float64)
        return sizes / sizes.sum()

    def limits(self) -> np.ndarray:
        """The largest share each source may take (1 where nothing limits it)."""
        limit = np.ones(len(self.sources))
        for i, s in enumerate(self.sources):
            if self.total is not None:
                limit[i] = min(limit[i], self.max_repeats[s] * self.available[s] / self.total)
            limit[i] = min(limit[i], self.caps.get(s, 1.0))
        return limit

    @classmethod
    def load(cls, folder: Path) -> Survey:
        path = folder / SURVEY_FILE
        try:
            data = json.loads(path.read_text())
            return cls(**{k: data[k] for k in ("by", "available", "total", "max_repeats", "caps")})
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path}: not a survey written by `clean mix-design sweep` ({one_line(error)}).") from None


def mix_stage(config: PipelineConfig, origin: str) -> tuple[int, Mix]:
    found = [(i, s) for i, s in enumerate(config.stages) if isinstance(s, Mix)]
    if len(found) != 1:
        raise UserError(
            f"{origin}: mix-design needs exactly one `mix` stage in the pipeline (found {len(found)}): its `by`, "
            "`total`, `max_repeats` and `caps` are what the candidate mixtures must respect."
        )
    return found[0]


def survey(config: PipelineConfig, origin: str, total: float | None = None) -> Survey:
    """Per source, docs, bytes and tokens of the input, counted by the mix stage's own `scan`.

    This is the input before any earlier stage removes documents: the sizes the proxy runs see are
    smaller by what the filters and dedup remove (their stats tell how much)."""
    from cleanmix.pipelines.local import Pool

    _, stage = mix_stage(config, origin)
    plan = plan_input(config.input, config.limit)
    pool = Pool(min(config.workers or 1, max(1, len(plan.units))))
    try:
        parts = pool.map(_count_unit, [(stage, unit, config.input) for unit in plan.units])
    finally:
        pool.close()
    counts = pl.concat([p for p in parts if p.height]).group_by(SOURCE).agg(pl.col(DOCS, BYTES, TOKENS).sum())
    counts = counts.filter(pl.col(SOURCE).is_not_null() & (pl.col(DOCS) > 0)).sort(SOURCE)
    if counts.height < 2:
        raise UserError(f"{origin}: the input has {counts.height} named source(s); a mixture needs at least two "
                        "(set input.sources, or input.source_column).")
    column = {"docs": DOCS, "bytes": BYTES, "tokens": TOKENS}[stage.by]
    available = {s: float(v) for s, v in zip(counts.get_column(SOURCE), counts.get_column(column))}
    return Survey(stage.by, available, total or stage.total, {s: stage.repeats_for(s) for s in available}, dict(stage.caps))


def _count_unit(job: tuple[Mix, Unit, InputConfig]) -> pl.DataFrame:
    stage, unit, config = job
    parts = [stage.scan(batch).group_by(SOURCE).agg(pl.len().alias(DOCS), pl.col(BYTES).sum(), pl.col(TOKENS).sum())
             for batch in read_unit(unit, config)]
    schema = {SOURCE: pl.String, DOCS: pl.Int64, BYTES: pl.Int64, TOKENS: pl.Int64}
    return pl.concat([p.cast(schema) for p in parts]) if parts else pl.DataFrame(schema=schema)


# drawing mixtures ------------------------------------------------------------------------------


def draw(prior: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n mixtures from a Dirichlet around `prior`^τ (τ uniform in [0, 1]: natural to uniform) with a
    concentration log-uniform in [0.1, 10] per source (sparse, extreme mixtures to near the centre)."""
    k = len(prior)
    tau = rng.uniform(0.0, 1.0, n)
    centre = np.maximum(prior, 1e-12)[None, :] ** tau[:, None]
    centre /= centre.sum(axis=1, keepdims=True)
    alpha = np.maximum(centre * k * 10.0 ** rng.uniform(-1.0, 1.0, n)[:, None], 1e-3)
    w = rng.gamma(alpha)
    sums = w.sum(axis=1, keepdims=True)
    return np.where(sums > 0, w / np.where(sums > 0, sums, 1.0), centre)


def rounded(w: np.ndarray) -> np.ndarray:
    w = np.round(w, DIGITS)
    return w / w.sum(axis=1, keepdims=True)


def feasible(w: np.ndarray, limits: np.ndarray) -> np.ndarray:
    return np.all(w <= limits[None, :] * (1 + 1e-9), axis=1)


def with_fixed(w: np.ndarray, fixed: dict[int, float]) -> np.ndarray:
    """Fixed shares set; the other sources keep their proportions in what is left."""
    if not fixed:
        return w
    free = np.ones(w.shape[1], dtype=bool)
    free[list(fixed)] = False
    out = w.copy()
    out[:, ~free] = list(fixed.values())
    rest = w[:, free].sum(axis=1, keepdims=True)
    out[:, free] = np.where(rest > 0, w[:, free] / np.where(rest > 0, rest, 1.0), 1.0 / free.sum()) * (1 - sum(fixed.values()))
    return out


# sweep -------------------------------------------------------------------------------------------


def sweep(pipeline: str, sets: list[str], runs: int, seed: int, out: Path, total: float | None = None) -> dict[str, Any]:
    """Candidates.csv, survey.json and runs/<run>.yaml (the pipeline with the candidate's weights)."""
    config = load_pipeline(pipeline, sets)
    index, stage = mix_stage(config, pipeline)
    sv = survey(config, pipeline, total)
    if sv.total is None:
        raise UserError(f"{pipeline}: the mix stage has no `total`, so no candidate's repeats can be checked: give the proxy "
                        "runs' budget as the stage's `total` (in its unit, `by`) or as --total.")
    limits, prior = sv.limits(), sv.natural()
    if limits.sum() < 1 - 1e-9:
        raise UserError(_too_small(sv, limits, pipeline))
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    drawn = found = 0
    while found < runs and drawn < runs * MAX_DRAWS:
        batch = rounded(draw(prior, BATCH, rng))
        good = np.flatnonzero(feasible(batch, limits))[: runs - found]
        kept.append(batch[good])
        found += len(good)
        drawn += BATCH if found < runs else int(good[-1]) + 1  # the draws up to the last one kept
    if found < runs:
        raise UserError(f"{pipeline}: only {found} of {drawn:,} drawn mixtures are feasible. " + _too_small(sv, limits, pipeline))
    weights = np.vstack(kept)
    ids = [f"run-{i:04d}" for i in range(1, runs + 1)]
    out.mkdir(parents=True, exist_ok=True)
    table = pl.DataFrame({RUN_COLUMN: ids, **{s: weights[:, j] for j, s in enumerate(sv.sources)}})
    table.write_csv(out / CANDIDATES_FILE)
    resolved = _without_nulls(config.resolved())
    for run, w in zip(ids, weights):
        entry = {k: v for k, v in resolved["stages"][index].items() if k != "temperature"}
        entry.update(weights={s: float(x) for s, x in zip(sv.sources, w)}, total=sv.total)
        data = {**resolved, "output": {**resolved["output"], "path": f"{config.output.path}-{run}"},
                "stages": [*resolved["stages"][:index], entry, *resolved["stages"][index + 1:]]}
        write_text(out / RUNS_DIR / f"{run}.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    write_json(out / SURVEY_FILE, {**asdict(sv), "natural": dict(zip(sv.sources, prior.round(6).tolist())),
                                   "limits": dict(zip(sv.sources, limits.round(6).tolist())),
                                   "seed": seed, "runs": runs, "drawn": drawn, "dropped": drawn - runs, "pipeline": pipeline})
    return {"survey": sv, "runs": runs, "drawn": drawn, "dropped": drawn - runs, "out": out}


def _without_nulls(value: Any) -> Any:
    """The resolved pipeline without the keys left at null (their default): a shorter file, the same pipeline."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _too_small(sv: Survey, limits: np.ndarray, origin: str) -> str:
    binding = sorted(zip(limits, sv.sources))[:3]
    listed = ", ".join(f"'{s}' ≤ {x:.3g}" for x, s in binding)
    return (f"The sources are too small for a total of {sv.total:,.0f} {sv.by} with these repeat limits and caps (largest "
            f"shares: {listed}; together {limits.sum():.3g} < 1 is infeasible, and near 1 almost every mixture is). Lower "
            f"the total, or raise max_repeats for the small sources (in {origin}).")


# fit ---------------------------------------------------------------------------------------------


def read_csv(path: str) -> pl.DataFrame:
    try:
        df = pl.read_csv(path, infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise UserError(f"{path}: cannot read it as a CSV file ({one_line(error)[:300]}).") from None
    if df.height == 0 or df.width < 2:
        raise UserError(f"{path}: expected a header and one row per run (an id, weight columns, metric columns); "
                        f"found {df.height} row(s) and {df.width} column(s).")
    return df


def _matching(df: pl.DataFrame, name: str) -> list[str]:
    """The columns a name or glob pattern (`train_*`) names, in the CSV's order; none if absent."""
    if any(ch in name for ch in "*?["):
        return [c for c in df.columns if fnmatch.fnmatchcase(c, name)]
    return [name] if name in df.columns else []


def weight_columns(df: pl.DataFrame, path: str, names: list[str]) -> list[str]:
    """The weight columns: names or glob patterns (`train_*`), in the CSV's order for patterns."""
    columns: list[str] = []
    for name in names:
        if not (matched := _matching(df, name)):
            raise UserError(f"{path}: has no weight column '{name}' (its columns: {_listed(df.columns)}). Weight columns "
                            "are the source names (those of the sweep, or --weights a,b,c).")
        columns += [c for c in matched if c not in columns]
    if len(columns) < 2:
        raise UserError(f"{path}: a mixture needs at least two weight columns; found {columns}.")
    return columns


def numbers(df: pl.DataFrame, columns: list[str], path: str, what: str) -> np.ndarray:
    """The columns as a float matrix; a column that is not numbers, or an empty cell, is the user's to fix."""
    for c in columns:
        if df.get_column(c).null_count():
            row = int(np.flatnonzero(df.get_column(c).is_null().to_numpy())[0]) + 2
            raise UserError(f"{path}: {what} column '{c}' has {df.get_column(c).null_count()} empty cell(s), the first on "
                            f"line {row}. Fill them or remove those rows.")
        bad = df.get_column(c).cast(pl.Float64, strict=False).is_null() if not df.schema[c].is_numeric() else None
        if bad is not None and bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise UserError(f"{path}: {what} column '{c}' holds values that are not numbers (line {row}: {df.get_column(c)[row - 2]!r}).")
    values = df.select(pl.col(columns).cast(pl.Float64)).to_numpy()
    if not np.isfinite(values).all():
        raise UserError(f"{path}: {what} columns hold NaN or infinite values.")
    return values


def mixtures(df: pl.DataFrame, columns: list[str], path: str) -> np.ndarray:
    w = numbers(df, columns, path, "weight")
    if (w < 0).any() or (w.sum(axis=1) <= 0).any():
        row = int(np.flatnonzero((w < 0).any(axis=1) | (w.sum(axis=1) <= 0))[0]) + 2
        raise UserError(f"{path}: weights must be ≥ 0 and not all 0 in a row; line {row} is not.")
    return w / w.sum(axis=1, keepdims=True)


def targets_of(df: pl.DataFrame, specs: list[str], weights: list[str], path: str) -> dict[str, float]:
    """`--target NAME`, `NAME=WEIGHT` or a glob pattern: the metric columns and their weights in the objective."""
    candidates = [c for c in df.columns[1:] if c not in weights and df.schema[c].is_numeric()]
    chosen: dict[str, float] = {}
    for spec in specs:
        name, _, weight = spec.rpartition("=") if _is_number(spec.rpartition("=")[2]) else (spec, "", "1")
        if not (matched := _matching(df, name)):
            raise UserError(f"{path}: has no column '{name}' to use as a target. Numeric columns that may be targets: "
                            f"{_listed(candidates)}.")
        if set(matched) & set(weights):
            raise UserError(f"{path}: '{name}' is a weight column; a target is a metric of the runs.")
        chosen.update({c: float(weight) for c in matched})
    if not any(chosen.values()):
        raise UserError(f"--target weights are all 0 ({chosen}): give at least one target a weight.")
    return chosen


def fixes_of(specs: list[str], sources: list[str]) -> dict[int, float]:
    fixed: dict[int, float] = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        if name not in sources or not _is_number(value) or not 0 <= float(value) <= 1:
            raise UserError(f"--fix {spec}: expected SOURCE=SHARE with SOURCE one of {_listed(sources)} and SHARE in [0, 1].")
        fixed[sources.index(name)] = float(value)
    if len(fixed) >= len(sources) or sum(fixed.values()) > 1 + 1e-9:
        raise UserError(f"--fix: the fixed shares ({', '.join(specs)}) must leave at least one source free and sum to at most 1.")
    return fixed


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _listed(names: list[str], limit: int = 20) -> str:
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "") if names else "(none)"


@dataclass
class Model:
    """One fitted regression per target; the objective is their weighted sum over the sum of |weights|
    (a negative weight: a score to raise while a loss is lowered)."""

    targets: dict[str, float]
    engines: dict[str, str]
    scores: dict[str, dict[str, dict[str, Any]]]
    fitted: dict[str, Any]
    maximize: bool

    def predict(self, w: np.ndarray) -> dict[str, np.ndarray]:
        return {t: np.concatenate([self.fitted[t](chunk) for chunk in np.array_split(w, max(1, len(w) // 5000))])
                for t in self.targets}

    def objective(self, predicted: dict[str, np.ndarray]) -> np.ndarray:
        total = sum(abs(k) for k in self.targets.values())
        return sum(predicted[t] * k for t, k in self.targets.items()) / total  # type: ignore[return-value]


def fit_model(w: np.ndarray, values: dict[str, np.ndarray], targets: dict[str, float], engine: str, seed: int,
              maximize: bool) -> Model:
    if engine == "lightgbm" and not has_lightgbm():
        raise UserError("--engine lightgbm needs the `lightgbm` package: pip install 'cleanmix[design]' "
                        "(or use --engine auto, ridge, kernel or ensemble).")
    engines = available_engines() if engine == "auto" else (engine,)
    scores = {t: cross_validate(w, values[t], engines, seed) for t in targets}
    chosen = {t: best_engine(scores[t]) for t in targets}
    fitted = {t: FITS[chosen[t]](w, values[t], seed) for t in targets}
    return Model(targets, chosen, scores, fitted, maximize)


def propose(model: Model, prior: np.ndarray, limits: np.ndarray, fixed: dict[int, float], seed: int) -> np.ndarray:
    """The mean of the TOP best predicted feasible mixtures among SEARCH_SAMPLES drawn around `prior`."""
    rng = np.random.default_rng(seed)
    w = with_fixed(draw(prior, SEARCH_SAMPLES, rng), fixed)
    w = w[feasible(w, limits)]
    if not len(w):
        raise UserError("no sampled mixture respects the repeat limits, caps and --fix together: the fixed shares "
                        "leave the other sources more than they can fill. Loosen --fix or raise max_repeats.")
    score = model.objective(model.predict(w))
    order = np.argsort(-score if model.maximize else score, kind="stable")
    return w[order[:TOP]].mean(axis=0)


def effects(model: Model, w: np.ndarray) -> np.ndarray:
    """Per source: the predicted change of the objective when EFFECT_STEP of the mix moves to it."""
    moved = w[None, :] * (1 - EFFECT_STEP) + EFFECT_STEP * np.eye(len(w))
    both = model.objective(model.predict(np.vstack([w[None, :], moved])))
    return both[1:] - both[0]


def stage_yaml(sources: list[str], w: np.ndarray, sv: Survey | None) -> str:
    entry: dict[str, Any] = {"type": "mix"}
    if sv is not None:
        entry.update({"by": sv.by, "total": sv.total})
        repeats = set(sv.max_repeats.values())
        entry["max_repeats"] = repeats.pop() if len(repeats) == 1 else dict(sv.max_repeats)
        if sv.caps:
            entry["caps"] = dict(sv.caps)
    entry["weights"] = {s: round(float(x), 4) for s, x in zip(sources, w)}
    return yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, default_flow_style=False)


@dataclass
class FitRequest:
    results: str
    targets: list[str]
    maximize: bool = False
    weights: list[str] | None = None
    sweep: str | None = None
    pipeline: str | None = None
    fixes: list[str] = field(default_factory=list)
    engine: str = "auto"
    seed: int = 0
    predict: str | None = None
    output: str | None = None


def fit(request: FitRequest) -> dict[str, Any]:
    """Fit, then either predict another CSV of mixtures or propose the best mixture (files written)."""
    df = read_csv(request.results)
    sv = Survey.load(Path(request.sweep)) if request.sweep else None
    if request.pipeline:
        sv = survey(load_pipeline(request.pipeline), request.pipeline)
    names = request.weights or (sv.sources if sv else None)
    if not names:
        raise UserError("which columns are the weights? Give --sweep DIR (the sweep's folder), --pipeline FILE, "
                        "or --weights a,b,c (names or patterns such as 'train_*').")
    sources = weight_columns(df, request.results, names)
    if sv is not None and set(sources) - set(sv.sources):
        raise UserError(f"{request.results}: weight columns {_listed(sorted(set(sources) - set(sv.sources)))} are not "
                        f"sources of the survey ({_listed(sv.sources)}).")
    targets = targets_of(df, request.targets, sources, request.results)
    w = mixtures(df, sources, request.results)
    values = dict(zip(targets, numbers(df, list(targets), request.results, "target").T))
    if len(w) < 10:
        raise UserError(f"{request.results}: {len(w)} runs are too few to fit and cross-validate; RegMix used 512 (aim for "
                        "several times the number of sources).")
    model = fit_model(w, values, targets, request.engine, request.seed, request.maximize)
    if request.predict:
        return {"model": model, "predictions": predict_csv(model, request.predict, sources, request.output)}
    fixed = fixes_of(request.fixes, sources)
    at = [sv.sources.index(s) for s in sources] if sv else []
    limits = sv.limits()[at] if sv else np.ones(len(sources))
    over = [f"{sources[i]}={v:g} (at most {limits[i]:.4g})" for i, v in fixed.items() if v > limits[i] * (1 + 1e-9)]
    if over:
        raise UserError(f"--fix {', '.join(over)}: more than the source can fill within max_repeats at the total, or its cap.")
    prior = w.mean(axis=0)
    proposal = propose(model, prior, limits, fixed, request.seed)
    actual = model.objective(values)
    oof = model.objective({t: model.scores[t][model.engines[t]]["predicted"] for t in targets})
    design = {
        "results": request.results, "runs": len(w), "targets": targets, "maximize": request.maximize,
        "engines": model.engines, "sources": sources, "fixed": {sources[i]: v for i, v in fixed.items()},
        "cv": {t: {e: {k: round(v, 6) for k, v in s.items() if k != "predicted"} for e, s in model.scores[t].items()}
               for t in targets},
        "cv_objective": {"spearman": round(spearman(oof, actual), 6), "rmse": round(float(np.sqrt(np.mean((oof - actual) ** 2))), 6)},
        "proposal": dict(zip(sources, proposal.round(6).tolist())),
        "predicted": {t: float(v[0]) for t, v in model.predict(proposal[None, :]).items()},
        "best_run": {"id": str(df.get_column(df.columns[0])[int(np.argmax(actual) if request.maximize else np.argmin(actual))]),
                     "objective": float(actual.max() if request.maximize else actual.min())},
        "prior": dict(zip(sources, (sv.natural()[at] if sv else prior).round(6).tolist())),
        "limits": dict(zip(sources, limits.round(6).tolist())),
        "effects": dict(zip(sources, effects(model, proposal).round(6).tolist())),
    }
    design["predicted_objective"] = float(model.objective({t: np.array([v]) for t, v in design["predicted"].items()})[0])
    out = Path(request.output) if request.output else Path(request.results).with_name(Path(request.results).stem + "-design")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "mix.yaml", stage_yaml(sources, proposal, sv))
    write_json(out / "design.json", design)
    from cleanmix.mix.design_report import render

    write_text(out / "design.html", render(design, actual, oof))
    return {"model": model, "design": design, "out": out}


def predict_csv(model: Model, path: str, sources: list[str], output: str | None) -> Path:
    """Each row's first column (its id), then the predicted value of each target (and the objective)."""
    df = read_csv(path)
    w = mixtures(df, weight_columns(df, path, sources), path)
    predicted = model.predict(w)
    columns: dict[str, Any] = {df.columns[0]: df.get_column(df.columns[0]), **{f"predicted:{t}": v for t, v in predicted.items()}}
    if len(model.targets) > 1:
        columns["predicted:objective"] = model.objective(predicted)
    target = Path(output) if output else Path(path).with_name(Path(path).stem + "-predictions.csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(columns).write_csv(target)
    return target

