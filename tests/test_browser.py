"""The demo report in a real headless Chromium: no console message at all, and a screenshot.

The report has no script and a Content-Security-Policy that forbids every fetch, so any console
line means something is wrong: a script that ran, or a blocked attempt to load a resource (the
CSP violation is logged). Chromium writes console messages to stderr with --enable-logging; the
two control pages prove the harness sees both kinds. Skipped where Chromium is absent; CI
installs Debian's chromium in .ci/run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import HOSTILE, demo_runs

from cleanmix.pipelines.report import CSP

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it in .ci/run)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def chromium(page: Path, tmp: Path, action: str = "--dump-dom", *args: str) -> tuple[list[str], str]:
    """Open `page` and do `action` (headless Chromium exits after it); returns the console lines and stdout."""
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", action, *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line], result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return demo_runs(tmp_path_factory.getbasetemp() / "demo", both=False)[1] / "report.html"


def test_harness_sees_scripts_and_blocked_loads(tmp_path):
    page = tmp_path / "control.html"
    page.write_text("<!doctype html><title>x</title><script>console.error('script ran')</script>")
    assert any("script ran" in line for line in chromium(page, tmp_path)[0])
    page.write_text(f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{CSP}"><img src="http://example.invalid/a.png">')
    assert any("example.invalid" in line for line in chromium(page, tmp_path)[0])


def test_report_opens_with_no_console_message_and_screenshots(report, tmp_path):
    shot = tmp_path / "report.png"
    console, _ = chromium(report, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400")
    assert console == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_untrusted_text_stays_text_in_the_dom(report, tmp_path):
    console, dom = chromium(report, tmp_path)
    assert console == []
    assert "<script" not in dom.lower() and "<img" not in dom.lower() and "<svg" in dom
    assert "&lt;script&gt;x&lt;/script&gt;" in dom and HOSTILE["hostile-script"] not in dom
