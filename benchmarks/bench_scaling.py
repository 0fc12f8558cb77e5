"""How close N workers come to N times one, and what stays serial: the table, on any machine.

    .venv/bin/python benchmarks/bench_scaling.py [--mb 200] [--workers 1 2 4 8 16]

Builds bench_core's corpus (real English, multilingual and Chinese web text repeated with distinct
ids, 20,000 documents per shard: ~450k documents, 23 shards at 200 MB) and runs `clean run` with
the issue's pipeline (language [en, zh] → gopher_repetition → gopher_quality → c4_quality →
fineweb_quality → pii → minhash_dedup) once per worker count (counts above the machine's cores are
left out). Each run is a fresh process, timed whole; inside it a recording reporter stamps the
phases: start-up (interpreter and imports), plan (input survey, checks), each pass over the units
(parallel), each global stage's decide, and finish (compaction into data/ and rejected/, stats,
report). Start-up, plan, decide and finish are the serial work outside the parallel passes (decide
and the compaction of rejected/ map over the pool, so at N workers they may shrink too).
Prints the table and writes benchmarks/scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "scaling.json"


def child(src: str, out: str, workers: int, launched: float) -> None:
    """One run in this fresh process; prints its phases as JSON."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from contextlib import contextmanager

    from bench_pipeline import STAGES

    from cleanmix.pipelines.config import validate_pipeline
    from cleanmix.pipelines.local import run_local
    from cleanmix.pipelines.progress import Reporter

    marks: list[tuple[str, float]] = [("start-up", launched)]
    cpu: list[float] = [0.0]  # this process's CPU seconds at each mark (at 1 worker: the whole run's)
    peaks: dict[str, float] = {}
    sampling = True

    def sample() -> None:  # resident memory of this process (1 worker: the whole run), per phase
        while sampling:
            status = Path("/proc/self/status").read_text().splitlines()
            rss = int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024
            peaks[marks[-1][0]] = max(peaks.get(marks[-1][0], 0.0), rss)
            time.sleep(0.02)

    import threading

    threading.Thread(target=sample, daemon=True).start()

    class Stamps(Reporter):
        def log(self, message: str) -> None:
            if "deciding" in message:
                marks.append((f"decide {message.split(':')[0]}", time.time()))
                cpu.append(time.process_time())
            elif message.startswith("writing output"):
                marks.append(("finish", time.time()))
                cpu.append(time.process_time())

        @contextmanager
        def task(self, label: str, total_units: int, done_units: int = 0):  # noqa: ANN202
            passes = sum(name.startswith("pass") for name, _ in marks)
            marks.append((f"pass {passes + 1} ({total_units} units)", time.time()))
            cpu.append(time.process_time())
            with super().task(label, total_units, done_units) as task:
                yield task
            marks.append(("gap", time.time()))
            cpu.append(time.process_time())

    started = time.time()
    marks.append(("plan", started))
    cpu.append(time.process_time())
    config = validate_pipeline({"input": {"path": src}, "output": {"path": out}, "workers": workers, "stages": STAGES})
    run_local(config, "bench", Stamps(quiet=True))
    marks.append(("end", time.time()))
    cpu.append(time.process_time())
    phases: dict[str, float] = {}
    cpu_phases: dict[str, float] = {}
    for (name, at), (_, until), used, used_until in zip(marks, marks[1:], cpu, cpu[1:]):
        if name != "gap":
            phases[name] = phases.get(name, 0.0) + until - at
            cpu_phases[name] = cpu_phases.get(name, 0.0) + used_until - used
    phases["start-up"] = started - launched  # the interpreter, the imports
    sampling = False
    print(json.dumps(cpu_phases))
    print(json.dumps(phases))
    print(json.dumps({name: round(mb) for name, mb in peaks.items() if name != "gap"}))


def run(src: Path, out: Path, workers: int) -> tuple[float, dict[str, float]]:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    launched = time.time()
    done = subprocess.run([sys.executable, __file__, "--child", str(src), str(out), str(workers), repr(launched)],
                          capture_output=True, text=True, check=False)
    wall = time.time() - launched
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    *_, cpu, timed, peaks = done.stdout.strip().splitlines()
    phases = json.loads(timed)
    phases["exit"] = wall - sum(phases.values())  # the interpreter's shutdown
    return wall, phases, json.loads(cpu), json.loads(peaks)


def serial(phases: dict[str, float]) -> float:
    return sum(s for name, s in phases.items() if not name.startswith("pass"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--heldout", type=int, metavar="REPLICAS",
                        help="bench_pipeline.py's held-out corpus, this many times (1,302 documents per shard), instead of --mb")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        src, out, workers, launched = args.child
        return child(src, out, int(workers), float(launched))
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
            wall, phases, cpu, peaks = run(src, Path(tmp) / "out", workers)
            rows.append({"workers": workers, "wall": wall, "phases": phases, "cpu_seconds": cpu, "peak_rss_mb": peaks,
                         "load": os.getloadavg()[0]})
            print(json.dumps(rows[-1]), flush=True)
    one = rows[0]["wall"]
    print()
    print("| workers | wall s | speed-up | serial s | serial share | " + " | ".join(rows[0]["phases"]) + " |")
    print("|---" * (5 + len(rows[0]["phases"])) + "|")
    for row in rows:
        phases = row["phases"]
        print(f"| {row['workers']} | {row['wall']:.1f} | {one / row['wall']:.2f} | {serial(phases):.2f} | "
              f"{serial(phases) / row['wall']:.1%} | " + " | ".join(f"{s:.2f}" for s in phases.values()) + " |")
    cpu = rows[0]["cpu_seconds"]  # the 1-worker run (or the fewest workers): every phase in this process
    passes = sum(s for name, s in cpu.items() if name.startswith("pass"))
    print(f"\nCPU seconds of the {rows[0]['workers']}-worker run (load-independent): "
          + ", ".join(f"{name} {s:.2f}" for name, s in cpu.items())
          + f"; outside the passes {sum(cpu.values()) - passes:.2f} of {sum(cpu.values()):.2f} "
          f"({(sum(cpu.values()) - passes) / sum(cpu.values()):.1%})")
    OUT.write_text(json.dumps({"docs": docs, "bytes": nbytes, "shards": shards, "cores": os.cpu_count(), "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
