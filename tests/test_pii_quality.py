"""Recall and precision of the pii stage on real data (../shared/data), with the benchmark's scorer.

Thresholds sit a little under what benchmarks/pii.md measures, so a regression fails and noise
does not.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cleanmix.filters.pii import PII

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pii.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pii", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_pii"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_presidio_spans(bench: ModuleType, shared_data: Path) -> None:
    scores = bench.score_presidio(PII(), shared_data)
    assert set(scores) == {"email", "phone", "ip", "credit_card", "iban", "us_ssn"}
    for kind, score in scores.items():
        assert score.recall >= (0.97 if kind == "phone" else 0.98), (kind, score)
        assert score.precision >= 0.98, (kind, score)


def test_chinese_cases(bench: ModuleType, shared_data: Path) -> None:
    for kind, score in bench.score_cn_cases(PII(), shared_data).items():
        assert score.gold > 0, (kind, score)  # cases were read: the check below is not vacuous
        assert score.found == score.gold and score.correct == score.predicted, (kind, score)


def test_generated_values_and_lookalikes(bench: ModuleType, shared_data: Path) -> None:
    scores, lookalikes = bench.generated(PII(), shared_data, per_case=200, seed=1)
    for kind, score in scores.items():
        assert score.recall >= 0.98, (kind, score)
    changed, total = (sum(x) for x in zip(*lookalikes.values()))
    assert changed / total <= 0.01, lookalikes
    assert all(c / t <= 0.05 for c, t in lookalikes.values()), lookalikes
