"""Where lakeline's CPU goes inside a real redun or Prefect run: cProfile on only while
lakeline's code runs (the hooks and the batches flushed), per thread, merged.

    uv run python bench/engine_profile.py --engine redun|prefect [--tasks 200]
        [--db sqlite|postgres] [--rounds 2] [--out /tmp/eng.prof] [--gc-freeze]

Each round is a first run into a fresh instance (redun) or a new folder under one root
(Prefect, after a warm-up round), batched; rounds 2, 4, ... are profiled (not with
`--no-profile`; the profiler's own cost triples their CPU). Prints per round lakeline's thread CPU,
split into the integration's own code (`hooks`; Prefect's includes the pass over its queued
task runs' ends, `prefect_overhead.time_ended`), the Recorder's calls, the flushes and the
timer's checks (`wake`), each with the CPU of the collections that started inside it and the
net GC-tracked objects it left a task (gen-0 count, calls without a collection); the
collections started inside lakeline's code per generation, and the first hook call's CPU (the
run's set-up: the Recorder made, the workflow started); then the profile of the
profiled rounds, top functions by their own time and cumulative. `--gc-freeze`: `gc.freeze()`
after the imports, so a full collection does not walk the engine's start-up heap.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

_local = threading.local()
_lock = threading.Lock()
PARTS = ("hooks", "calls", "flush", "wake")  # the integration's own code, the Recorder's
# calls, flushes, and the timer's checks of whether a batch is due (flush_idle / flush_if_due)
TOTAL: dict[str, float] = {}
PROFILES: list[cProfile.Profile] = []
PROFILING = [False]
NO_PROFILE = [False]  # --no-profile
CALLS = (  # the Recorder's calls the hooks make: "calls", not the integration's own work
    "start_workflow",
    "start_step",
    "use",
    "produce",
    "finish_step",
    "finish_workflow",
    "annotate",
    "note_attempt",
    "reference",
    "find_step",
)  # not flush_idle / flush_if_due: they are "wake" (wrapped in both, "calls" took their CPU)


def reset() -> None:
    TOTAL.clear()
    for what in ("", "gc_", "objects_", "counted_", "entries_"):
        TOTAL.update({f"{what}{p}": 0.0 for p in PARTS})
    TOTAL.update(flushes=0, entries=0, collections_inside=0)
    TOTAL.pop("first", None)


def _collecting(phase: str, info: dict[str, Any]) -> None:
    """A collection's thread CPU, to the part running when it started."""
    stack = getattr(_local, "stack", None)
    if not stack:
        return
    if phase == "start":
        _local.collecting = time.thread_time()
        TOTAL["collections_inside"] += 1
        TOTAL[f"gen{info['generation']}_inside"] = (
            TOTAL.get(f"gen{info['generation']}_inside", 0) + 1
        )
    elif (started := getattr(_local, "collecting", None)) is not None:
        _local.collecting = None
        with _lock:
            TOTAL[f"gc_{stack[-1][0]}"] += time.thread_time() - started


def timed(fn: Callable[..., Any], part: str = "hooks") -> Callable[..., Any]:
    """`fn`, its exclusive thread CPU added to TOTAL[part] (less the timed calls inside it),
    profiled while PROFILING."""

    def run(*args: Any, **kwargs: Any) -> Any:
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        profile = None
        if not stack:
            TOTAL["entries"] += 1
            if PROFILING[0]:
                profile = getattr(_local, "profile", None)
                if profile is None:
                    profile = _local.profile = cProfile.Profile(time.thread_time)
                    with _lock:
                        PROFILES.append(profile)
                profile.enable()
        frame = [part, time.thread_time(), 0.0, gc.get_count()[0], 0]
        stack.append(frame)
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - frame[1]
            grown = gc.get_count()[0] - frame[3]  # net GC-tracked objects, if no collection ran
            stack.pop()
            if stack:
                stack[-1][2] += spent
                stack[-1][4] += grown if grown >= 0 else 0
            if profile is not None:
                profile.disable()
            with _lock:
                if not stack and part == "hooks" and "first" not in TOTAL:  # its set-up
                    TOTAL["first"] = spent
                TOTAL[part] += spent - frame[2]
                if grown >= 0:  # no collection inside: this call's own net objects
                    TOTAL[f"objects_{part}"] += grown - frame[4]
                    TOTAL[f"counted_{part}"] += 1
                TOTAL[f"entries_{part}"] += 1

    run.__name__ = getattr(fn, "__name__", "timed")
    return run


def time_recorder() -> None:
    """The BatchRecorder's calls and flushes, timed as theirs."""
    from lakeline.lineage.recorder import BatchRecorder

    for name in CALLS:
        setattr(BatchRecorder, name, timed(getattr(BatchRecorder, name), "calls"))
    for name in ("flush_idle", "flush_if_due"):
        setattr(BatchRecorder, name, timed(getattr(BatchRecorder, name), "wake"))
    # every write goes through `_flush` where the checkout has one (the due and idle flushes
    # call it, not `flush`)
    writes = "_flush" if hasattr(BatchRecorder, "_flush") else "flush"
    flush = timed(getattr(BatchRecorder, writes), "flush")

    def counted(*args: Any, **kwargs: Any) -> Any:
        TOTAL["flushes"] += 1
        return flush(*args, **kwargs)

    setattr(BatchRecorder, writes, counted)
    gc.callbacks.append(_collecting)


