"""Where the Snakemake plugin's CPU a job goes, part by part, inside real `snakemake --logger
lakeline` runs at two sizes (the slope a job by difference, as bench/capture_split.py).

    uv run --frozen python bench/smk_parts.py [--jobs 200,800] [--rounds 2] [--db sqlite|postgres]
        [--cores 2] [--before DIR]

Each run is a fresh Snakemake process on a fresh instance (bench/snakemake_overhead.py's
workflow), started through this file (`--child`), which wraps functions with thread-CPU timers
before Snakemake loads the plugin. The timers nest: each part's figure is exclusive of the parts
timed inside it. Parts: `setup` (the handler's set-up, the first job's Recorder and workflow
run), `hook` (the log filter in Snakemake's thread), `parse` (records to events), `journal`,
`stats` (stats and `.snakemake/metadata` reads), `sources`, `calls` (the Recorder's calls, less
what they flush), `hash` (files hashed, in calls or flushes), `flush` (the batches written, less
`sql` and `hash`), `sql` (the database driver's execute and commit: SQLite's C work), `gc`
(collections started inside any part), `own` (the rest of the plugin's code: the handler's and
the tracker's and writer's logic). `--before DIR`: A (DIR's `core/src` and `integrations`
first on PYTHONPATH) and B (this checkout) alternated per round. The timers cost ~1-2 us a call
(~15 a job). Asserts nothing about time.
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
PARTS = ("setup", "hook", "parse", "journal", "stats", "sources", "calls", "hash", "flush")
PARTS += ("sql", "gc", "own")


def child(args: list[str]) -> None:
    """Run Snakemake in this process with the parts timed; print them at exit."""
    import atexit
    import functools
    import gc
    import importlib
    import threading
    import time
    from typing import Any

    spent = dict.fromkeys(PARTS, 0.0)
    counts: dict[str, Any] = {"flushes": 0, "gc0": 0, "gc1": 0, "gc2": 0, "sizes": []}
    local = threading.local()

    def timed(owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*a: object, **k: object) -> object:
            if part == "flush" and name == "_write":  # the steps it finishes
                counts["sizes"].append(len(getattr(a[0], "_finishes", ())))
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
                if part == "flush" and name == "_write":
                    counts["flushes"] += 1

        setattr(owner, name, wrapper)

    done: set[str] = set()

    def patch(module: str) -> None:
        if module in done:
            return
        done.add(module)
        m = importlib.import_module(module)
        targets = {  # built lazily: only the imported module's names
            "snakemake_logger_plugin_lakeline.handler": lambda: (
                [(m.LogHandler, n, "own") for n in ("_take", "close")]
                + [(m.LogHandler, "__post_init__", "setup"), (m, "from_record", "parse")]
            ),
            "snakemake_logger_plugin_lakeline.live": lambda: [(m.LiveHook, "_annotate", "hook")],
            "snakemake_logger_plugin_lakeline.tracker": lambda: [
                (m.Tracker, "_ensure_workflow", "setup"),
                (m, "stats_of", "stats"),
            ],
            "snakemake_logger_plugin_lakeline.jobs": lambda: (  # Job.observe's stats
                [(m, "stats_of", "stats")] if hasattr(m, "stats_of") else []
            ),
            "snakemake_logger_plugin_lakeline.journal": lambda: [
                (m.Journal, "write", "journal"),
                (m.Journal, "flush", "journal"),
            ],
            "snakemake_logger_plugin_lakeline.metadata": lambda: [(m, "read", "stats")],
            "snakemake_logger_plugin_lakeline.sources": lambda: [(m.Sources, "rule", "sources")],
            "lakeline.lineage.batching": lambda: (
                [
                    (m.BatchRecorder, n, "calls")
                    for n in ("start_step", "use", "produce", "finish_step", "use_saved")
                ]
                + [(m.BatchRecorder, "_write", "flush"), (m.BatchRecorder, "_insert_runs", "flush")]
            ),
            "lakeline.storage.hashing": lambda: [
                (m, "hash_local_file", "hash"),
                (m, "hash_folder", "hash"),
            ],
            "sqlalchemy.engine.default": lambda: [
                (m.DefaultDialect, n, "sql")
                for n in ("do_execute", "do_executemany", "do_execute_no_params", "do_commit")
            ],
        }[module]()
        for owner, name, part in targets:
            timed(owner, name, part)

    import importlib.abc
    import importlib.util

    WATCHED = (
        "snakemake_logger_plugin_lakeline.handler",
        "snakemake_logger_plugin_lakeline.live",
        "snakemake_logger_plugin_lakeline.tracker",
        "snakemake_logger_plugin_lakeline.jobs",
        "snakemake_logger_plugin_lakeline.journal",
        "snakemake_logger_plugin_lakeline.metadata",
        "snakemake_logger_plugin_lakeline.sources",
        "lakeline.lineage.batching",
        "lakeline.storage.hashing",
        "sqlalchemy.engine.default",
    )

    class Timers(importlib.abc.MetaPathFinder):
        """Wraps each watched module's functions once it is imported."""

        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name not in WATCHED or name in done:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            assert spec is not None and spec.loader is not None
            execute = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                execute(module)
                sys.modules[name] = module
                patch(name)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    if "sqlalchemy.engine.default" in sys.modules:
        patch("sqlalchemy.engine.default")
    sys.meta_path.insert(0, Timers())

    def collected(phase: str, info: dict[str, int]) -> None:
        stack = local.__dict__.get("stack")
        if not stack:
            return
        if phase == "start":
            local.gc_start = time.thread_time()
            counts[f"gc{info['generation']}"] += 1
        elif getattr(local, "gc_start", None) is not None:
            used = time.thread_time() - local.gc_start
            local.gc_start = None
            stack[-1] += used
            spent["gc"] += used

    gc.callbacks.append(collected)
    profile_to = os.environ.get("SMK_PARTS_PROFILE")  # cProfile of the plugin thread's batches
    if profile_to:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)
        handler = importlib.import_module("snakemake_logger_plugin_lakeline.handler")
        take = handler.LogHandler._take

        def profiled(self: Any, **kw: Any) -> None:
            if threading.current_thread().name != "lakeline":
                return take(self, **kw)
            profiler.enable()
            try:
                return take(self, **kw)
            finally:
                profiler.disable()

        handler.LogHandler._take = profiled
        atexit.register(lambda: profiler.dump_stats(profile_to))
    atexit.register(
        lambda: print(f"PARTS {json.dumps({**spent, **counts})}", file=sys.stderr, flush=True)
    )
    sys.argv = ["snakemake", *args]
    from snakemake.cli import main

    main()


