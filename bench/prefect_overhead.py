"""Overhead of lakeline's Prefect hooks: a flow of many small file tasks, with and without them.

    uv run python bench/prefect_overhead.py [--tasks 200] [--repeats 3] [--db sqlite|postgres|both]

One process, Prefect's offline test server (as in the tests). Each repetition runs the same
flow twice on fresh files, with Prefect's plain decorators and with lakeline's state hooks
added (alternating, so load changes hit both alike). Each task reads one file and writes one
(a path parameter in, a path result out: one input edge and one hashed output per task).
Figures, per task, against DESIGN §8's budget of 5 ms per engine task:
- hooks: the time spent inside lakeline's hooks (task_running + task_finished, and the flow's
  own hooks spread over its tasks), in the batch flushes its timer thread makes between
  them and in the task runs' ends that thread records (`Ended.record`, where the checkout has
  one: a hook queues them), median of the repetitions; this is lakeline's cost;
- cpu: of the hooks' time, the CPU time of the threads running them: the rest is waiting
  (for the GIL, which Prefect's in-process server holds in between, or the database);
- gc: of that CPU, the garbage collections that started inside lakeline's code. Python
  collects whenever allocations pass a threshold, whoever allocates: a full collection of
  Prefect's heap (~0.1-0.2 s) that starts in a hook adds ~0.5-1 ms a task to a 200-task run,
  one that starts in Prefect's code adds nothing, so read the CPU less this when comparing;
- flushes: batches written (timer, steps or the flow's end; their fixed cost is a few ms
  each, and how many a run has follows Prefect's speed: a batch is due 2 s after its first
  queued call);
- wall: (with - without) / tasks, best and median. Prefect itself spends tens of ms per
  task on this machine, so this difference is noisy; the hooks figure is the one to read.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OFFLINE = {
    "PREFECT_API_URL": "",
    "PREFECT_API_KEY": "",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "DO_NOT_TRACK": "1",
}

SPENT: list[float] = [0.0]
CPU: list[float] = [0.0]  # of that, CPU time of the thread running lakeline's code
GC: list[float] = [0.0]  # of that, CPU time of collections that started in lakeline's code
FLUSHES: list[int] = [0]  # batches written
_inside = threading.local()


def _collecting(phase: str, info: dict[str, Any]) -> None:
    """gc.callbacks: the CPU time of a collection that runs inside a timed call, into GC."""
    if not getattr(_inside, "depth", 0):
        return
    if phase == "start":
        _inside.collecting = time.thread_time()
    elif (started := getattr(_inside, "collecting", None)) is not None:
        _inside.collecting = None
        with _spent:
            GC[0] += time.thread_time() - started


def timed(hook: Callable[..., Any]) -> Callable[..., Any]:
    """`hook`, adding its time to SPENT (once: a timed call inside a timed call is not)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "depth", 0):
            return hook(*args, **kwargs)
        _inside.depth = 1
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return hook(*args, **kwargs)
        finally:
            _inside.depth = 0
            with _spent:
                SPENT[0] += time.perf_counter() - start
                CPU[0] += time.thread_time() - cpu

    run.__name__ = hook.__name__
    return run


_spent = threading.Lock()


def time_flushes() -> None:
    """Count the batches lakeline's timer thread flushes between hooks as time in lakeline."""
    from lakeline.lineage.recorder import BatchRecorder

    # every write goes through `_flush` where the checkout has one (its due and idle flushes
    # call it, not `flush`)
    writes = "_flush" if hasattr(BatchRecorder, "_flush") else "flush"
    if not getattr(getattr(BatchRecorder, writes), "timed", False):
        flush = timed(getattr(BatchRecorder, writes))

        def counted(*args: Any, **kwargs: Any) -> Any:
            FLUSHES[0] += 1
            return flush(*args, **kwargs)

        counted.timed = True  # type: ignore[attr-defined]
        setattr(BatchRecorder, writes, counted)
    if _collecting not in gc.callbacks:
        gc.callbacks.append(_collecting)


def time_ended() -> None:
    """Count the task runs' ends recorded after their hook (`lakeline_prefect.ended`, where
    the checkout has it: by the flusher thread, or by a hook writing the batch) as time in
    lakeline: the Recorder's calls of those task runs are made there."""
    try:
        from lakeline_prefect.ended import Ended
    except ImportError:  # a checkout that records a task run's end in its hook
        return
    if not getattr(Ended.record, "timed", False):
        record = timed(Ended.record)
        record.timed = True  # type: ignore[attr-defined]
        Ended.record = record  # type: ignore[method-assign]


def build(hooked: bool) -> Any:
    """The benchmark flow, with (timed) lakeline hooks or without."""
    from lakeline_prefect import hooks
    from prefect import flow, task

    task_hooks: dict[str, Any] = {}
    flow_hooks: dict[str, Any] = {}
    if hooked:
        time_flushes()
        time_ended()
        finished = timed(hooks.task_finished)
        task_hooks = {
            "on_running": [timed(hooks.task_running)],
            "on_completion": [finished],
            "on_failure": [finished],
        }
        done = timed(hooks.flow_finished)
        flow_hooks = {
            "on_running": [timed(hooks.flow_running)],
            "on_completion": [done],
            "on_failure": [done],
        }

    @task(**task_hooks)
    def upper(path: Path) -> Path:
        target = path.parent.parent / "out" / path.name
        target.write_text(path.read_text().upper())
        return target

    @flow(**flow_hooks)
    def many(paths: list[Path]) -> int:
        return len([upper(p) for p in paths])

    return many


