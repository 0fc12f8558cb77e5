"""`clean`: run, validate, inspect. User mistakes exit 2 with one paragraph, never a traceback."""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from cleanmix.pipelines.errors import UserError, one_line


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper


RESUMES = "Re-running the same command resumes: finished work is kept."


@contextmanager
def run_failures(config: Any) -> Iterator[None]:
    """What stops a run from outside (Ctrl-C, a full disk, a killed worker): one paragraph, no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: the run stopped. {RESUMES}", err=True)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - a full disk can surface from any library, even as a Rust panic
        from cleanmix.pipelines.storage import ENDPOINT_HINT, is_store_error

        if _worker_died(error):
            click.echo(
                "error: a worker process died while the run was going (killed from outside, most often by the "
                "out-of-memory killer). Lower `workers` or `input.batch_rows` if memory is short. " + RESUMES, err=True)
            sys.exit(1)
        if is_store_error(error):
            click.echo(f"error: the object store failed while the run was going ({one_line(error)[:300]}). {ENDPOINT_HINT} "
                       + RESUMES, err=True)
            sys.exit(1)
        if not _disk_full(error):
            raise
        click.echo(f"error: the disk is full ({one_line(error)[:200]}). {_space_needed(config)} "
                   f"Free some space, then {RESUMES[0].lower() + RESUMES[1:]}", err=True)
        sys.exit(1)


def _worker_died(error: BaseException) -> bool:
    """The process pool's module is imported only by a run with workers (12 ms of every other run's start)."""
    process = sys.modules.get("concurrent.futures.process")
    return process is not None and isinstance(error, process.BrokenProcessPool)


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)


def _space_needed(config: Any) -> str:
    """Scratch space: every pass writes the rows it keeps, and the rows it read go once it is done
    (`run.release_read`), so at most two passes' rows are held; the output is written at the end."""
    from cleanmix.pipelines.run import plan_segments

    passes = min(2, sum(seg.writes for seg in plan_segments(config.stages)))
    try:
        from cleanmix.pipelines.shards import input_files

        size = sum(os.path.getsize(path) for location in config.input.locations().values()
                   for path in input_files(location, config.input.format)[0])
    except Exception:  # noqa: BLE001 - the estimate is a courtesy
        return f"A run needs free space of about {passes + 1}× its input's size on disk in the output folder."
    return (f"A run needs free space of about {passes + 1}× its input's size on disk in the output folder "
            f"({passes} pass(es) of scratch files, then the output): about {(passes + 1) * size / 1e9:,.2f} GB here.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """cleanmix: clean, deduplicate and mix text corpora for pretraining."""


def _load(pipeline: str, sets: tuple[str, ...], output: str | None, workers: int | None, limit: int | None):
    from cleanmix.pipelines.config import load_pipeline

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
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: processes on this machine; ray: Ray Data on a Ray cluster (pip install 'cleanmix[ray]')")
@click.option("--address", help="--engine ray: the cluster to join (auto, or HOST:PORT); default: start a local Ray")
@click.option("--limit", type=click.IntRange(min=1), help="a quick run on the first N documents")
@click.option("--overwrite", is_flag=True, help="replace an output folder made from a different pipeline")
@click.option("--quiet", "-q", is_flag=True, help="no progress output")
@user_errors
def run(pipeline: str, output: str | None, sets: tuple[str, ...], workers: int | None, engine: str,
        address: str | None, limit: int | None, overwrite: bool, quiet: bool) -> None:
    """Run PIPELINE (a pipeline YAML file); re-running resumes an interrupted run."""
    # Before NumPy loads, and inherited by the workers: NumPy's BLAS would start a thread per core in every
    # process (0.05 CPU s each on two cores, more on more) for linear algebra no stage of a run does.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from cleanmix.pipelines.local import run_local
    from cleanmix.pipelines.progress import Reporter

    config = _load(pipeline, sets, output, workers, limit)
    reporter = Reporter(quiet=quiet)
    if address and engine != "ray":
        raise UserError("--address joins a Ray cluster: use it with --engine ray.")
    with run_failures(config):
        if engine == "ray":
            from cleanmix.pipelines.ray_engine import run_ray

            summary = run_ray(config, pipeline, reporter, overwrite=overwrite, address=address)
        else:
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
    from cleanmix.pipelines.run import plan_run, plan_segments

    config = _load(pipeline, sets, None, None, None)
    plan = plan_run(config)
    click.echo(f"{pipeline}: valid.")
    docs = f"{plan.docs:,} documents" if plan.docs is not None else "documents counted as read (JSON Lines, WARC)"
    text = f", ~{plan.bytes / 1e6:,.1f} MB of text (uncompressed)" if plan.bytes is not None else ""
    click.echo(f"input: {len(plan.files)} file(s), {len(plan.units)} unit(s), {docs}{text}")
    for path, why in plan.skipped.items():
        click.echo(f"  will skip unreadable {path}: {why}")
    click.echo(f"output: {config.output.path}   workers: {config.workers or os.cpu_count()}")
    for seg in plan_segments(config.stages):
        names = [s.label for s in seg.all_stages]
        if names:
            click.echo(f"pass {seg.index}: " + " → ".join(names))


@main.command()
@click.argument("outdir", type=click.Path())
@user_errors
def stats(outdir: str) -> None:
    """Print the summary of a finished run: a row per stage, then its reasons and changes."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cleanmix.pipelines.outputs import RunFolder
    from cleanmix.pipelines.storage import is_url

    if is_url(outdir):
        from cleanmix.pipelines.output_store import local_copy

        with local_copy(outdir) as folder:
            summary = RunFolder(folder).summary
    else:
        summary = RunFolder(outdir).summary
    inp, out = summary.get("input", {}), summary.get("output", {})
    table = Table(title=f"{outdir}: {inp.get('docs', 0):,} docs in → {out.get('docs', 0):,} kept "
                        f"({_pct(out.get('docs', 0), inp.get('docs', 0))}) in {summary.get('seconds', 0):,.1f} s")
    for column in ("stage", "docs in", "docs out", "kept", "MB out", "seconds", "removed / modified", "of stage input"):
        table.add_column(column, justify="left" if column in ("stage", "removed / modified") else "right", no_wrap=True)
    for stage in summary.get("stages", []):
        docs_in = stage.get("docs_in", 0)
        notes = [(f"{k} {v:,}", v, "red") for k, v in sorted(stage.get("removed", {}).items(), key=lambda item: -item[1])]
        notes += [(f"{k} {v:,} (changed)", v, "magenta") for k, v in stage.get("modified", {}).items()]
        if stage.get("added"):
            notes.append((f"added {stage['added']:,}", stage["added"], "green"))
        first = notes[0] if notes else ("—", None, "dim")
        table.add_row(Text(stage["name"]), f"{docs_in:,}", f"{stage.get('docs_out', 0):,}", _pct(stage.get("docs_out", 0), docs_in),
                      f"{stage.get('bytes_out', 0) / 1e6:,.2f}", f"{stage.get('seconds', 0):.2f}", *_note(first, docs_in),
                      end_section=len(notes) <= 1)
        for i, note in enumerate(notes[1:], 2):
            table.add_row("", "", "", "", "", "", *_note(note, docs_in), end_section=i == len(notes))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def _note(note: tuple[str, int | None, str], docs_in: int) -> tuple[Any, str]:
    """A reason (or change) and its share of the stage's input; a rich Text, not markup: reasons hold brackets."""
    from rich.text import Text

    label, count, style = note
    return Text(label, style=style), "" if count is None else _pct(count, docs_in)


@main.command()
@click.argument("outdir", type=click.Path())
@user_errors
def report(outdir: str) -> None:
    """(Re)write OUTDIR/report.html from a finished run's stats."""
    from cleanmix.pipelines.outputs import RunFolder
    from cleanmix.pipelines.report import write_report
    from cleanmix.pipelines.storage import is_url

    if not is_url(outdir):
        click.echo(write_report(Path(outdir), RunFolder(outdir).summary))
        return
    from cleanmix.pipelines.output_store import local_copy, publish_report

    with local_copy(outdir) as folder:
        write_report(folder, RunFolder(folder).summary)
        click.echo(publish_report(outdir, folder / "report.html"))


@main.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--text", help="the document's text")
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True), help="a UTF-8 text file holding the document")
@click.option("--id", "doc_id", help="the id of a document in the pipeline's input (or in --input)")
@click.option("--input", "location", help="with --id: a folder, file or glob of Parquet to look in (default: the pipeline's input)")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="override a key, e.g. stages.1.min_chars=500")
@click.option("--json", "as_json", is_flag=True, help="print the explanation as JSON")
@user_errors
def explain(pipeline: str, text: str | None, file_: str | None, doc_id: str | None, location: str | None,
            sets: tuple[str, ...], as_json: bool) -> None:
    """Run PIPELINE's document stages on one document: per rule, the measured value, the threshold, the verdict."""
    import polars as pl

    from cleanmix.pipelines.explain import explain as explain_docs
    from cleanmix.pipelines.explain import find_document

    if sum(x is not None for x in (text, file_, doc_id)) != 1:
        raise UserError("give exactly one of --text, --file or --id (with --id, optionally --input DIR).")
    if location and doc_id is None:
        raise UserError("--input says where to look for --id: use it with --id.")
    config = _load(pipeline, sets, None, None, None)
    if doc_id is not None:
        docs = find_document(config, doc_id, location)
    else:
        body = text if text is not None else Path(file_).read_text(encoding="utf-8")  # type: ignore[arg-type]
        docs = pl.DataFrame({"id": [file_ or "--text"], "text": [body]})
    (result,) = explain_docs(config, docs)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        return
    _print_explanation(result)


