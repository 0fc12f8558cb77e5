"""The Ray engine: the run (`run.py`) on a Ray cluster, its steps launched as Ray tasks.

It adds only a launcher. `run_unit` runs as one Ray task per unit, at most `workers` at a time;
a global stage's parallel steps and the compactions run as Ray tasks too. Everything else — the
passes, the files each unit writes, the markers, resume, decide, the output — is the run's, so the
output is the local engine's to the byte. Ray reuses its worker processes, so what a stage loads
once per process (language ID's model) loads once per worker, not once per task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from cleanmix.pipelines.config import PipelineConfig
from cleanmix.pipelines.errors import UserError, one_line
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.run import Job, run_pipeline
from cleanmix.pipelines.shards import Unit

INSTALL_HINT = "pip install 'cleanmix[ray]' (or: pip install ray)"


def import_ray() -> Any:
    """Ray is an optional extra: without it, say how to install it instead of a traceback."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--engine ray needs Ray, which is not installed. Install it with {INSTALL_HINT}.") from None
    return ray


class RayTasks:
    """The run's executor on Ray: `start` and `map` in item order, `each` as units complete, `workers` at a time."""

    def __init__(self, ray: Any, workers: int) -> None:
        self.ray, self.workers = ray, workers
        self.remote = ray.remote(num_cpus=1)(_call)

    def start(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Callable[[], list[Any]]:
        tasks = [self.remote.remote(fn, item) for item in items]
        return lambda: _unwrap(lambda: self.ray.get(tasks))

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return self.start(fn, items)()

    def each(self, fn: Callable[[Job, Unit], dict[str, Any]], job: Job, units: list[Unit]) -> Iterator[dict[str, Any]]:
        waiting = [u.resolved() for u in reversed(units)]  # nodes may not share our working folder
        running: list[Any] = []
        try:
            while waiting or running:
                while waiting and len(running) < self.workers:
                    running.append(self.remote.remote(partial(fn, job), waiting.pop()))
                (ready,), running = self.ray.wait(running, num_returns=1)
                yield _unwrap(lambda ref=ready: self.ray.get(ref))
        finally:
            for ref in running:
                self.ray.cancel(ref, force=True)


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _unwrap(action: Callable[[], Any]) -> Any:
    """A UserError raised inside a Ray task reaches the user as itself, not wrapped in Ray's errors."""
    try:
        return action()
    except Exception as error:  # noqa: BLE001 - Ray wraps task errors in its own types
        cause: BaseException | None = error
        while cause is not None:
            inner = getattr(cause, "cause", None) or cause.__cause__
            if isinstance(cause, UserError) and not isinstance(inner, UserError):
                raise UserError(*cause.args) from None
            cause = inner
        raise


def run_ray(config: PipelineConfig, pipeline: str, reporter: Reporter, overwrite: bool = False,
            address: str | None = None) -> dict[str, Any]:
    """Run the pipeline on Ray (a new local instance, or the cluster at `address`); returns the summary."""
    ray = import_ray()
    started_here = _connect(ray, address, reporter)
    try:
        def launch(units: int) -> RayTasks:
            return RayTasks(ray, config.workers or max(1, int(ray.cluster_resources().get("CPU", 1))))

        return run_pipeline(config, pipeline, reporter, launch, overwrite)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str | None, reporter: Reporter) -> bool:
    """Join the cluster at `address`, start a local Ray, or use the one this process already joined.

    Returns True when this call started the connection (and the caller shuts it down)."""
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # task errors still reach us as exceptions
    if ray.is_initialized():
        return False
    reporter.log(f"connecting to Ray at {address}" if address else "starting a local Ray instance")
    options: dict[str, Any] = {"address": address} if address else {"include_dashboard": False}
    try:
        ray.init(**options, logging_level="ERROR", log_to_driver=False, runtime_env={"env_vars": {"POLARS_MAX_THREADS": "1"}})
    except ConnectionError as error:
        raise UserError(
            f"--address {address}: no Ray cluster answered ({one_line(error)}). Start one with "
            "`ray start --head` (then --address auto), give the head's HOST:PORT, or leave --address out to start a local Ray."
        ) from None
    return True
