"""report.html: what the run did, for people; self-contained, opens offline."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    rows = []
    for stage in summary["stages"]:
        reasons = ", ".join(f"{html.escape(k)}: {v:,}" for k, v in stage["removed"].items()) or "—"
        rows.append(
            f"<tr><td>{html.escape(stage['name'])}</td><td>{stage['docs_in']:,}</td><td>{stage['docs_out']:,}</td>"
            f"<td>{stage['bytes_out']:,}</td><td>{reasons}</td></tr>"
        )
    resolved = (out / "pipeline.yaml").read_text(encoding="utf-8") if (out / "pipeline.yaml").exists() else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>cleanmix report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body>
<h1>cleanmix run</h1>
<p>{summary['input']['docs']:,} documents in, {summary['output']['docs']:,} out, in {summary['seconds']} s.</p>
<table><tr><th>stage</th><th>docs in</th><th>docs out</th><th>bytes out</th><th>removed</th></tr>
{''.join(rows)}
</table>
<h2>Pipeline</h2><pre>{html.escape(resolved)}</pre>
<script type="application/json" id="summary">{html.escape(json.dumps(summary))}</script>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