def _print_explanation(result: dict[str, Any]) -> None:
    """Ids, reasons and rule names are printed as text, never read as rich markup."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 120)
    verdict = "[green]kept[/]" if result["verdict"] == "kept" else f"[red]removed[/] by [bold]{escape(result['reason'])}[/]"
    console.print(f"document [bold]{escape(result['id'])}[/]: {verdict}")
    for stage in result["stages"]:
        outcome = stage["outcome"] + (f" ({stage['reason']})" if stage.get("reason") else "")
        notes = [n for n in (stage.get("note"), stage.get("not_reached")) if n]
        changes = ", ".join(f"{k} {v}" for k, v in (stage.get("changes") or {}).items())
        console.print(f"\n[bold]{escape(stage['name'])}[/] ({stage['type']}): " + escape(outcome + (f" — {changes}" if changes else ""))
                      + "".join(f"\n  [dim]{escape(n)}[/]" for n in notes))
        if stage.get("rules"):
            table = Table(show_edge=False, pad_edge=False)
            for column in ("rule", "measured", "value", "threshold", "verdict"):
                table.add_column(column, justify="right" if column in ("value", "threshold") else "left")
            for rule in stage["rules"]:
                value = rule["value"]
                shown = "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
                threshold = "—" if rule["threshold"] is None else f"{rule['threshold']:g}"
                table.add_row(Text(rule["rule"]), Text(rule["metric"] or "—"), shown, threshold,
                              "[red]fails[/]" if rule["fails"] else "[green]passes[/]")
            console.print(table)


@main.command()
@click.argument("out_a", type=click.Path())
@click.argument("out_b", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
@user_errors
def compare(out_a: str, out_b: str, as_json: bool) -> None:
    """Two finished runs side by side: docs per stage, changed reasons, documents kept by one only (by id)."""
    from cleanmix.pipelines.compare import compare as compare_runs

    result = compare_runs(Path(out_a), Path(out_b))
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 140)
    table = Table(title=f"A = {out_a}   B = {out_b}")
    for column in ("stage", "A in", "A out", "B in", "B out", "Δ out (B − A)"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in result["stages"]:
        a, b = stage["a"] or {}, stage["b"] or {}
        delta = b.get("docs_out", 0) - a.get("docs_out", 0) if stage["a"] and stage["b"] else None
        table.add_row(Text(stage["name"]), *(f"{x[k]:,}" if x else "—" for x in (a, b) for k in ("docs_in", "docs_out")),
                      "—" if delta is None else f"{delta:+,}")
    console.print(table)
    if result["reasons_changed"]:
        reasons = Table(title="reasons whose counts changed")
        for column in ("reason", "A", "B", "Δ"):
            reasons.add_column(column, justify="left" if column == "reason" else "right")
        for row in result["reasons_changed"]:
            reasons.add_row(Text(row["reason"]), f"{row['a']:,}", f"{row['b']:,}", f"{row['b'] - row['a']:+,}")
        console.print(reasons)
    else:
        console.print("no reason's count changed")
    console.print(f"kept by both: {result['kept_by_both']:,}")
    for side, other in (("a", "B"), ("b", "A")):
        only = result[f"kept_only_by_{side}"]
        console.print(f"kept only by {side.upper()}: {only['docs']:,}" + ("" if not only["docs"] else f" — {other} removed them as:"))
        for reason, count in only["by_reason_in_other"].items():
            console.print(f"  {reason}: {count:,}", markup=False)
    if result["pipeline_diff"]:
        console.print("\npipeline.yaml differs:", highlight=False)
        console.print("\n".join(result["pipeline_diff"]), markup=False, highlight=False)


def _type_name(annotation: Any) -> str:
    """`int`, `filter | annotate`, `list[str] | None`: how a parameter's type reads in `clean stages`."""
    import typing

    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(str(value) for value in typing.get_args(annotation))
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


