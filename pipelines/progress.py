"""Progress: a live bar with docs/s and MB/s on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console


class Task(Protocol):
    def advance(self, docs: int, nbytes: int) -> None: ...


class Reporter:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()

    @cached_property
    def console(self) -> Console:
        """rich, imported only when something is shown (a quiet run's start is 40 ms shorter)."""
        from rich.console import Console

        return Console(file=self.stream)

    def log(self, message: str) -> None:
        """A timestamped line. `message` is plain text (a file name with brackets is not rich markup); off a
        terminal it is printed as it is (rich wrapped it at 80 columns, and its import is 20 ms of a run)."""
        if self.quiet:
            return
        stamp = time.strftime("%H:%M:%S")
        if self.live:
            from rich.markup import escape

            self.console.print(f"[dim]{stamp}[/] {escape(message)}", highlight=False)
        else:
            print(f"{stamp} {message}", file=self.stream, flush=True)

    @contextmanager
    def task(self, label: str, total_units: int, done_units: int = 0) -> Iterator[Task]:
        task = _LiveTask(self, label, total_units, done_units) if self.live else _LogTask(self, label, total_units, done_units)
        try:
            yield task
        finally:
            task.close()


class _LogTask:
    def __init__(self, reporter: Reporter, label: str, total: int, done: int) -> None:
        self.reporter, self.label, self.total, self.done = reporter, label, total, done
        self.docs = self.bytes = 0
        self.started = time.perf_counter()
        self.last = 0.0
        resumed = f" ({done} already done, resuming)" if done else ""
        reporter.log(f"{label}: {total} units{resumed}")

    def advance(self, docs: int, nbytes: int) -> None:
        self.done += 1
        self.docs += docs
        self.bytes += nbytes
        now = time.perf_counter()
        if now - self.last > 10 or self.done == self.total:
            self.last = now
            self.reporter.log(f"{self.label}: {self.done}/{self.total} units, {_rates(self.docs, self.bytes, now - self.started)}")

    def close(self) -> None:
        pass


class _LiveTask:
    def __init__(self, reporter: Reporter, label: str, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.docs = self.bytes = 0
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rates]}"), TimeElapsedColumn(), console=reporter.console, transient=False,
        )
        self.progress.start()
        self.id = self.progress.add_task(label, total=total, completed=done, rates="")

    def advance(self, docs: int, nbytes: int) -> None:
        self.docs += docs
        self.bytes += nbytes
        rates = _rates(self.docs, self.bytes, time.perf_counter() - self.started)
        self.progress.update(self.id, advance=1, rates=rates)

    def close(self) -> None:
        self.progress.stop()


def _rates(docs: int, nbytes: int, seconds: float) -> str:
    seconds = max(seconds, 1e-9)
    return f"{docs / seconds:,.0f} docs/s, {nbytes / seconds / 1e6:,.1f} MB/s"
