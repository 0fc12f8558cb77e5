"""`clean`: run, validate, inspect. User mistakes exit 2 with one paragraph, never a traceback."""

from __future__ import annotations

import functools
import json
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pipelines.errors import UserError


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """cleanmix: clean, deduplicate and mix text corpora for pretraining."""


def _load(pipeline: str, sets: tuple[str, ...], output: str | None, workers: int | None, limit: int | None):
    from pipelines.config import load_pipeline

    overrides = list(sets)
    if output:
        overrides.append(f"output.path={output}")
    if workers:
        overrides.append(f"workers={workers}")
    if limit:
        overrides.append(f"limit={limit}")
    return load_pipeline(pipeline, overrides)


@main.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--output", "-o", help="output folder (overrides output.path)")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="override a key, e.g. stages.0.min_score=0.8")
@click.option("--workers", type=click.IntRange(min=1), help="local worker processes (default: cores)")
@click.option("--engine", type=click.Choice(["local"]), default="local", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="a quick run on the first N documents")
@click.option("--overwrite", is_flag=True, help="replace an output folder made from a different pipeline")
@click.option("--quiet", "-q", is_flag=True, help="no progress output")
@user_errors
def run(pipeline: str, output: str | None, sets: tuple[str, ...], workers: int | None, engine: str,
        limit: int | None, overwrite: bool, quiet: bool) -> None:
    """Run PIPELINE (a pipeline YAML file); re-running resumes an interrupted run."""
    from pipelines.local import run_local
    from pipelines.progress import Reporter

    config = _load(pipeline, sets, output, workers, limit)
    reporter = Reporter(quiet=quiet)
    summary = run_local(config, pipeline, reporter, overwrite=overwrite)
    out = config.output.path
    click.echo(
        f"{summary['input']['docs']:,} documents in, {summary['output']['docs']:,} kept "
        f"in {summary['output']['shards']} shard(s) under {out}/data; report: {out}/report.html",
        err=quiet,
    )


@main.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE")
@user_errors
def validate(pipeline: str, sets: tuple[str, ...]) -> None:
    """Check PIPELINE and its input without running it; print the plan."""
    from pipelines.local import plan_segments
    from pipelines.shards import plan_input

    config = _load(pipeline, sets, None, None, None)
    plan = plan_input(config.input, config.limit)
    click.echo(f"{pipeline}: valid.")
    click.echo(f"input: {len(plan.files)} file(s), {len(plan.units)} unit(s), {plan.docs:,} documents, ~{plan.bytes / 1e6:,.1f} MB of text (uncompressed)")
    for path, why in plan.skipped.items():
        click.echo(f"  will skip unreadable {path}: {why}")
    click.echo(f"output: {config.output.path}   workers: {config.workers or os.cpu_count()}")
    for seg in plan_segments(config):
        names = [s.label for s in seg.all_stages]
        if names:
            click.echo(f"pass {seg.index}: " + " → ".join(names))


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@user_errors
def stats(outdir: str) -> None:
    """Print the summary of a finished run as a table."""
    path = Path(outdir) / "stats" / "summary.json"
    if not path.exists():
        raise UserError(f"{path} does not exist: '{outdir}' is not a finished cleanmix output folder.")
    summary = json.loads(path.read_text())
    table = Table(title=f"{outdir}: {summary['input']['docs']:,} docs in → {summary['output']['docs']:,} out ({summary['seconds']} s)")
    for column in ("stage", "docs in", "docs out", "kept", "MB out", "seconds", "removed / modified"):
        table.add_column(column, justify="left" if column in ("stage", "removed / modified") else "right", no_wrap=column != "removed / modified")
    for stage in summary["stages"]:
        kept = stage["docs_out"] / stage["docs_in"] if stage["docs_in"] else 1.0
        notes = [f"{k} {v:,}" for k, v in stage["removed"].items()] + [f"{k} {v:,} (changed)" for k, v in stage["modified"].items()]
        if stage.get("added"):
            notes.append(f"added {stage['added']:,}")
        table.add_row(stage["name"], f"{stage['docs_in']:,}", f"{stage['docs_out']:,}", f"{kept:.1%}",
                      f"{stage['bytes_out'] / 1e6:,.2f}", f"{stage['seconds']:.2f}", "\n".join(notes) or "—")
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@main.command()
def stages() -> None:
    """List every stage type with its parameters, defaults and meaning."""
    from pipelines.registry import stage_types

    for name, cls in stage_types().items():
        doc = (cls.__doc__ or cls.__module__ and sys.modules[cls.__module__].__doc__ or "").strip()
        click.echo(click.style(name, bold=True) + "  " + " ".join(doc.split()))
        for field_name, field in cls.model_fields.items():
            if field_name == "type":
                continue
            default = "required" if field.is_required() else f"default {json.dumps(field.default, default=str)}"
            kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
            meaning = field.description or ""
            click.echo(textwrap.indent(f"{field_name}: {kind}, {default}. {meaning}".rstrip(), "    "))
        click.echo()


if __name__ == "__main__":
    main()
