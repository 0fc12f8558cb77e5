"""Stage types by name, from the `cleanmix.stages` entry-point group.

The built-in stages are declared there in cleanmix's own pyproject.toml, exactly as a third-party
package declares its stages, so both are found, validated and run the same way.
"""

from __future__ import annotations

import typing
from functools import cache
from importlib.metadata import entry_points

from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.stage import Stage

ENTRY_POINT_GROUP = "cleanmix.stages"


@cache
def stage_types() -> dict[str, type[Stage]]:
    """Every installed stage class by its `type`; a broken or mis-declared plugin is a clear error."""
    found: dict[str, type[Stage]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
        except Exception as error:  # noqa: BLE001 - any failure to import a plugin is the same problem
            raise UserError(f"{_where(entry)} could not be loaded: {one_line(error)}.") from None
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise UserError(f"{_where(entry)} is not a subclass of cleanmix.pipelines.stage.Stage.")
        name = stage_type(cls)
        if name != entry.name:
            raise UserError(f"{_where(entry)}: the class declares type '{name}', not '{entry.name}'.")
        if name in found and found[name] is not cls:
            raise UserError(f"{_where(entry)}: two stages claim type '{name}' ({found[name].__qualname__}, {cls.__qualname__}).")
        found[name] = cls
    return dict(sorted(found.items()))


def stage_type(cls: type[Stage]) -> str | None:
    """The `type` literal a stage class declares (`type: Literal["length"] = "length"`)."""
    annotation = cls.model_fields["type"].annotation
    if typing.get_origin(annotation) is typing.Literal:
        (name,) = typing.get_args(annotation)
        return name
    return None


def _where(entry: typing.Any) -> str:
    """The entry point and its package, for an error: only then, as reading a package's metadata
    for every stage cost 80 ms of every run's start-up."""
    return f"entry point '{entry.name} = {entry.value}' (group {ENTRY_POINT_GROUP}, package {_package(entry)})"


def _package(entry: typing.Any) -> str:
    dist = getattr(entry, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown"