def run(folder: Path, jobs: int, cores: int, env: dict[str, str]) -> dict[str, float]:
    """One Snakemake run through `--child`: ms of CPU per part, and the plugin's figure."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--"]
    command += ["--cores", str(cores), "all", "--config", f"jobs={jobs}", "sleep=0"]
    command += ["--logger", "lakeline"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    reported = re.search(r"lakeline: recorded \d+ jobs .*, ([0-9.]+) s CPU\)", done.stderr)
    split = re.search(r"^PARTS (.*)$", done.stderr, re.M)
    if done.returncode != 0 or reported is None or split is None:
        raise SystemExit(f"snakemake failed ({done.returncode}):\n{done.stderr[-3000:]}")
    parts = json.loads(split.group(1))
    figures = {k: v * 1000 if k in PARTS else v for k, v in parts.items()}
    figures["lakeline"] = float(reported.group(1)) * 1000
    figures["timed"] = sum(figures[p] for p in PARTS)
    return figures


def main() -> None:
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--") + 1 :])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", default="200,800", help="two sizes (jobs per run)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--before", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import lakeline as ll
    import snakemake_overhead as smk

    sizes = [int(j) for j in args.jobs.split(",")]
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-parts-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    server = None
    if args.db == "postgres":
        from lakeline.testing_servers import PostgresServer

        server = PostgresServer(parent_dir=base).start()
    sides = {"B": []} if args.before is None else {"A": [args.before.resolve()], "B": []}
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    count = 0
    try:
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for side in order:
                for jobs in sizes if r % 2 == 0 else reversed(sizes):
                    count += 1
                    name = f"parts-{count}"
                    url = None if server is None else server.create_database(f"parts_{count}")
                    ll.init(storage=base / f"data-{count}", db=url, name=name)
                    ll.disconnect()
                    env = dict(os.environ, LAKELINE_INSTANCE=name)
                    env.pop("PYTHONPATH", None)
                    env.pop("PYTHONDONTWRITEBYTECODE", None)
                    tree = sides[side]
                    if tree:
                        roots = [tree[0] / "core" / "src"]
                        roots += sorted((tree[0] / "integrations").glob("*/src"))
                        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in roots)
                    folder = smk.workflow(base / f"smk-{count}", jobs)
                    figures = run(folder, jobs, args.cores, env)
                    results.setdefault((side, jobs), []).append(figures)
                    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                    shown = ", ".join(f"{p} {figures[p]:.0f}" for p in PARTS)
                    print(
                        f"round {r + 1} {side} {jobs} jobs: lakeline {figures['lakeline']:.0f} "
                        f"(timed {figures['timed']:.0f}) ms: {shown}; flushes "
                        f"{figures['flushes']:.0f}, gc {figures['gc0']:.0f}/{figures['gc1']:.0f}/"
                        f"{figures['gc2']:.0f}; steps a flush {figures['sizes']}; load {load}",
                        flush=True,
                    )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    small, large = sizes
    print(f"ms a job, slope from {small + 1} to {large + 1} jobs (median of {args.rounds} rounds)")
    for side in sides:
        cells = []
        for part in ("lakeline", *PARTS):
            slopes = [
                (b[part] - a[part]) / (large - small)
                for a, b in zip(results[(side, small)], results[(side, large)], strict=True)
            ]
            cells.append(f"{part} {statistics.median(slopes):.3f}")
        print(f"{side}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
