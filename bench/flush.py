"""The fixed cost of one small BatchRecorder flush: what redun and Prefect pay every timer
flush (a batch of 1-3 steps, one input and one output hashed each).

    uv run python bench/flush.py [--flushes 150] [--steps 1] [--db sqlite|postgres|both]
                                 [--replay] [--profile]

Each flush's batch: `--steps` steps started, each using a new input and producing a new
output (both hashed when queued: not in the flush), then finished. Timed: the four calls of
a step (start_step, use, produce, finish_step: their thread CPU a step), `flush()` alone,
its thread's CPU (`time.thread_time`), the part of it inside the driver's execute calls,
and wall; median and p90 over `--flushes` flushes after 10 not counted, with the SQL
statements one flush sends; `step`: a step's calls and its share of a flush's CPU.
`--replay`: every step is a replay of a run an earlier Recorder recorded (a resumed
workflow). `--profile`: cProfile of the counted flushes, top 25 by own time. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARM = 10


def measure(db: str, base: Path, args: argparse.Namespace, server: Any) -> dict[str, Any]:
    import lakeline as ll
    from lakeline.instance import current
    from lakeline.lineage.recorder import BatchRecorder
    from sqlalchemy import event

    name = f"flush-{db}"
    url = None if server is None else server.create_database(name.replace("-", "_"))
    ll.init(storage=base / f"data-{name}", db=url, name=name)
    root = base / f"files-{db}"
    root.mkdir()
    total = args.flushes + WARM
    if args.replay:  # an earlier process recorded every step (started only)
        first = BatchRecorder("bench", root=root, steps=10**6, ms=10**9)
        wf = first.start_workflow(key="wf", engine_run_id="r")
        for i in range(total * args.steps):
            first.start_step(wf, key="task", kind="task", engine_task_id=str(i))
        first.flush()
    rec = BatchRecorder("bench", root=root, steps=10**6, ms=10**9)
    wf = rec.start_workflow(key="wf", engine_run_id="r")
    rec.flush()
    engine = current().engine
    statements: list[str] = []
    inside = [0.0, 0.0]  # CPU in the driver's execute (SQLite: the database's work too), since

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)
        inside[1] = time.thread_time()

    def done(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        inside[0] += time.thread_time() - inside[1]

    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "after_cursor_execute", done)
    cpu, wall, sent, driver, calls = [], [], [], [], []
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.thread_time)  # CPU: the load adds no waits
    n = 0
    for i in range(total):
        spent = 0.0
        for _ in range(args.steps):
            (root / f"in{n}.txt").write_text(f"input {n}\n")
            (root / f"out{n}.txt").write_text(f"output {n}\n")
            began = time.thread_time()
            step = rec.start_step(wf, key="task", kind="task", engine_task_id=str(n))
            rec.use(step, f"in{n}.txt")
            rec.produce(step, f"out{n}.txt")
            rec.finish_step(step)
            spent += time.thread_time() - began
            n += 1
        statements.clear()
        inside[0] = 0.0
        if profile is not None and i >= WARM:
            profile.enable()
        c, w = time.thread_time(), time.perf_counter()
        rec.flush()
        c, w = time.thread_time() - c, time.perf_counter() - w
        if profile is not None:
            profile.disable()
        if i >= WARM:
            cpu.append(c * 1000)
            wall.append(w * 1000)
            sent.append(len(statements))
            driver.append(inside[0] * 1000)
            calls.append(spent * 1000 / args.steps)
    last = list(statements)
    event.remove(engine, "before_cursor_execute", count)
    event.remove(engine, "after_cursor_execute", done)
    ll.disconnect()
    if profile is not None:
        import pstats

        print(f"--- {db}: cProfile of {args.flushes} flushes", file=sys.stderr)
        pstats.Stats(profile, stream=sys.stderr).sort_stats(args.sort).print_stats(args.top)
    if args.show:
        print(f"--- {db}: the last flush's statements", file=sys.stderr)
        for s in last:
            print("   ", " ".join(s.split())[:160], file=sys.stderr)
    return {"cpu": cpu, "wall": wall, "sent": sent, "driver": driver, "calls": calls}


def p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flushes", type=int, default=150)
    parser.add_argument("--steps", type=int, default=1, help="steps in each flush's batch")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--replay", action="store_true", help="every step recorded before")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="--profile's order (cumulative, ...)")
    parser.add_argument("--top", type=int, default=25, help="--profile's lines")
    parser.add_argument("--show", action="store_true", help="print the last flush's SQL")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-flush-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    server = None
    rows = []
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            if db == "postgres":
                from lakeline.testing_servers import PostgresServer

                shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                server = PostgresServer(parent_dir=shm).start()
            before = os.getloadavg()[0]
            figures = measure(db, base, args, server if db == "postgres" else None)
            rows.append((db, figures, before, os.getloadavg()[0]))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    kind = "replayed" if args.replay else "new"
    print(f"one flush of {args.steps} {kind} step(s), ms (median / p90 of {args.flushes})")
    print("(driver: CPU inside the driver's execute calls; SQLite's includes the database's)")
    print("(calls: CPU of a step's four calls; step: calls + the flush's CPU / steps)")
    print(
        f"{'db':<9} {'CPU':>7} {'p90':>7} {'driver':>7} {'wall':>7} {'p90':>7} {'SQL':>4} "
        f"{'calls':>6} {'step':>6}  load"
    )
    for db, f, before, after in rows:
        print(
            f"{db:<9} {statistics.median(f['cpu']):7.2f} {p90(f['cpu']):7.2f} "
            f"{statistics.median(f['driver']):7.2f} "
            f"{statistics.median(f['wall']):7.2f} {p90(f['wall']):7.2f} "
            f"{statistics.median(f['sent']):4.0f} {statistics.median(f['calls']):6.3f} "
            f"{statistics.median(f['calls']) + statistics.median(f['cpu']) / args.steps:6.3f}"
            f"  {before:.1f}-{after:.1f}"
        )


if __name__ == "__main__":
    main()
