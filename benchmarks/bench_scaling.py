"""How close N workers come to N times one, and what stays serial: the table, on any machine.

    .venv/bin/python benchmarks/bench_scaling.py [--mb 200] [--workers 1 2 4 8 16] [--shard-mb 32] [--json F]

Builds bench_core's corpus (real English, multilingual and Chinese web text repeated with distinct
ids, 20,000 documents per shard: 395k documents, 20 shards and units at 200 MB) and runs `clean run` with
the issue's pipeline (language [en, zh] → gopher_repetition → gopher_quality → c4_quality →
fineweb_quality → pii → minhash_dedup) once per worker count (counts above the machine's cores are
left out). Each run is a fresh process, timed whole; inside it the
phases are stamped: start-up (interpreter and imports), plan (input survey, checks, the output
folder), each pass over the units, each global stage's decide, and finish (the output shards,
stats, report), then the interpreter's exit. Inside every phase, the seconds spent in the engine's
`map` and `each` over two or more items (pass units, a global stage's partition steps, the output
shards: the parallel units), and waiting for steps started in the background (the output shards,
which run beside each other and the steps after them) are parallel; everything else is serial,
whatever the phase: what the
driver does alone (start-up, planning, merging markers, reading edges, the union-find, decisions,
the report) and a step of one item (one worker alone). From the 1-worker run's items, the script
also predicts the wall seconds at N workers, for a machine with more cores than this one: the pool is
simulated, each step's items handed in order to whichever of N workers is free first (as the process
pool does), the run waiting for each step before it hands out the next and for the steps it started in
the background (the rejected rows' shards) at the end; each worker process's start-up (the measured
start-up phase) comes once before the first step.
Prints the table and writes benchmarks/scaling.json.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "scaling.json"


def child(src: str, out: str, workers: int, launched: float, output: dict[str, Any]) -> None:
    """One run in this fresh process; prints its phases as JSON.

    A phase runs from the start of `run_pass`, `decide` or `finish` (or the start of the run:
    plan) to the start of the next. Inside a phase, time spent in the engine's `map` and `each`
    over two or more items (the parallel units: pass units, a global stage's partition steps), or
    waiting for steps started in the background (the output shards), is parallel; everything else
    (the driver alone, a `map` of one item) is serial."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import threading

    from bench_pipeline import STAGES

    import cleanmix.pipelines.run as run
    from cleanmix.pipelines.config import validate_pipeline
    from cleanmix.pipelines.local import Pool, run_local
    from cleanmix.pipelines.progress import Reporter

    phases: dict[str, dict[str, float]] = {}
    current = ["plan"]
    sampling = True

    def add(key: str, wall: float, cpu: float) -> None:
        phase = phases.setdefault(current[0], blank())
        phase[key] += wall
        phase[f"{key}_cpu" if key != "wall" else "cpu"] += cpu

    clock = [time.time(), time.process_time()]

    def enter(name: str) -> None:
        now = time.time(), time.process_time()
        add("wall", now[0] - clock[0], now[1] - clock[1])
        clock[:] = now
        current[0] = name

    def phase(name: Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            enter(name(*args))
            return fn(*args)
        return wrapped

    run.run_pass = phase(lambda state, seg: f"pass {seg.index + 1} ({len(state.live_units())} units)", run.run_pass)
    run.decide = phase(lambda state, seg: f"decide {seg.head.label}", run.decide)
    run.finish = phase(lambda state: "finish", run.finish)
    pool_start, pool_each = Pool.start, Pool.each

    def record(self: Pool, fn: Callable[..., Any], items: list[Any], **kind: bool) -> list[float]:
        """The seconds of a step's items, filled as they run (1 worker: in this process, in the pool's order)."""
        took: list[float] = []
        if self.executor is None and items:
            phases.setdefault(current[0], blank()).setdefault("calls", []).append({"step": fn.__name__, "items": took, **kind})
        return took

    def timed_start(self: Pool, fn: Callable[[Any], Any], items: Any, background: bool = True) -> Callable[[], list[Any]]:
        """Steps started: the run waits for them later (background), or at once (`map`)."""
        items = list(items)
        took = record(self, fn, items, background=background)

        def timed(item: Any) -> Any:
            started = time.time()
            try:
                return fn(item)
            finally:
                took.append(time.time() - started)

        waiting = pool_start(self, timed if self.executor is None else fn, items)

        def wait() -> list[Any]:
            wall, cpu = time.time(), time.process_time()
            try:
                return waiting()
            finally:  # started in the background, a step runs beside others, even of one item
                add("parallel" if len(items) > 1 or background else "single", time.time() - wall, time.process_time() - cpu)
        return wait

    def timed_map(self: Pool, fn: Callable[[Any], Any], items: Any) -> list[Any]:
        return timed_start(self, fn, items, background=False)()

    def timed_each(self: Pool, fn: Callable[..., Any], job: Any, units: Any) -> Any:
        results = pool_each(self, fn, job, units)
        took = record(self, fn, units)
        while True:
            wall, cpu = time.time(), time.process_time()
            try:
                result = next(results)
            except StopIteration:
                return
            finally:
                add("parallel" if len(units) > 1 else "single", time.time() - wall, time.process_time() - cpu)
            took.append(time.time() - wall)
            yield result

    Pool.start, Pool.map, Pool.each = timed_start, timed_map, timed_each  # type: ignore[method-assign]

    def sample() -> None:  # resident memory of this process (1 worker: the whole run), per phase
        while sampling:
            status = Path("/proc/self/status").read_text().splitlines()
            rss = int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024
            peak = phases.setdefault(current[0], blank())
            peak["peak_mb"] = max(peak["peak_mb"], rss)
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    started = time.time()
    startup_cpu = time.process_time()
    clock[:] = [started, startup_cpu]
    config = validate_pipeline({"input": {"path": src}, "output": {"path": out, **output}, "workers": workers, "stages": STAGES})
    run_local(config, "bench", Reporter(quiet=True))
    enter("end")
    sampling = False
    phases.pop("end", None)
    result = {"start-up": {**blank(), "wall": started - launched, "cpu": startup_cpu}, **phases}
    print(json.dumps(result))


def run(src: Path, out: Path, workers: int, output: dict[str, Any]) -> tuple[float, dict[str, dict[str, float]]]:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    launched = time.time()
    done = subprocess.run([sys.executable, __file__, "--child", str(src), str(out), str(workers), repr(launched), json.dumps(output)],
                          capture_output=True, text=True, check=False, env={"OPENBLAS_NUM_THREADS": "1", **os.environ})  # as `clean run`
    wall = time.time() - launched
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    phases["exit"] = {**blank(), "wall": wall - sum(p["wall"] for p in phases.values())}
    return wall, phases


def blank() -> dict[str, float]:
    return dict.fromkeys(("wall", "cpu", "parallel", "parallel_cpu", "single", "single_cpu", "peak_mb"), 0.0)


def serial(phase: dict[str, float], kind: str = "wall") -> float:
    """The phase's seconds outside the parallel units: what the driver did alone, and steps of one
    job (a worker alone; no number of workers shortens them)."""
    return phase[kind] - phase["parallel" if kind == "wall" else "parallel_cpu"]


def simulated(calls: list[dict[str, Any]], workers: int) -> float:
    """Seconds until the last item is done when the run hands each step's items, in order, to the worker
    free first, and waits for each step before the next, for the ones started in the background at the end."""
    free, now, background = [0.0] * workers, 0.0, 0.0
    for call in calls:
        end = now
        for seconds in call["items"]:
            done = max(heapq.heappop(free), now) + seconds
            heapq.heappush(free, done)
            end = max(end, done)
        if call.get("background"):
            background = max(background, end)
        else:
            now = end
    return max(now, background)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--heldout", type=int, metavar="REPLICAS",
                        help="bench_pipeline.py's held-out corpus, this many times (1,302 documents per shard), instead of --mb")
    parser.add_argument("--shard-mb", type=int, help="output shards of at most this many MB of text (shard_bytes), not 100,000 rows")
    parser.add_argument("--json", type=Path, default=OUT, help="where the runs are written (default: benchmarks/scaling.json)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        src, out, workers, launched, output = args.child
        return child(src, out, int(workers), float(launched), json.loads(output))
    output = {"shard_bytes": args.shard_mb * 2**20} if args.shard_mb else {}
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_core import build_corpus
    from bench_pipeline import write_corpus

    counts = [w for w in args.workers if w <= (os.cpu_count() or 1)]
    with tempfile.TemporaryDirectory(prefix="cleanmix-scaling-") as tmp:
        src = Path(tmp) / "in"
        docs, nbytes = write_corpus(src, args.heldout) if args.heldout else build_corpus(src, args.mb)
        shards = len(list(src.iterdir()))
        print(f"corpus: {docs:,} documents, {nbytes / 1e6:,.0f} MB of text, {shards} shards; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
        rows = []
        for workers in counts:
            wall, phases = run(src, Path(tmp) / "out", workers, output)
            rows.append({"workers": workers, "wall": wall, "phases": phases, "load": os.getloadavg()[0]})
            print(json.dumps(rows[-1]), flush=True)
    report(rows)
    args.json.write_text(json.dumps({"docs": docs, "bytes": nbytes, "shards": shards, "cores": os.cpu_count(), "output": output,
                                     "runs": rows}, indent=1) + "\n")


def report(rows: list[dict[str, Any]]) -> None:
    """The tables: speed-up and serial share per worker count; serial seconds per phase; the first run's CPU seconds."""
    one = rows[0]["wall"]
    print("\n| workers | wall s | speed-up | serial s | serial share | load |\n|---|---|---|---|---|---|")
    for row in rows:
        alone = sum(serial(p) for p in row["phases"].values())
        share = alone / row["wall"]
        print(f"| {row['workers']} | {row['wall']:.1f} | {one / row['wall']:.2f} | {alone:.2f} | {share:.1%} | {row['load']:.1f} |")
    names = list(rows[0]["phases"])
    print("\nserial seconds per phase (of the phase's wall seconds):\n\n| workers | " + " | ".join(names) + " |")
    print("|---" * (1 + len(names)) + "|")
    for row in rows:
        phases = row["phases"]
        print(f"| {row['workers']} | " + " | ".join(
            f"{serial(phases[n]):.2f} of {phases[n]['wall']:.2f}" if n in phases else "" for n in names) + " |")
    first = rows[0]["phases"]  # at 1 worker every phase runs in the driver process: its CPU seconds are the run's
    total = sum(p["cpu"] for p in first.values())
    alone = sum(serial(p, "cpu") for p in first.values())
    print(f"\nCPU seconds of the {rows[0]['workers']}-worker run (load-independent), serial of each phase's: "
          + ", ".join(f"{name} {serial(p, 'cpu'):.2f} of {p['cpu']:.2f}" for name, p in first.items() if name != "exit")
          + f"; serial {alone:.2f} of {total:.2f} ({alone / total:.1%})")
    if any("calls" in p for p in first.values()):
        print(f"\nAt N workers, from the {rows[0]['workers']}-worker run's items (the pool simulated: each step's items handed in "
              "order to the first free worker, the run waiting for each step before the next, for started ones at the end; "
              "serial seconds as measured; each worker's start-up once):\n\n"
              "| workers | predicted wall s | speed-up | of which waiting on the last items s |\n|---|---|---|---|")
        calls = [call for p in first.values() for call in p.get("calls", ())]
        alone = sum(serial(p) for p in first.values())
        for n in (1, 2, 4, 8, 16, 32):
            steps = simulated(calls, n)
            wall = alone + steps + (first["start-up"]["wall"] if n > 1 else 0.0)
            tails = steps - sum(sum(call["items"]) for call in calls) / n
            print(f"| {n} | {wall:.1f} | {rows[0]['wall'] / wall:.2f} | {tails:.1f} |")
        print("\nthe steps at 16 workers (a worker's share of the items, and when the last item is done, the step alone):\n\n"
              "| phase | step | items | seconds at 1 worker | longest item | share at 16 | done at 16 |\n|---|---|---|---|---|---|---|")
        for name, p in first.items():
            for call in p.get("calls", ()):
                items = call["items"]
                print(f"| {name} | {call['step']}{' (started, waited for at the end)' if call.get('background') else ''} "
                      f"| {len(items)} | {sum(items):.2f} | {max(items):.2f} | {sum(items) / 16:.2f} | {simulated([call], 16):.2f} |")
    print("peak RSS MB per phase: " + ", ".join(f"{name} {p['peak_mb']:.0f}" for name, p in first.items() if p.get("peak_mb")))


if __name__ == "__main__":
    main()
