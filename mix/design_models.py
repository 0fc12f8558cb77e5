"""Regressions from mixture weights to a metric, for `clean mix-design fit`, and their cross-validation.

RegMix fits LightGBM on the proxy runs. On its published runs (fit on 512 1M-parameter models, rank
256 mixtures trained at 60M; benchmarks/mix_design.md) three kinds of model each rank well and make
different errors, so their mean ranks best:

  ridge      a linear model of an additive basis per source (w, √w, log(w + ε) for three ε): the
             diminishing returns of more of one source, as data-mixing laws describe them
  kernel     kernel ridge (Gaussian kernel) on √w: smooth interactions between sources
  lightgbm   gradient-boosted trees, RegMix's choice (optional: pip install 'cleanmix[design]')
  ensemble   the mean of the above

Ridge and kernel pick their regularisation by exact leave-one-out error, computed for a whole grid
from one eigendecomposition. Targets that are all positive (losses) are fitted on a log scale.
`cross_validate` scores every engine with the same seeded folds; `auto` keeps the best per target.
Everything is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

ENGINES = ("ridge", "kernel", "lightgbm", "ensemble")
FOLDS = 5
_EPS = (1e-3, 1e-2, 1e-1)
_LAMBDAS = np.logspace(-4, 2, 13)
_GAMMAS = (0.3, 1.0, 3.0)
Predict = Callable[[np.ndarray], np.ndarray]


def has_lightgbm() -> bool:
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


def available_engines() -> tuple[str, ...]:
    return ENGINES if has_lightgbm() else ("ridge", "kernel", "ensemble")


def _normalised(w: np.ndarray) -> np.ndarray:
    return w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)


def _basis(w: np.ndarray) -> np.ndarray:
    return np.hstack([w, np.sqrt(w), *(np.log(w + eps) for eps in _EPS)])


def _smoother(gram: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Dual ridge coefficients for the λ of least leave-one-out error, and that error (y centred)."""
    values, vectors = np.linalg.eigh(gram)
    values = np.maximum(values, 0.0)
    projected = vectors.T @ y
    best: tuple[float, np.ndarray] = (np.inf, np.zeros_like(y))
    for lam in _LAMBDAS * max(values.max(), 1e-12) / len(y):
        shrink = values / (values + lam)
        fitted = vectors @ (shrink * projected)
        leverage = (vectors**2) @ shrink
        loo = np.mean(((y - fitted) / np.maximum(1 - leverage, 1e-9)) ** 2)
        if loo < best[0]:
            best = (float(loo), vectors @ (projected / (values + lam)))
    return best


@dataclass
class _Scale:
    """The fitted target scale: log for positive targets, then standardised."""

    log: bool
    mean: float
    std: float

    @classmethod
    def of(cls, y: np.ndarray) -> _Scale:
        log = bool(np.all(y > 0))
        t = np.log(y) if log else y
        return cls(log, float(t.mean()), float(t.std()) or 1.0)

    def forward(self, y: np.ndarray) -> np.ndarray:
        return ((np.log(y) if self.log else y) - self.mean) / self.std

    def back(self, t: np.ndarray) -> np.ndarray:
        t = t * self.std + self.mean
        return np.exp(t) if self.log else t


def fit_ridge(w: np.ndarray, y: np.ndarray, seed: int = 0) -> Predict:
    scale = _Scale.of(y)
    features = _basis(_normalised(w))
    mu, sd = features.mean(axis=0), features.std(axis=0) + 1e-12
    z = (features - mu) / sd
    _, alpha = _smoother(z @ z.T, scale.forward(y))
    beta = z.T @ alpha
    return lambda new: scale.back(((_basis(_normalised(new)) - mu) / sd) @ beta)


def _rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    d = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2 * a @ b.T
    return np.exp(-gamma * np.maximum(d, 0.0))


def fit_kernel(w: np.ndarray, y: np.ndarray, seed: int = 0) -> Predict:
    scale = _Scale.of(y)
    x, t = np.sqrt(_normalised(w)), scale.forward(y)
    (_, alpha), gamma = min(((_smoother(_rbf(x, x, g), t), g) for g in _GAMMAS), key=lambda item: item[0][0])
    return lambda new: scale.back(_rbf(np.sqrt(_normalised(new)), x, gamma) @ alpha)


def fit_lightgbm(w: np.ndarray, y: np.ndarray, seed: int = 0) -> Predict:
    """RegMix's regressor with LightGBM's default trees; one thread and a seed: the same model every time."""
    import lightgbm

    params = {"objective": "regression", "verbosity": -1, "seed": seed, "num_threads": 1, "deterministic": True,
              "min_data_in_leaf": min(20, max(2, len(y) // 10))}
    booster = lightgbm.train(params, lightgbm.Dataset(_normalised(w), y), num_boost_round=100)
    return lambda new: booster.predict(_normalised(new))


def fit_ensemble(w: np.ndarray, y: np.ndarray, seed: int = 0) -> Predict:
    members = [FITS[name](w, y, seed) for name in available_engines() if name != "ensemble"]
    return lambda new: np.mean([member(new) for member in members], axis=0)


FITS: dict[str, Callable[[np.ndarray, np.ndarray, int], Predict]] = {
    "ridge": fit_ridge, "kernel": fit_kernel, "lightgbm": fit_lightgbm, "ensemble": fit_ensemble,
}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    rho = spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def cross_validate(w: np.ndarray, y: np.ndarray, engines: tuple[str, ...], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Out-of-fold predictions on the same seeded folds for every engine: Spearman ρ and RMSE.

    The ensemble's out-of-fold prediction is the mean of its members', so it costs no extra fit."""
    folds = np.array_split(np.random.default_rng(seed).permutation(len(y)), min(FOLDS, len(y)))
    members = [name for name in engines if name != "ensemble"]
    predicted = {name: np.empty(len(y)) for name in members}
    for held in folds:
        train = np.setdiff1d(np.arange(len(y)), held)
        for name in members:
            predicted[name][held] = FITS[name](w[train], y[train], seed)(w[held])
    if "ensemble" in engines:
        predicted["ensemble"] = np.mean([predicted[name] for name in members], axis=0)
    return {name: {"spearman": spearman(p, y), "rmse": float(np.sqrt(np.mean((p - y) ** 2))), "predicted": p}
            for name, p in predicted.items()}


def best_engine(scores: dict[str, dict[str, Any]]) -> str:
    """Highest cross-validated ρ; on a tie, the engine listed first (the simpler)."""
    return max((name for name in ENGINES if name in scores), key=lambda name: scores[name]["spearman"])
