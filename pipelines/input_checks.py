"""The input's columns, checked from footers before anything runs: the text column holds strings,
no column has a name cleanmix uses or a stage adds, and a column has one type in every file."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import pyarrow as pa

from cleanmix.pipelines.config import InputConfig
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.stage import ID, SOURCE, TEXT, Filter, Stage


def is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def check_columns(path: str, schema: pa.Schema, config: InputConfig, added: Mapping[str, Stage | None] = {},  # noqa: B006
                  text_maker: str | None = None) -> None:
    """The text column holds strings (or a first stage `text_maker` writes it), and no column has a
    name cleanmix uses or a stage adds."""
    names = schema.names
    if config.text_column not in names and text_maker is None:
        raise UserError(
            f"input file {path} has no text column '{config.text_column}' (its columns: {', '.join(names)}). "
            "Set input.text_column to the column that holds the text; for HTML pages, put `- type: extract` first."
        )
    kind = schema.field(config.text_column).type if config.text_column in names else pa.string()
    if not is_text(kind):
        raise UserError(f"input file {path}: text column '{config.text_column}' holds {kind}, expected strings.")
    if config.source_column and config.source_column not in names:
        raise UserError(f"input file {path} has no source column '{config.source_column}' (its columns: {', '.join(names)}).")
    renamed = config.renames()
    for name in names:
        if name in (TEXT, ID) and name not in renamed:
            raise UserError(
                f"input file {path} has a column '{name}' that is not the configured {name} column; "
                f"cleanmix uses that name internally. Set input.{name}_column: {name}, or rename the column."
            )
        if name == SOURCE and config.sources is not None:
            raise UserError(
                f"input file {path} has a column '{SOURCE}', but input.sources sets every document's source "
                f"and would overwrite it. Rename the column in the input, or set input.source_column: {SOURCE} instead."
            )
        if name.startswith(RESERVED_PREFIX):
            raise UserError(
                f"input file {path} has a column '{name}': cleanmix reserves names starting with '{RESERVED_PREFIX}'. Rename it."
            )
        if name in added and name not in renamed:
            _check_added(path, name, schema.field(name).type, added[name])


def check_types(path: str, schema: pa.Schema, config: InputConfig, seen: dict[str, tuple[str, str, str]]) -> None:
    """Columns of one name hold one type in every file, up to lossless differences (see `_family`):
    all files end in one output, and a silent conversion would change the user's values.

    `seen` maps each column to its family, the first file that has it and the type shown there."""
    kinds = {field.name: (field.type, str(field.type)) for field in schema}
    if config.id_column not in kinds:
        kinds[config.id_column] = (pa.string(), f"string (generated: that file has no '{config.id_column}' column)")
    for name, (kind, shown) in kinds.items():
        if pa.types.is_null(kind):
            continue  # all null: fits any type
        family = _family(kind)
        first = seen.setdefault(name, (family, path, shown))
        if first[0] != family:
            raise UserError(
                f"input files {first[1]} and {path} both have a column '{name}', of different types: {first[2]} in "
                f"the first, {shown} in the second. cleanmix writes every file into one output and will not convert "
                "values silently: write the column with one type in every file (integers of any width, floats of any "
                "width, or strings of any kind mix freely)."
            )


def _family(kind: pa.DataType) -> str:
    """A type up to the differences a lossless cast removes: integer and float widths (not
    uint64, which int64 cannot hold), string and binary flavours, dictionary encoding, list
    flavours; struct fields and list elements compared the same way."""
    t = pa.types
    if t.is_dictionary(kind):
        return _family(kind.value_type)
    if t.is_signed_integer(kind) or kind in (pa.uint8(), pa.uint16(), pa.uint32()):
        return "integer"
    if t.is_floating(kind):
        return "float"
    if is_text(kind):
        return "string"
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_binary_view(kind):
        return "binary"
    if t.is_list(kind) or t.is_large_list(kind) or t.is_list_view(kind) or t.is_large_list_view(kind):
        return f"list<{_family(kind.value_type)}>"
    if t.is_struct(kind):
        return "struct<" + ", ".join(f"{field.name}: {_family(field.type)}" for field in kind) + ">"
    return str(kind)


RESERVED_PREFIX = "_cm_"
"""cleanmix's working columns (the order key, shared token lists, dedup's joins) start with this."""


def _check_added(path: str, name: str, kind: pa.DataType, stage: Stage | None) -> None:
    """An input column a stage would overwrite is refused, unless it is an earlier measurement of
    the same kind that a filter measures again (`Filter.metric_types`)."""
    if stage is None:
        raise UserError(
            f"input file {path} has a column '{name}': cleanmix writes why a document was removed under that "
            f"name and would overwrite it. Rename the column in the input (e.g. to 'input_{name}'), or drop it."
        )
    measured = stage.metric_types.get(name) if isinstance(stage, Filter) else None
    expected = _kind(pl.Series(dtype=measured).to_arrow().type) if measured is not None else None
    if expected is not None and _kind(kind) == expected:
        return
    again = (
        f" (a column of this name holding {expected} would be taken as an earlier measurement and measured "
        f"again; this one holds {_kind(kind)}: {kind})" if expected is not None else ""
    )
    raise UserError(
        f"input file {path} has a column '{name}', which stage '{stage.label}' ({stage.type}) adds to its output "
        f"and would overwrite{again}. Rename the column in the input (e.g. to 'input_{name}'), or drop it."
    )


def _kind(kind: pa.DataType) -> str:
    """What a re-measured column must hold: numbers, strings or booleans (any width)."""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numbers"
    if is_text(kind):
        return "strings"
    return "booleans" if pa.types.is_boolean(kind) else "other values"