@main.command()
def stages() -> None:
    """List every stage type with its parameters, defaults and meaning."""
    from cleanmix.pipelines.registry import stage_types

    for name, cls in stage_types().items():
        doc = (cls.__doc__ or cls.__module__ and sys.modules[cls.__module__].__doc__ or "").strip()
        click.echo(click.style(name, bold=True) + "  " + " ".join(doc.split()))
        for field_name, field in cls.model_fields.items():
            if field_name == "type":
                continue
            default = "required" if field.is_required() else f"default {json.dumps(field.default, default=str)}"
            kind = _type_name(field.annotation)
            meaning = field.description or ""
            click.echo(textwrap.indent(f"{field_name}: {kind}, {default}. {meaning}".rstrip(), "    "))
        click.echo()


@main.command("train-classifier")
@click.option("--positive", required=True, help="documents to score high: a folder, file or glob (Parquet, JSON Lines, WARC/WET)")
@click.option("--negative", required=True, help="documents to score low, read the same way")
@click.option("--output", "-o", required=True, help="the model file to write; its card goes next to it (<stem>.card.json, .card.md)")
@click.option("--text-column", default="text", show_default=True, help="the text column of both inputs")
@click.option("--format", "format_", type=click.Choice(["parquet", "jsonl", "warc"]), help="the inputs' format (default: by extension)")
@click.option("--limit", type=int, help="read at most this many documents of each input")
@click.option("--held-out", type=float, default=0.1, show_default=True, help="share of each input kept out of training for the evaluation")
@click.option("--seed", type=int, default=0, show_default=True, help="the same seed and inputs give the same model, byte for byte")
@click.option("--lowercase", is_flag=True, help="lowercase the text (the classifier stage then does too, from the card)")
@click.option("--cjk", type=click.Choice(["chars", "none"]), default="chars", show_default=True,
              help="chars: a space around every Han character and kana, so that fastText sees them as words")
