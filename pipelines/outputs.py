"""One reader of a finished output folder, for the report, `clean stats` and `clean compare`.

It reads what a run wrote about itself (stats/summary.json, stats/<stage>.json, pipeline.yaml)
and, for comparisons, the id column of data/ and rejected/, lazily. The layout is the output
folder contract of the design; nothing here reads document text.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cleanmix.pipelines.errors import UserError, one_line

SUMMARY = Path("stats") / "summary.json"


class RunFolder:
    """A finished output folder. `summary` may be given while the run is finishing (the report is
    written before summary.json, the file that marks the run finished); otherwise a folder without
    a readable summary.json is a `UserError`."""

    def __init__(self, path: Path | str, summary: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.summary: dict[str, Any] = self._read_summary() if summary is None else summary
        self._stats: dict[str, dict[str, Any]] = {}

    def _read_summary(self) -> dict[str, Any]:
        file = self.path / SUMMARY
        if not self.path.is_dir():
            problem = "it does not exist" if not self.path.exists() else "it is not a folder"
        elif not file.is_file():
            problem = f"it has no {SUMMARY} (clean run writes that file last, so the run has not finished, or never ran there)"
        else:
            try:
                summary = json.loads(file.read_text(encoding="utf-8"))
                if isinstance(summary, dict) and all(isinstance(summary.get(k), t) for k, t in
                                                     (("stages", list), ("input", dict), ("output", dict))):
                    return summary
                problem = f"its {SUMMARY} lacks the stages, input and output entries a run writes"
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                problem = f"its {SUMMARY} cannot be read ({one_line(error)})"
        raise UserError(
            f"'{self.path}' is not a finished cleanmix output folder: {problem}. Give the folder that "
            "`clean run` wrote (output.path of the pipeline); re-running an interrupted run finishes it."
        )

    @property
    def stages(self) -> list[dict[str, Any]]:
        """The summary's entry per stage, in pipeline order."""
        return self.summary.get("stages", [])

    def stage(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.stages if s["name"] == name), None)

    def reasons(self) -> dict[str, int]:
        """Removed documents per reason, over all stages."""
        return {r: n for s in self.stages for r, n in s.get("removed", {}).items()}

    def stats(self, name: str) -> dict[str, Any]:
        """stats/<name>.json (tallies, examples, samples, details, parameters); {} when absent or unreadable."""
        if name not in self._stats:
            file = self.path / "stats" / f"{name}.json"
            try:
                self._stats[name] = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                self._stats[name] = {}
        return self._stats[name]

    @cached_property
    def pipeline_text(self) -> str:
        """The resolved pipeline.yaml that produced the folder ("" when absent)."""
        file = self.path / "pipeline.yaml"
        return file.read_text(encoding="utf-8") if file.is_file() else ""

    @cached_property
    def pipeline(self) -> dict[str, Any]:
        try:
            loaded = yaml.load(self.pipeline_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # (libyaml's: 8x)
        except yaml.YAMLError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    @property
    def id_column(self) -> str:
        """The id column's name in the output files (they keep the input's column names)."""
        return (self.pipeline.get("input") or {}).get("id_column") or "id"

    @property
    def text_column(self) -> str:
        return (self.pipeline.get("input") or {}).get("text_column") or "text"

    def data_files(self) -> list[Path]:
        """The output shards, whatever `output.format` wrote (part-NNNNN.parquet, .jsonl.gz, .jsonl.zst)."""
        return sorted(p for p in (self.path / "data").glob("part-*") if p.is_file())

    def rejected_files(self, stage: str | None = None) -> list[Path]:
        """One stage's removed documents, or every stage's (in folder order)."""
        return sorted((self.path / "rejected").glob(f"{stage or '*'}/*.parquet"))

    def kept_ids(self) -> pl.LazyFrame:
        """Distinct kept ids as text (a mix may repeat a document)."""
        files = self.data_files()
        if not files:
            return pl.LazyFrame(schema={"id": pl.String})
        ids = pl.col(self.id_column).cast(pl.String).alias("id")
        if all(p.suffix == ".parquet" for p in files):
            return pl.scan_parquet(files).select(ids).unique()
        return pl.concat([pl.read_ndjson(p).select(ids) for p in files]).lazy().unique()  # one shard in memory at a time

    def rejected_ids(self) -> pl.LazyFrame:
        """Removed ids as text with their reason, one row per id."""
        files = self.rejected_files()
        if not files:
            return pl.LazyFrame(schema={"id": pl.String, "reason": pl.String})
        frames = [pl.scan_parquet(f).select(pl.col(self.id_column).cast(pl.String).alias("id"), "reason") for f in files]
        return pl.concat(frames).unique("id", keep="first")
