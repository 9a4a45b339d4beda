"""Where the Snakemake plugin's CPU goes: the Recorder's calls, its flushes (the catalog
writes) and the plugin's own work, inside real `snakemake --logger lakeline` runs.

    uv run python bench/snakemake_split.py [--jobs 200,400] [--rounds 3]
                                           [--db sqlite|postgres|both] [--cores 2]

Each run is a fresh Snakemake process on a fresh instance (bench/snakemake_overhead.py's
workflow: N one-input one-output jobs plus `all`), started through this file (`--child`),
which wraps the BatchRecorder's calls with thread-CPU timers before Snakemake loads the
plugin. Per run:
- lakeline CPU: what the plugin reports (bench/capture.py's figure: its set-up, its threads'
  CPU while they record, its log filter's);
- Recorder calls: start_step, use, produce, finish_step, use_saved, ... less the flushes
  they trigger; Recorder flushes: the batches written (flush, flush_if_due);
- the plugin's own: lakeline CPU less both (its parsing, journal, stats, metadata reads, and
  its set-up: imports, connecting);
- GC: CPU of Python's full collections that ran in the plugin's thread (Snakemake's whole
  heap, ~80 ms each, landing at random: why single runs differ; included above).
The medians at two sizes give each part's fixed cost and its slope per job. The timers cost
~1 us a call (~5 calls a job), not subtracted. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CALLS = ("start_workflow", "start_step", "use", "produce", "use_saved", "finish_step")
CALLS += ("mark_gone", "link_many", "finish_workflow")
FLUSHES = ("flush", "flush_if_due")
PARTS = ("lakeline", "calls", "flushes", "own", "gc")


def child(args: list[str]) -> None:
    """Run Snakemake in this process with the Recorder's calls timed; print the split at exit."""
    import atexit
    import functools
    import gc
    import importlib.abc
    import importlib.util
    import threading
    import time
    from typing import Any

    spent = {"calls": 0.0, "flushes": 0.0, "gc": 0.0}
    local = threading.local()

    def timed(cls: Any, name: str, part: str) -> None:
        original = getattr(cls, name)

        @functools.wraps(original)
        def wrapper(*a: object, **k: object) -> object:
            stack = local.__dict__.setdefault("stack", [])
            start = time.thread_time()
            stack.append(0.0)
            try:
                return original(*a, **k)
            finally:
                used = time.thread_time() - start
                inner = stack.pop()
                if stack:
                    stack[-1] += used
                spent[part] += used - inner

        setattr(cls, name, wrapper)

    class Timers(importlib.abc.MetaPathFinder):
        """Wraps the BatchRecorder's calls once the plugin imports it (imported here, its
        import would leave the plugin's set-up)."""

        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name != "lakeline.lineage.batching":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            assert spec is not None and spec.loader is not None
            execute = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                execute(module)
                for call in CALLS:
                    timed(module.BatchRecorder, call, "calls")
                for call in FLUSHES:
                    timed(module.BatchRecorder, call, "flushes")

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, Timers())
    started: dict[int, float] = {}

    def collected(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2 or threading.current_thread().name != "lakeline":
            return
        if phase == "start":
            started[threading.get_ident()] = time.thread_time()
        elif threading.get_ident() in started:
            spent["gc"] += time.thread_time() - started.pop(threading.get_ident())

    gc.callbacks.append(collected)
    atexit.register(lambda: print(f"SPLIT {json.dumps(spent)}", file=sys.stderr, flush=True))
    sys.argv = ["snakemake", *args]
    from snakemake.cli import main

    main()


def run(folder: Path, jobs: int, cores: int, env: dict[str, str]) -> dict[str, float]:
    """One Snakemake run through `--child`: seconds of CPU per part."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--"]
    command += ["--cores", str(cores), "all", "--config", f"jobs={jobs}", "sleep=0"]
    command += ["--logger", "lakeline"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    reported = re.search(r"lakeline: recorded \d+ jobs .*, ([0-9.]+) s CPU\)", done.stderr)
    split = re.search(r"^SPLIT (.*)$", done.stderr, re.M)
    if done.returncode != 0 or reported is None or split is None:
        raise SystemExit(f"snakemake failed ({done.returncode}):\n{done.stderr[-3000:]}")
    parts = json.loads(split.group(1))
    total = float(reported.group(1))
    return {**parts, "lakeline": total, "own": total - parts["calls"] - parts["flushes"]}


def main() -> None:
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--") + 1 :])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", default="200,400", help="two sizes (jobs per run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(n) for n in args.jobs.split(",")]
    sys.path.insert(0, str(HERE))
    import snakemake_overhead as smk

    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-smksplit-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    env = {**os.environ, "LAKELINE_CAPTURE_BATCH": "on"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    import lakeline as ll

    server = None
    figures: dict[tuple[str, int], list[dict[str, float]]] = {}
    count = 0
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            if db == "postgres" and server is None:
                from lakeline.testing_servers import PostgresServer

                shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                server = PostgresServer(parent_dir=shm).start()
            for r in range(args.rounds):
                for jobs in sizes if r % 2 == 0 else sizes[::-1]:
                    count += 1
                    name = f"{db}-{jobs}-{count}"
                    url = None
                    if server is not None and db == "postgres":
                        url = server.create_database(name.replace("-", "_"))
                    ll.init(storage=base / f"data-{name}", db=url, name=name)
                    ll.disconnect()
                    folder = smk.workflow(base / f"wf-{name}", jobs)
                    parts = run(folder, jobs, args.cores, {**env, "LAKELINE_INSTANCE": name})
                    figures.setdefault((db, jobs), []).append(parts)
                    shutil.rmtree(folder, ignore_errors=True)
                    shown = ", ".join(f"{k} {parts[k] * 1000:.0f}" for k in PARTS)
                    print(f"[{db}] {jobs} jobs: {shown} ms, load {smk.load()}", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"CPU ms per run (median of {args.rounds}), --cores {args.cores}; jobs = N + `all`")
    print(f"{'db':<9} {'part':<9}" + "".join(f"{n + 1:>9}" for n in sizes), end="")
    print(f"{'fixed ms':>10} {'ms/job':>8}" if len(sizes) == 2 else "")
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        for part in PARTS:
            medians = [statistics.median(f[part] for f in figures[(db, n)]) for n in sizes]
            line = f"{db:<9} {part:<9}" + "".join(f"{m * 1000:>9.0f}" for m in medians)
            if len(sizes) == 2:
                slope = (medians[1] - medians[0]) / (sizes[1] - sizes[0])
                fixed = medians[0] - slope * (sizes[0] + 1)
                line += f"{fixed * 1000:>10.0f} {slope * 1000:>8.3f}"
            print(line)


if __name__ == "__main__":
    main()
