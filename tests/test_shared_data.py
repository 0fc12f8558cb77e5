"""The real-data tests skip on a fresh clone but fail in CI, where a skip would pass unseen."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_shared_data


def test_missing_shared_data_skips_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_shared_data(tmp_path / "absent")


def test_missing_shared_data_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_shared_data(tmp_path / "absent")
    assert require_shared_data(tmp_path) == tmp_path
