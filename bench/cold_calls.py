"""The batched Recorder's calls and flushes with warm caches and with cold ones: does the same
work cost more when an engine runs its own code in between (as redun's and Prefect's do)?

    uv run python bench/cold_calls.py [--db sqlite|postgres|both] [--steps 20] [--batches 20]
                                      [--mb 16]

A step is a task's four calls (start_step; then use, produce, finish_step, as the engines'
start and end hooks make them) on two small files; a batch of `--steps` steps is flushed. Two
variants, alternated batch by batch: `warm`, the calls back to back (bench/flush.py, track);
`cold`, before each hook's calls other code runs, as an engine's would: it walks `--mb` MiB
of memory and makes and drops ~20k small Python objects (the caches, the branch predictors
and the allocator's free lists hold its data, not lakeline's). Printed: thread CPU a step of
the calls (and of that, start_step's) and of the flush (medians over the batches after 3),
per variant, and cold / warm.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

WARM_BATCHES = 3


def engine_work(block: bytearray, sink: list[Any]) -> None:
    """Other code between hooks: touches every cache line of `block`, allocates and drops."""
    total = 0
    for i in range(0, len(block), 64):
        total += block[i]
    sink.append([{"k": i, "v": str(i)} for i in range(10_000)])
    sink.clear()
    block[0] = total & 0xFF


def run(db: str, url: str | None, base: Path, args: argparse.Namespace) -> dict[str, Any]:
    import lakeline as ll
    from lakeline.lineage.recorder import BatchRecorder

    ll.init(storage=base / f"data-{db}", db=url, name=f"cold-{db}")
    root = base / f"files-{db}"
    root.mkdir()
    rec = BatchRecorder("bench", root=root, steps=10**6, ms=10**9)
    wf = rec.start_workflow(key="wf", engine_run_id="r")
    rec.flush()
    block = bytearray(os.urandom(args.mb * 1024 * 1024))
    sink: list[Any] = []
    figures: dict[str, dict[str, list[float]]] = {
        v: {"calls": [], "start": [], "flush": []} for v in ("warm", "cold")
    }
    n = 0
    for b in range(2 * (args.batches + WARM_BATCHES)):
        variant = ("warm", "cold")[(b + b // 2) % 2]  # warm cold cold warm warm cold ...
        cold = variant == "cold"
        spent = starts = 0.0
        for _ in range(args.steps):
            (root / f"in{n}.txt").write_text(f"input {n}\n")
            (root / f"out{n}.txt").write_text(f"output {n}\n")
            if cold:
                engine_work(block, sink)
            began = time.thread_time()
            step = rec.start_step(wf, key="task", kind="task", engine_task_id=str(n))
            starts += time.thread_time() - began
            if cold:
                engine_work(block, sink)
            began = time.thread_time()
            rec.use(step, f"in{n}.txt")
            rec.produce(step, f"out{n}.txt")
            rec.finish_step(step)
            spent += time.thread_time() - began
            n += 1
        if cold:
            engine_work(block, sink)
        began = time.thread_time()
        rec.flush()
        flushed = time.thread_time() - began
        if b >= 2 * WARM_BATCHES:
            figures[variant]["calls"].append((spent + starts) * 1000 / args.steps)
            figures[variant]["start"].append(starts * 1000 / args.steps)
            figures[variant]["flush"].append(flushed * 1000 / args.steps)
    ll.disconnect()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batches", type=int, default=20, help="per variant")
    parser.add_argument("--mb", type=int, default=16)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-cold-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    server = None
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            url = None
            if db == "postgres":
                from lakeline.testing_servers import PostgresServer

                shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                server = PostgresServer(parent_dir=shm).start()
                url = server.create_database("cold_calls")
            figures = run(db, url, base, args)
            line = [f"{db:<9} {args.steps} steps a batch, ms a step (median):"]
            for part in ("calls", "start", "flush"):
                warm = statistics.median(figures["warm"][part])
                cold = statistics.median(figures["cold"][part])
                line.append(f"{part} warm {warm:.3f} cold {cold:.3f} (x{cold / warm:.2f})")
            print(" ".join(line), f"load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
