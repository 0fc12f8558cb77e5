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
def _declared() -> dict[str, list[typing.Any]]:
    """Every declared stage type's entry points by name, none of them imported yet."""
    found: dict[str, list[typing.Any]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, []).append(entry)
    return dict(sorted(found.items()))


def stage_type_names() -> list[str]:
    """The installed stage types, without importing them (a run imports only the stages it uses:
    importing all of them cost ~0.1 s of a run's start and of its report)."""
    return list(_declared())


@cache
def stage_class(name: str) -> type[Stage]:
    """The class of one installed stage type (`name` one of `stage_type_names()`); a broken or
    mis-declared plugin is a clear error."""
    if name not in _declared():
        raise UserError(f"no installed stage has type '{name}' (installed: {', '.join(_declared())}).")
    classes: dict[type, typing.Any] = {}
    for entry in _declared()[name]:
        try:
            cls = entry.load()
        except Exception as error:  # noqa: BLE001 - any failure to import a plugin is the same problem
            raise UserError(f"{_where(entry)} could not be loaded: {one_line(error)}.") from None
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise UserError(f"{_where(entry)} is not a subclass of cleanmix.pipelines.stage.Stage.")
        if stage_type(cls) != name:
            raise UserError(f"{_where(entry)}: the class declares type '{stage_type(cls)}', not '{name}'.")
        classes.setdefault(cls, entry)
    if len(classes) > 1:
        first, second, *_ = classes
        raise UserError(f"{_where(classes[second])}: two stages claim type '{name}' ({first.__qualname__}, {second.__qualname__}).")
    return next(iter(classes))


def stage_types() -> dict[str, type[Stage]]:
    """Every installed stage class by its `type` (`clean stages`, tests)."""
    return {name: stage_class(name) for name in stage_type_names()}


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
