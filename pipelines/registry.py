"""Stage types by name: every Stage subclass with a `type` literal in filters/, dedup/ or mix/."""

from __future__ import annotations

import importlib
import pkgutil
import typing
from functools import cache

from pipelines.stage import Stage

STAGE_PACKAGES = ("filters", "dedup", "mix")


@cache
def stage_types() -> dict[str, type[Stage]]:
    """Import every module of the stage packages once and index their concrete stages by type."""
    for package_name in STAGE_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")
    found: dict[str, type[Stage]] = {}
    pending = list(Stage.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        annotation = cls.model_fields["type"].annotation
        if typing.get_origin(annotation) is typing.Literal:
            (name,) = typing.get_args(annotation)
            if name in found and found[name] is not cls:
                raise RuntimeError(f"two stages claim type '{name}': {found[name].__qualname__}, {cls.__qualname__}")
            found[name] = cls
    return dict(sorted(found.items()))