def redun_rounds(args: argparse.Namespace, base: Path, url: Callable[[str], str | None]) -> None:
    import capture_redun
    import lakeline as ll
    from lakeline_redun.scheduler import LakelineScheduler
    from redun.config import Config

    class Timed(LakelineScheduler):
        _record_start = timed(LakelineScheduler._record_start)
        _record_end = timed(LakelineScheduler._record_end)
        if hasattr(LakelineScheduler, "_record_ended"):  # the ended jobs its timer records
            _record_ended = timed(LakelineScheduler._record_ended)

    n = args.tasks
    for r in range(args.rounds * 2 + 1):
        folder = base / f"redun-{r}"
        (folder / "data").mkdir(parents=True)
        (folder / "out").mkdir()
        (folder / ".redun").mkdir()
        for i in range(n):
            (folder / "data" / f"{i}.txt").write_text(f"sample {i}\n" * 20)
        config = Config({"backend": {"db_uri": f"sqlite:///{folder}/.redun/redun.db"}})
        name = f"redun_{r}"
        ll.init(storage=base / f"data-{name}", db=url(name), name=name)
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            scheduler = Timed(config=config, root=str(folder))
            scheduler.load()
            one_round(r, lambda s=scheduler: s.run(capture_redun.many(n)), n)  # type: ignore[misc]
        finally:
            os.chdir(cwd)
        ll.disconnect()


def prefect_rounds(args: argparse.Namespace, base: Path, url: Callable[[str], str | None]) -> None:
    import lakeline as ll
    import lakeline_prefect
    import prefect_overhead as pf

    pf.timed = timed  # its build() wraps the hooks with this
    pf.time_flushes = lambda: None  # time_recorder() does
    flow = pf.build(True)
    ll.init(storage=base / "data-pf", db=url("pf"), name="pf")
    n = args.tasks
    for r in range(args.rounds * 2 + 1):
        folder = base / "wf" / str(r)
        lakeline_prefect.configure(root=str(folder.parent))
        paths = pf.files(folder, n)
        one_round(r, lambda p=paths: flow(p), n)  # type: ignore[misc]
    ll.disconnect()


def one_round(r: int, run: Callable[[], Any], n: int) -> None:
    os.environ["LAKELINE_CAPTURE_BATCH"] = "on"
    PROFILING[0] = r > 0 and r % 2 == 0 and not NO_PROFILE[0]
    reset()
    stats = gc.get_stats()
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    collections = [
        s["collections"] - b["collections"] for s, b in zip(gc.get_stats(), stats, strict=True)
    ]
    cpu = sum(TOTAL[p] for p in PARTS)
    parts = ", ".join(
        f"{p} {TOTAL[p] * 1000 / n:.3f} (gc {TOTAL['gc_' + p] * 1000 / n:.3f}, "
        f"{_objects(p, n):.0f} objects)"
        for p in PARTS
    )
    inside = [int(TOTAL.get(f"gen{g}_inside", 0)) for g in range(3)]
    print(
        f"round {r}{' (warm-up)' if not r else ''}{' profiled' if PROFILING[0] else ''}: "
        f"wall {wall:.2f} s, lakeline cpu {cpu * 1000 / n:.3f} ms a task: {parts}; "
        f"{TOTAL['flushes']} flushes, {TOTAL['entries']} entries, collections {collections} "
        f"(inside lakeline {inside}), first call {TOTAL.get('first', 0) * 1000:.1f} ms, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    PROFILING[0] = False


def _objects(part: str, n: int) -> float:
    """Net GC-tracked objects a task left by `part`'s own code (calls without a collection,
    scaled to all its calls)."""
    counted = TOTAL[f"counted_{part}"]
    if not counted:
        return 0.0
    return TOTAL[f"objects_{part}"] / counted * TOTAL[f"entries_{part}"] / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=["redun", "prefect"], required=True)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--gc-freeze", action="store_true")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--no-profile", action="store_true", help="every round unprofiled")
    args = parser.parse_args()
    NO_PROFILE[0] = args.no_profile
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-engprof-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    server = None
    harness = None
    try:
        if args.db == "postgres":
            from lakeline.testing_servers import PostgresServer

            shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            server = PostgresServer(parent_dir=shm).start()

        def url(name: str) -> str | None:
            return None if server is None else server.create_database(name)

        time_recorder()
        if args.engine == "prefect":
            import prefect_overhead as pf

            os.environ.update(pf.OFFLINE)
            os.environ["PREFECT_HOME"] = str(base / "prefect")
            from prefect.testing.utilities import prefect_test_harness

            harness = prefect_test_harness(server_startup_timeout=90)
            harness.__enter__()
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        (prefect_rounds if args.engine == "prefect" else redun_rounds)(args, base, url)
    finally:
        if harness is not None:
            harness.__exit__(None, None, None)
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    if not PROFILES:
        return
    stats = pstats.Stats(PROFILES[0])
    for p in PROFILES[1:]:
        stats.add(p)
    if args.out:
        stats.dump_stats(args.out)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