@click.option("--epoch", type=int, default=5, show_default=True)
@click.option("--lr", type=float, default=0.5, show_default=True)
@click.option("--dim", type=int, default=64, show_default=True)
@click.option("--word-ngrams", type=int, default=2, show_default=True)
@click.option("--min-count", type=int, default=1, show_default=True)
@click.option("--bucket", type=int, default=200_000, show_default=True, help="hash buckets for word n-grams")
@click.option("--overwrite", is_flag=True, help="replace a model this command wrote before")
@user_errors
def train_classifier(positive: str, negative: str, output: str, text_column: str, format_: str | None, limit: int | None,
                     held_out: float, seed: int, lowercase: bool, cjk: str, epoch: int, lr: float, dim: int, word_ngrams: int,
                     min_count: int, bucket: int, overwrite: bool) -> None:
    """Train a fastText classifier for the `classifier` stage from a POSITIVE and a NEGATIVE input."""
    from pydantic import ValidationError

    from cleanmix.filters.train_classifier import TrainSettings, train

    try:
        settings = TrainSettings(positive=positive, negative=negative, output=output, text_column=text_column, format=format_,
                                 limit=limit, held_out=held_out, seed=seed, lowercase=lowercase, cjk=cjk, epoch=epoch, lr=lr,
                                 dim=dim, word_ngrams=word_ngrams, min_count=min_count, bucket=bucket)
    except ValidationError as error:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in error.errors())
        raise UserError(f"clean train-classifier: {problems}.") from None
    card = train(settings, overwrite=overwrite)
    held, data = card["held_out"], card["data"]
    click.echo(f"{output}: trained on {data['positive']['train']:,} positive and {data['negative']['train']:,} negative documents; "
               f"held out {held['docs']:,}: precision {held['precision']}, recall {held['recall']}, AUC {held['auc']}. "
               f"Card: {Path(output).with_suffix('.card.md')}")
    click.echo(f"  - type: classifier\n    model_path: {output}\n    keep_top: 0.1")


@main.group("mix-design")
def mix_design() -> None:
    """Propose a data mixture from small proxy runs (RegMix): sweep candidates, then fit their results."""


