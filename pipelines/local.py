"""The local engine: the run (`run.py`) on a pool of processes of this machine."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cleanmix.pipelines.config import PipelineConfig
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.run import Job, run_pipeline
from cleanmix.pipelines.shards import Unit

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


class Pool:
    """Worker processes (spawned, so no inherited locks); `workers == 1` runs in this process."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None
        if workers > 1:
            from concurrent.futures import ProcessPoolExecutor  # (with multiprocessing, 12 ms: not for one worker)
            from multiprocessing import get_context

            os.environ.setdefault("POLARS_MAX_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
            self.executor = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_bind_to_parent,
                                                initargs=(os.getpid(),))

    def start(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Callable[[], list[Any]]:
        """Every item submitted now (starting the workers); one worker runs them when they are waited for."""
        items = list(items)
        if self.executor is None:
            return lambda: [fn(item) for item in items]
        with _workers_ignore_ctrl_c():
            futures = [self.executor.submit(fn, item) for item in items]
        return lambda: [future.result() for future in futures]

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return self.start(fn, items)()

    def each(self, fn: Callable[[Job, Unit], dict[str, Any]], job: Job, units: list[Unit]) -> Iterator[dict[str, Any]]:
        """Results as they complete (any order)."""
        if self.executor is None:
            for unit in units:
                yield fn(job, unit)
            return
        with _workers_ignore_ctrl_c():
            pending = {self.executor.submit(fn, job, unit) for unit in units}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self.executor is None:
            return
        processes = list((self.executor._processes or {}).values())  # noqa: SLF001 - stop them, not wait for them
        manager = self.executor._executor_manager_thread  # noqa: SLF001 - shutdown forgets it
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        if manager is not None:  # it closes its wake-up pipe as it ends: interpreter exit must not write to it meanwhile
            manager.join(timeout=5)


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Workers start (on submit) while Ctrl-C is ignored here: a spawned interpreter keeps an ignored SIGINT
    ignored and installs no KeyboardInterrupt handler, so a Ctrl-C while a worker still imports prints no
    traceback from it. The parent handles Ctrl-C as before once its workers are started."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _bind_to_parent(parent: int) -> None:
    """A worker dies with the run: the kernel kills it when its parent dies (Linux), and a watchdog
    thread does elsewhere. Ctrl-C is the parent's to handle: a worker ignores it and prints nothing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def run_local(config: PipelineConfig, pipeline: str, reporter: Reporter, overwrite: bool = False) -> dict[str, Any]:
    """Run the pipeline on this machine; returns the summary (also written to stats/summary.json)."""
    workers = config.workers or os.cpu_count() or 1
    return run_pipeline(config, pipeline, reporter, lambda units: Pool(min(workers, max(1, units))), overwrite)
