"""The pipeline file: parsed safely, validated completely before any work starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.registry import stage_class, stage_type_names
from cleanmix.pipelines.stage import ID, REASON, SOURCE, TEXT, Stage


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputConfig(Strict):
    path: str | None = Field(
        None, description="a folder (searched recursively), a single file, or a glob: Parquet, JSON Lines (.jsonl/.json/.ndjson, "
        "plain or .gz/.zst/.bz2) or WARC/WET (.warc/.wet, plain or .gz)"
    )
    format: Literal["parquet", "jsonl", "warc"] | None = Field(
        None, description="the input files' format; default: from each file's extension (a folder then holds only this format)"
    )
    sources: dict[str, str] | None = Field(
        None, description="instead of path: one input per source, {name: folder, file or glob}; sets the `source` column"
    )
    text_column: str = "text"
    id_column: str = Field("id", description="generated stably (<file>:<row>) when the column is missing")
    source_column: str | None = Field(None, description="used by mix and by per-source stats")
    on_error: Literal["fail", "skip"] = Field("fail", description="an unreadable shard: stop, or skip it and count it")
    batch_rows: int = Field(20_000, ge=1, description="rows per batch held in memory by one worker")
    storage_options: dict[str, Any] | None = Field(
        None, exclude=True, description="for s3://, gs://… input: options of its fsspec filesystem (endpoint_url, key, secret, "
        "anon, …); default: the standard environment variables. Never written to the output folder"
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> InputConfig:
        if (self.path is None) == (self.sources is None):
            raise ValueError("give exactly one of input.path (one corpus) or input.sources ({name: path} per source)")
        if self.sources is not None and not self.sources:
            raise ValueError("input.sources is empty: name at least one source")
        if self.sources is not None and self.source_column:
            raise ValueError("input.sources sets the source of every document: drop input.source_column")
        return self

    def renames(self) -> dict[str, str]:
        """The input's column names → the names stages read (`text`, `id`, `source`); reversed on output."""
        renames = {self.text_column: TEXT, self.id_column: ID}
        if self.source_column:
            renames[self.source_column] = SOURCE
        return renames

    def locations(self) -> dict[str | None, str]:
        """Where the input lives, by source name (None: the source, if any, comes from a column)."""
        return dict(self.sources) if self.sources is not None else {None: self.path}  # type: ignore[dict-item]


class OutputConfig(Strict):
    path: str
    keep_rejected: bool = Field(True, description="also write removed documents, by stage, for audit")
    shard_rows: int = Field(100_000, ge=1, description="rows per output shard")
    shard_bytes: int | None = Field(None, ge=1, description="text bytes per output shard, at most (a shard also ends at shard_rows)")
    format: Literal["parquet", "jsonl.gz", "jsonl.zst"] = Field(
        "parquet", description="the kept documents' shards: data/part-NNNNN.<format> (rejected/ stays Parquet)"
    )
    storage_options: dict[str, Any] | None = Field(
        None, exclude=True, description="for an s3://, gs://… output: options of its fsspec filesystem, as input.storage_options"
    )