@mix_design.command("sweep")
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--runs", type=click.IntRange(min=1), required=True, help="how many feasible candidate mixtures (proxy runs)")
@click.option("--output", "-o", default="mix-design", show_default=True, help="folder for candidates.csv, survey.json, runs/")
@click.option("--seed", type=int, default=0, show_default=True, help="the same seed draws the same candidates")
@click.option("--total", type=click.FloatRange(min=0, min_open=True), help="the proxy runs' budget in the mix's unit (default: its total)")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE", help="override a key of PIPELINE")
@user_errors
def mix_design_sweep(pipeline: str, runs: int, output: str, seed: int, total: float | None, sets: tuple[str, ...]) -> None:
    """Survey PIPELINE's sources and write candidate mixtures, one pipeline file per proxy run."""
    from cleanmix.mix.design import sweep

    result = sweep(pipeline, list(sets), runs, seed, Path(output), total)
    sv = result["survey"]
    click.echo(f"{len(sv.sources)} sources, {sum(sv.available.values()):,.0f} {sv.by} in all; planned total {sv.total:,.0f}")
    click.echo(f"{result['runs']} candidate(s) kept of {result['drawn']:,} drawn ({result['dropped']:,} dropped: a source "
               f"repeated more than max_repeats, or over a cap). Wrote {output}/candidates.csv and {output}/runs/*.yaml")


@mix_design.command("fit")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--target", "targets", multiple=True, required=True, metavar="METRIC[=WEIGHT]",
              help="a metric column (or a glob); several: their weighted mean is the objective")
@click.option("--minimize/--maximize", "minimize", default=True, help="lower is better (losses, default) or higher (scores)")
@click.option("--sweep", "sweep_dir", type=click.Path(file_okay=False), help="the sweep's folder: sources, sizes, repeat limits")
@click.option("--pipeline", type=click.Path(dir_okay=False), help="instead of --sweep: survey this pipeline's sources")
@click.option("--weights", help="weight columns, comma-separated names or globs (default: the sweep's sources)")
@click.option("--fix", "fixes", multiple=True, metavar="SOURCE=SHARE", help="hold a source's share in the proposal")
@click.option("--engine", type=click.Choice(["auto", "ridge", "kernel", "lightgbm", "ensemble"]), default="auto", show_default=True,
              help="auto: the best cross-validated per target (lightgbm: pip install 'cleanmix[design]')")
@click.option("--predict", type=click.Path(dir_okay=False), help="a CSV of mixtures: write the predicted metric per row")
@click.option("--output", "-o", help="with --predict: the predictions CSV; else the folder for mix.yaml, design.json, design.html")
@click.option("--seed", type=int, default=0, show_default=True)
@user_errors
def mix_design_fit(results: str, targets: tuple[str, ...], minimize: bool, sweep_dir: str | None, pipeline: str | None,
                   weights: str | None, fixes: tuple[str, ...], engine: str, predict: str | None, output: str | None, seed: int) -> None:
    """Fit RESULTS (one row per proxy run: weights and metrics) and propose the best mixture."""
    from cleanmix.mix.design import FitRequest, fit
    from cleanmix.mix.design_models import has_lightgbm

    if engine == "auto" and not has_lightgbm():
        click.echo("note: lightgbm is not installed, so auto chooses among ridge, kernel and their mean "
                   "(pip install 'cleanmix[design]' adds RegMix's LightGBM).", err=True)
    if sweep_dir and pipeline:
        raise UserError("give --sweep or --pipeline, not both: each says what the sources are and how far they stretch.")
    request = FitRequest(results, list(targets), not minimize, [w.strip() for w in weights.split(",")] if weights else None,
                         sweep_dir, pipeline, list(fixes), engine, seed, predict, output)
    result = fit(request)
    model = result["model"]
    for target, engine_name in model.engines.items():
        scores = model.scores[target][engine_name]
        click.echo(f"{target}: {engine_name}, cross-validated Spearman ρ {scores['spearman']:.4f}, RMSE {scores['rmse']:.4g}")
    if predict:
        click.echo(f"predictions: {result['predictions']}")
        return
    design, out = result["design"], result["out"]
    click.echo(f"predicted objective {design['predicted_objective']:.6g} (best proxy run {design['best_run']['id']}: "
               f"{design['best_run']['objective']:.6g}). The proposed stage ({out}/mix.yaml; page: {out}/design.html):\n")
    click.echo((out / "mix.yaml").read_text())


if __name__ == "__main__":
    main()