def files(folder: Path, n: int) -> list[Path]:
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    (folder / "out").mkdir()
    paths = [folder / "data" / f"{i}.txt" for i in range(n)]
    for i, path in enumerate(paths):
        path.write_text(f"sample {i}\n" * 20)
    return paths


VARIANTS = ("off", "on")  # LAKELINE_CAPTURE_BATCH: plain Recorder, BatchRecorder


def measure(
    db: str, url: str | None, base: Path, args: argparse.Namespace, name: str | None = None
) -> dict[str, Any]:
    """Per round: the flow without hooks, then with them plain, then batched (fresh files
    each); per variant the wall times and the time in lakeline, the warm-up round dropped.
    `name`: the instance's (default `prefect-<db>`), a new one for each call."""
    import lakeline as ll
    import lakeline_prefect

    name = name or f"prefect-{db}"
    ll.init(storage=base / f"data-{name}", db=url, name=name)
    plain, hooked = build(False), build(True)
    without: list[float] = []
    with_hooks: dict[str, list[float]] = {v: [] for v in VARIANTS}
    spent: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    collected: dict[str, list[float]] = {v: [] for v in VARIANTS}
    flushes: dict[str, list[int]] = {v: [] for v in VARIANTS}
    for i in range(args.repeats + 1):  # the first round warms Prefect and lakeline up
        folder = base / f"wf-{name}" / str(i)  # under one root: each round's keys are new
        lakeline_prefect.configure(root=str(folder.parent))
        start = time.perf_counter()
        plain(files(folder / "plain", args.tasks))
        plain_s = time.perf_counter() - start
        line = f"[{db}] round {i}{' (warm-up)' if not i else ''}: without {plain_s:.2f} s"
        if i:
            without.append(plain_s)
        for variant in getattr(args, "variants", VARIANTS):
            os.environ["LAKELINE_CAPTURE_BATCH"] = variant
            paths = files(folder / f"hooked-{variant}", args.tasks)
            SPENT[0] = CPU[0] = GC[0] = 0.0
            FLUSHES[0] = 0
            start = time.perf_counter()
            hooked(paths)
            hooked_s = time.perf_counter() - start
            if i:
                with_hooks[variant].append(hooked_s)
                spent[variant].append(SPENT[0])
                cpu[variant].append(CPU[0])
                collected[variant].append(GC[0])
                flushes[variant].append(FLUSHES[0])
            line += (
                f", {variant}: with {hooked_s:.2f} s, in lakeline {SPENT[0]:.2f} s "
                f"(cpu {CPU[0]:.2f} s, gc {GC[0]:.2f} s, {FLUSHES[0]} flushes)"
            )
        os.environ.pop("LAKELINE_CAPTURE_BATCH", None)
        print(line, file=sys.stderr)
    recorded = ll.Run.filter(engine="prefect", parent_id__isnull=False).count()
    ll.disconnect()
    return {
        "db": db,
        "without": without,
        "with": with_hooks,
        "spent": spent,
        "cpu": cpu,
        "gc": collected,
        "flushes": flushes,
        "runs": recorded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-prefect-"))
    os.environ.update(OFFLINE)
    os.environ["PREFECT_HOME"] = str(base / "prefect")
    os.environ["LAKELINE_HOME"] = str(base / "home")
    from prefect.testing.utilities import prefect_test_harness

    server = None
    rows = []
    try:
        with prefect_test_harness(server_startup_timeout=90):
            for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
                url = None
                if db == "postgres":
                    from lakeline.testing_servers import PostgresServer

                    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                    server = PostgresServer(parent_dir=shm).start()
                    url = server.create_database("bench_prefect")
                rows.append(measure(db, url, base, args))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    n = args.tasks
    print(f"{n} tasks per flow run, {args.repeats} runs each; per task in ms")
    print(
        f"{'database':<9} {'batch':<6} {'without/task':>13} {'with/task':>10} "
        f"{'wall overhead':>20} {'in lakeline':>12} {'(cpu)':>6} {'(gc)':>6} {'flushes':>7}"
    )
    print(f"{'':<16} {'median':>13} {'median':>10} {'best  median':>20} {'median':>12}")
    for row in rows:
        plain = row["without"]
        for variant in VARIANTS:
            hooked = row["with"][variant]
            best = (min(hooked) - min(plain)) / n * 1000
            median = (statistics.median(hooked) - statistics.median(plain)) / n * 1000
            print(
                f"{row['db']:<9} {variant:<6} {statistics.median(plain) / n * 1000:>13.1f} "
                f"{statistics.median(hooked) / n * 1000:>10.1f} {best:>12.1f} {median:>7.1f} "
                f"{statistics.median(row['spent'][variant]) / n * 1000:>12.2f} "
                f"{statistics.median(row['cpu'][variant]) / n * 1000:>6.2f} "
                f"{statistics.median(row['gc'][variant]) / n * 1000:>6.2f} "
                f"{statistics.median(row['flushes'][variant]):>7g}"
            )
        print(f"          ({row['runs']} task runs recorded in all)")


if __name__ == "__main__":
    main()