class PipelineConfig(Strict):
    input: InputConfig
    output: OutputConfig
    workers: int | None = Field(None, ge=1, description="local processes; default: number of cores")
    seed: int = 0
    limit: int | None = Field(None, ge=1, description="a quick run on the first N documents")
    stages: list[Stage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_stage_names(self) -> PipelineConfig:
        seen: dict[str, int] = {}
        for index, stage in enumerate(self.stages):
            if stage.label in seen:
                raise ValueError(
                    f"stages.{index} and stages.{seen[stage.label]} are both named '{stage.label}': "
                    "give one of them a distinct `name`"
                )
            seen[stage.label] = index
            if SOURCE in stage.input_columns() and not (self.input.source_column or self.input.sources):
                raise ValueError(
                    f"stages.{index} ({stage.label}) needs each document's source: set input.source_column "
                    "to the column that holds it, or give input.sources"
                )
        return self

    def input_columns(self) -> dict[str, str]:
        """Columns the stages read from the input files (besides text, id and source), each with the
        first stage that reads it, so that a file without one is named with the stage; not those an
        earlier stage adds (the language stage's `language`, read by `perplexity`)."""
        columns: dict[str, str] = {}
        added: set[str] = set()
        for index, stage in enumerate(self.stages):
            for column in stage.input_columns():
                if column != SOURCE and column not in added:
                    columns.setdefault(column, f"stages.{index} ({stage.label})")
            added |= set(stage.output_columns())
        return columns

    def output_columns(self) -> dict[str, Stage | None]:
        """The columns a run adds, each with the first stage that adds it (None: `reason`, on every
        removed row): `input_checks.check_columns` refuses input columns of these names."""
        added: dict[str, Stage | None] = {REASON: None}
        for stage in self.stages:
            for column in stage.output_columns():
                added.setdefault(column, stage)
        return added

    def text_maker(self) -> str | None:
        """The first stage, when it writes the text itself: the input then needs no text column."""
        return self.stages[0].label if self.stages and self.stages[0].makes_text else None

    def resolved(self) -> dict[str, Any]:
        """The pipeline with every default filled in, as JSON values."""
        data = self.model_dump(mode="json")
        data["stages"] = [stage.model_dump(mode="json") for stage in self.stages]
        return data

    def resolved_yaml(self) -> str:
        return yaml.safe_dump(self.resolved(), sort_keys=False, allow_unicode=True)

    def fingerprint(self) -> str:
        """The same as of `resolved_yaml` read back (JSON values come back from YAML as they went), without the
        pure-Python YAML reader's 20 ms."""
        return fingerprint_of(self.resolved())



def fingerprint_of(resolved: dict[str, Any]) -> str:
    """What makes two runs produce the same output: the resolved pipeline but the worker count."""
    return json.dumps({k: v for k, v in resolved.items() if k != "workers"}, sort_keys=True, default=str)


def load_pipeline(path: str | Path, overrides: list[str] = ()) -> PipelineConfig:  # type: ignore[assignment]
    """Read, override and validate a pipeline file; every mistake becomes a UserError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"{path}: cannot read the pipeline file ({error.strerror}).") from None
    try:
        node, data = _parse(text, str(path))
    except yaml.YAMLError as error:
        raise UserError(f"{path}: this is not valid YAML. {one_line(error)}") from None
    except RecursionError:
        raise UserError(f"{path}: the YAML is nested too deeply to be a pipeline file.") from None
    lines = _line_numbers(node) if node is not None else {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with input, output and stages at the top, found {type(data).__name__}.")
    for override in overrides:
        _apply_override(path, data, override)
    return validate_pipeline(data, str(path), lines)


def validate_pipeline(data: dict[str, Any], origin: str = "<pipeline>", lines: dict[tuple, int] | None = None) -> PipelineConfig:
    lines = lines or {}
    stages = data.get("stages") or []
    if not isinstance(stages, list):
        raise UserError(f"{origin}: key 'stages' must be a list of stage mappings, found {type(stages).__name__}.")
    known = stage_type_names()
    parsed: list[Stage] = []
    for index, entry in enumerate(stages):
        where = _where(origin, ("stages", index), lines)
        if not isinstance(entry, dict) or "type" not in entry:
            raise UserError(f"{where}: every stage is a mapping with a `type` key; found {_short(entry)}.")
        if not isinstance(entry["type"], str) or entry["type"] not in known:
            raise UserError(
                f"{where}: unknown stage type {_short(entry['type'])}. Known types: {', '.join(known)}. "
                "`clean stages` lists them with their parameters."
            )
        try:
            parsed.append(stage_class(entry["type"]).model_validate(entry))
        except ValidationError as error:
            raise UserError(_explain(error, origin, ("stages", index), lines)) from None
    try:
        return PipelineConfig.model_validate({**data, "stages": parsed})
    except ValidationError as error:
        raise UserError(_explain(error, origin, (), lines)) from None


def _explain(error: ValidationError, origin: str, prefix: tuple, lines: dict[tuple, int]) -> str:
    problems = []
    for item in error.errors():
        loc = prefix + tuple(item["loc"])
        key = _dotted(loc)
        found = "" if item["type"] == "missing" else f"; found {_short(item.get('input'))}"
        forbidden = item["type"] == "extra_forbidden"
        message = "this key is not allowed (misspelt or not a parameter of this stage)" if forbidden else item["msg"]
        line = _nearest_line(loc, lines)
        problems.append(f"key '{key}'" + (f" (line {line})" if line else "") + f": {message}{found}")
    return f"{origin}: the pipeline is not valid. " + " ".join(p + "." for p in problems) + " Nothing was run."


def _short(value: Any, limit: int = 200) -> str:
    """A found value in an error: its repr, cut so one paragraph stays one paragraph."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _where(origin: str, loc: tuple, lines: dict[tuple, int]) -> str:
    line = _nearest_line(loc, lines)
    key = ".".join(str(part) for part in loc)
    return f"{origin}, key '{key}'" + (f" (line {line})" if line else "")


def _nearest_line(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


MAX_ALIAS_NODES = 100_000
"""Values that aliases may add to a pipeline file once expanded: plenty for shared parameters, far
below a "billion laughs" file, whose few lines expand to billions of values."""
_MERGE = "tag:yaml.org,2002:merge"


def _parse(text: str, origin: str) -> tuple[yaml.Node | None, Any]:
    """The composed node tree and the data, checked in between, so a hostile file costs no memory."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_nodes(node, loader, origin)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, loader: yaml.SafeLoader, origin: str) -> None:
    """Refuse duplicate keys (YAML would keep the last silently), recursive aliases and aliases
    that expand absurdly. Each node is visited once: an alias reuses the size of its anchor."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    reused: dict[int, yaml.Node] = {}

    def size(node: yaml.Node, path: tuple) -> int:
        if id(node) in sizes:
            reused[id(node)] = node
            return sizes[id(node)]
        if id(node) in active:
            raise UserError(
                f"{origin}: the alias at key '{_dotted(path)}' refers to a collection that contains it "
                f"(anchored on line {node.start_mark.line + 1}): a pipeline file cannot hold a recursive structure."
            )
        active.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            keys: dict[Any, int] = {}
            for key, value in node.value:
                name = loader.construct_object(key) if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE else None
                if name is not None and name in keys:
                    raise UserError(
                        f"{origin}: key '{_dotted(path + (name,))}' appears twice, on line {keys[name]} and line "
                        f"{key.start_mark.line + 1}; YAML would silently keep the last one. Remove one of them."
                    )
                if name is not None:
                    keys[name] = key.start_mark.line + 1
                total += size(key, path) + size(value, path + (name if name is not None else "?",))
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(value, path + (index,)) for index, value in enumerate(node.value))
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    added = size(root, ()) - len(sizes)
    if added > MAX_ALIAS_NODES:
        biggest = max(reused.values(), key=lambda node: sizes[id(node)])
        raise UserError(
            f"{origin}: its aliases expand to {added:,} more values (more than {MAX_ALIAS_NODES:,}): the anchor "
            f"on line {biggest.start_mark.line + 1} is reused inside other reused collections, a YAML \"billion "
            "laughs\" that would take gigabytes of memory. Write those values out, or nest fewer aliases."
        )


def _dotted(path: tuple) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _line_numbers(node: yaml.Node, prefix: tuple = (), seen: set[int] | None = None) -> dict[tuple, int]:
    """The line of every key path; an aliased collection is walked once (its first path)."""
    seen = set() if seen is None else seen
    found = {prefix: node.start_mark.line + 1}
    if id(node) in seen:
        return found
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                found.update(_line_numbers(value, prefix + (key.value,), seen))
                found[prefix + (key.value,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            found.update(_line_numbers(value, prefix + (index,), seen))
    return found


def _apply_override(path: Path, data: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise UserError(f"--set {override!r}: expected KEY.PATH=VALUE, e.g. --set stages.0.min_score=0.8.")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    target: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                raise UserError(
                    f"--set {override!r}: '{'.'.join(parts[:depth + 1])}' is not an index of a list of {len(target)} in {path}."
                )
            part = int(part)
        elif not isinstance(target, dict):
            raise UserError(f"--set {override!r}: '{'.'.join(parts[:depth])}' is a value, not a mapping, in {path}.")
        if last:
            target[part] = value
        else:
            if isinstance(target, dict) and part not in target:
                target[part] = {}
            target = target[part]
