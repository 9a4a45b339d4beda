"""The Snakemake plugin's fixed cost a run, part by part: thread CPU in fresh processes.

    uv run python bench/smk_setup.py [--rounds 5] [--db sqlite|postgres|both]
                                     [--before DIR] [--jobs 1]

Each run is a real `snakemake --logger lakeline` process (started through this file,
`--child`) of `--jobs` one-input one-output jobs (bench/snakemake_overhead.py's workflow)
into a fresh instance from a fresh folder: what a first run costs. Before Snakemake loads the
plugin, the child wraps the module loads and calls the set-up is made of with thread-CPU
timers, each exclusive of the timed parts nested in it (a module's import counts where it
first happens), in whatever thread runs them: the plugin's import, connecting (the engine,
its dialect and driver, the first connection, the module and schema checks, the models),
the first job's one-offs (the Recorder's import, the workflow's run, registering the
folder, the plugin manager), and `total`: the CPU the plugin reports (its set-up, its
threads while they record, its log filter: bench/capture.py's figure), which at 1 job is
almost all fixed cost. `gc N` / `gc N count`: the cyclic collector's collections of
generation N over the whole run, in any thread (Snakemake's too), thread CPU and count.

`--before DIR`: the same against DIR, a `git archive REV core/src integrations` tree put
first on PYTHONPATH, runs alternated A/B, B/A, ...; paired B - A medians of the total.
The timers cost ~1 us a call. Asserts nothing about time.
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
from typing import Any

HERE = Path(__file__).resolve().parent
# modules whose first load is timed (exclusive of the timed ones it loads)
MODULES = (
    "snakemake_logger_plugin_lakeline",
    "lakeline",
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "lakeline.db.engine",
    "lakeline.db.migrate",
    "lakeline.models",
    "lakeline.instance",
    "lakeline.lineage.recorder",
    "lakeline.lineage.batching",
    "pluggy",
    "lakeline.plugins",
)
# (module, attribute path) of the calls timed
CALLS = (
    ("snakemake_logger_plugin_lakeline.tracker", "Tracker.connect"),
    ("lakeline.db.engine", "make_engine"),
    ("lakeline.instance", "_probe"),
    ("lakeline.modules.mounting", "required"),
    ("lakeline.db.migrate", "ensure_schema"),
    ("lakeline.instance", "Instance.__init__"),
    ("lakeline.instance", "Instance.load_storages"),
    ("lakeline.instance", "Instance.register_storage"),
    ("lakeline.instance", "_get_or_create_user"),
    ("sqlalchemy.orm.mapper", "_configure_registries"),
    ("lakeline.lineage.recorder", "make_recorder"),
    ("lakeline.lineage.batching", "BatchRecorder.start_workflow"),
    ("lakeline.lineage.batching", "BatchRecorder.flush"),
    ("lakeline.plugins", "get_plugin_manager"),
)
SHOWN = ["total", "timed", *(f"import {m}" for m in MODULES), *(c for _, c in CALLS)]
SHOWN += [f"gc {n}{count}" for n in range(3) for count in ("", " count")]


def child(args: list[str]) -> None:
    """Run Snakemake in this process with the set-up's parts timed; print them at exit."""
    import atexit
    import functools
    import importlib.abc
    import importlib.util
    import threading
    import time

    spent: dict[str, float] = {}
    local = threading.local()

    def timer(label: str, original: Any) -> Any:
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
                spent[label] = spent.get(label, 0.0) + used - inner

        return wrapper

    def wrap_calls(module: Any) -> None:
        for name, path in CALLS:
            if name != module.__name__:
                continue
            owner: Any = module
            *parents, attribute = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            setattr(owner, attribute, timer(path, getattr(owner, attribute)))

    wanted = set(MODULES) | {name for name, _ in CALLS}

    class Timers(importlib.abc.MetaPathFinder):
        """Times the first load of MODULES and wraps CALLS once their module is loaded."""

        busy: set[str] = set()

        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name not in wanted or name in self.busy:
                return None
            self.busy.add(name)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                self.busy.discard(name)
            if spec is None or spec.loader is None:
                return spec
            execute = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                if name in MODULES:
                    timer(f"import {name}", execute)(module)
                else:
                    execute(module)
                wrap_calls(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    if args[:1] == ["--inproc"]:
        inproc(args[1], timers=Timers(), spent=spent)
        return
    sys.meta_path.insert(0, Timers())
    collections = gc_timer()

    def report() -> None:
        print(f"SETUP {json.dumps(spent)}", file=sys.stderr, flush=True)
        print(f"GC {json.dumps(collections)}", file=sys.stderr, flush=True)

    atexit.register(report)
    sys.argv = ["snakemake", *args]
    from snakemake.cli import main

    main()


def gc_timer() -> dict[str, float]:
    """Collections' thread CPU over the whole run, any thread, by generation (`gc N`, and
    `gc N count`): what a collection of Snakemake's heap costs wherever it lands."""
    import gc
    import time

    spent: dict[str, float] = {}
    started: dict[int, float] = {}

    def callback(phase: str, info: dict[str, int]) -> None:
        import threading

        key = threading.get_ident()
        if phase == "start":
            started[key] = time.thread_time()
            return
        if key in started:
            generation = info["generation"]
            label = f"gc {generation}"
            spent[label] = spent.get(label, 0.0) + time.thread_time() - started.pop(key)
            spent[f"{label} count"] = spent.get(f"{label} count", 0.0) + 0.001  # shown x1000

    gc.callbacks.append(callback)
    return spent


def inproc(folder: str, timers: Any, spent: dict[str, float]) -> None:
    """The plugin's set-up and one job without Snakemake running: Snakemake's modules are
    imported first (untimed: a real run has them), then the plugin is imported and its
    Tracker connects and records one job (`WorkflowStarted`, `JobInfo`, `JobFinished`) and
    closes, in this thread. `folder` "-" stops after Snakemake's imports (callgrind's
    baseline)."""
    import time

    import snakemake.api
    import snakemake.cli
    import snakemake.workflow  # noqa: F401

    if os.environ.get("SMK_SETUP_GC") == "off":
        import gc

        gc.disable()  # our code's own work: no collection of Snakemake's heap lands in it
    if folder == "-":
        return
    if timers is not None:
        sys.meta_path.insert(0, timers)
    cpu = time.thread_time()
    from snakemake_logger_plugin_lakeline.events import JobFinished, JobInfo, WorkflowStarted
    from snakemake_logger_plugin_lakeline.tracker import Tracker

    tracker = Tracker(report=lambda _: None)
    tracker.connect()
    now = time.time()
    events = [
        WorkflowStarted("w-1", now, workdir=folder, snakefile=f"{folder}/Snakefile"),
        JobInfo(0, "step", now, inputs=["data/0.txt"], outputs=["out/0.txt"]),
        JobFinished(0, time.time()),
    ]
    tracker.apply_many(events)
    tracker.close()
    spent = {**spent, "total": time.thread_time() - cpu}
    print(f"SETUP {json.dumps(spent)}", file=sys.stderr, flush=True)


_BASELINES: dict[str, int] = {}  # callgrind's count of Snakemake's imports alone, by PYTHONPATH


def run_inproc(folder: Path, env: dict[str, str], callgrind: bool) -> dict[str, float]:
    """One in-process set-up (`inproc`): CPU seconds per part; with `callgrind`, the
    instructions it runs (`total`, in billions: the run less Snakemake's imports alone)."""
    (folder / "out").mkdir(exist_ok=True)
    (folder / "out" / "0.txt").write_text((folder / "data" / "0.txt").read_text().upper())
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--", "--inproc"]
    if not callgrind:
        done = subprocess.run([*command, str(folder)], env=env, capture_output=True, text=True)
        parts = re.search(r"^SETUP (.*)$", done.stderr, re.M)
        if done.returncode != 0 or parts is None:
            raise SystemExit(f"inproc failed ({done.returncode}):\n{done.stderr[-3000:]}")
        spent: dict[str, float] = json.loads(parts.group(1))
        return {**spent, "timed": sum(v for k, v in spent.items() if k != "total")}
    counts = []
    for last in ("-", str(folder)):
        if last == "-" and env.get("PYTHONPATH", "") in _BASELINES:  # the same each run
            counts.append(_BASELINES[env.get("PYTHONPATH", "")])
            continue
        grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        done = subprocess.run([*grind, *command, last], env=env, capture_output=True, text=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"callgrind failed ({done.returncode}):\n{done.stderr[-3000:]}")
        counts.append(int(found.group(1)))
        if last == "-":
            _BASELINES[env.get("PYTHONPATH", "")] = counts[0]
    return {"total": (counts[1] - counts[0]) / 1e9}  # shown x1000: millions


def run(folder: Path, jobs: int, env: dict[str, str]) -> dict[str, float]:
    """One Snakemake run through `--child`: CPU seconds per part."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--"]
    command += ["--cores", "1", "all", "--config", f"jobs={jobs}", "sleep=0"]
    command += ["--logger", "lakeline"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    reported = re.search(r"lakeline: recorded \d+ jobs .*, ([0-9.]+) s CPU\)", done.stderr)
    parts = re.search(r"^SETUP (.*)$", done.stderr, re.M)
    collections = re.search(r"^GC (.*)$", done.stderr, re.M)
    if done.returncode != 0 or reported is None or parts is None or collections is None:
        raise SystemExit(f"snakemake failed ({done.returncode}):\n{done.stderr[-3000:]}")
    spent: dict[str, float] = json.loads(parts.group(1))
    total = {"timed": sum(spent.values()), "total": float(reported.group(1))}
    return {**spent, **json.loads(collections.group(1)), **total}


def main() -> None:
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--") + 1 :])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument(
        "--gc-off",
        action="store_true",
        help="--inproc: garbage collection disabled after Snakemake's imports (a full "
        "collection of its heap, 40-70 ms, lands inside the set-up or not, by allocations)",
    )
    parser.add_argument(
        "--inproc",
        choices=["cpu", "callgrind"],
        default=None,
        help="no Snakemake run: the plugin's set-up and one job in a fresh process after "
        "Snakemake's imports (cpu: thread CPU; callgrind: instructions, less Snakemake's "
        "imports alone, in billions, whatever the load)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import snakemake_overhead as smk

    sides: dict[str, list[Path]] = {"B": []}
    if args.before is not None:
        tree = args.before.resolve()
        if not (tree / "core" / "src" / "lakeline").is_dir():
            raise SystemExit(f"--before {tree}: no core/src/lakeline (git archive it there)")
        sides = {"A": [tree / "core" / "src", tree / "integrations" / "snakemake" / "src"]}
        sides["B"] = [HERE.parent / "core" / "src", HERE.parent / "integrations/snakemake/src"]
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-smksetup-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    dropped = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["LAKELINE_CAPTURE_BATCH"] = "on"
    import lakeline as ll

    server = None
    figures: dict[tuple[str, str], list[dict[str, float]]] = {}
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    count = 0
    print(f"load at start {smk.load()}", file=sys.stderr)
    try:
        for db in dbs:
            if db == "postgres" and server is None:
                from lakeline.testing_servers import PostgresServer

                shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                server = PostgresServer(parent_dir=shm).start()
            order = list(sides)
            warm = 1  # a warm-up round: bytecode caches
            for r in range(args.rounds + warm):
                for side in order if r % 2 == 0 else order[::-1]:
                    count += 1
                    name = f"{db}-{side}-{count}"
                    url = None
                    if server is not None and db == "postgres":
                        url = server.create_database(name.replace("-", "_").lower())
                    ll.init(storage=base / f"data-{name}", db=url, name=name)
                    ll.disconnect()
                    folder = smk.workflow(base / f"wf-{name}", args.jobs)
                    side_env = {**env, "LAKELINE_INSTANCE": name}
                    if sides[side]:
                        side_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in sides[side])
                    if args.inproc:
                        side_env["PYTHONHASHSEED"] = "0"
                        if args.gc_off:
                            side_env["SMK_SETUP_GC"] = "off"
                        grind = args.inproc == "callgrind" and r >= warm
                        parts = run_inproc(folder, side_env, grind)
                    else:
                        parts = run(folder, args.jobs, side_env)
                    shutil.rmtree(folder, ignore_errors=True)
                    if r < warm:
                        continue
                    figures.setdefault((db, side), []).append(parts)
                    print(
                        f"[{db} {side}] total {parts['total'] * 1000:.1f} ms, timed "
                        f"{parts.get('timed', 0) * 1000:.1f}, load {smk.load()}",
                        file=sys.stderr,
                    )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"load at end {smk.load()}", file=sys.stderr)
    columns = [(db, side) for db in dbs for side in sides]
    what = f"fresh Snakemake runs of {args.jobs} job(s)"
    if args.inproc:
        what = "in-process set-ups and 1 job (no Snakemake run)"
    unit = "million instructions" if args.inproc == "callgrind" else "thread CPU ms"
    print(f"{unit}, median of {args.rounds} {what}")
    print(f"{'part':<58}" + "".join(f"{db[:6] + ' ' + side:>11}" for db, side in columns))
    for part in SHOWN:
        medians = [statistics.median(f.get(part, 0.0) for f in figures[c]) for c in columns]
        if max(medians) >= 0.0001:
            print(f"{part:<58}" + "".join(f"{m * 1000:>11.1f}" for m in medians))
    if len(sides) == 2:
        for db in dbs:
            a, b = figures[(db, "A")], figures[(db, "B")]
            diffs = [y["total"] - x["total"] for x, y in zip(a, b, strict=True)]
            lower = sum(d < 0 for d in diffs)
            print(
                f"{db}: total B - A paired median {statistics.median(diffs) * 1000:+.1f} "
                f"(B lower {lower}/{len(diffs)})"
            )


if __name__ == "__main__":
    main()
