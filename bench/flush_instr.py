"""Instructions a step of the batched Recorder (its four calls and its share of a flush of
`--steps` steps), counted by callgrind: the same count whatever the machine's load.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \\
        .venv/bin/python bench/flush_instr.py [--db sqlite|postgres] [--flushes 30] [--steps 3] \\
        [--gc-off]
    grep ^totals: OUT     # then divide by flushes x steps

Instrumentation is switched on (`callgrind_control -i on`) around each batch's calls and its
flush, after 5 batches not counted; the files are written with it off. `--gc-off`: the cyclic
collector off after a full collection once the 5 batches are written (a full collection, one in
several hundred steps here, lands in a window or not: ~40M instructions). The PostgreSQL server
runs outside valgrind (its CPU is not counted). A/B: run it with PYTHONPATH=<before>/core/src
(an extracted `git archive <rev> core/src`) and without. Prints nothing; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

WARM = 5


def instrument(on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def main(prepare: Callable[[], None] | None = None) -> None:
    """The bench; `prepare` (bench/audit_instr.py's variants) runs once the catalog is made."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--flushes", type=int, default=30)
    parser.add_argument("--steps", type=int, default=3, help="steps in each flush's batch")
    parser.add_argument("--gc-off", action="store_true", help="no collections while counted")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-instr-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    import lakeline as ll
    from lakeline.lineage.recorder import BatchRecorder

    server = None
    try:
        url = None
        if args.db == "postgres":
            from lakeline.testing_servers import PostgresServer

            shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            server = PostgresServer(parent_dir=shm).start()
            url = server.create_database("flush_instr")
        ll.init(storage=base / "data", db=url, name="flush-instr")
        if prepare is not None:
            prepare()
        root = base / "files"
        root.mkdir()
        rec = BatchRecorder("bench", root=root, steps=10**6, ms=10**9)
        wf = rec.start_workflow(key="wf", engine_run_id="r")
        rec.flush()
        n = 0
        for i in range(args.flushes + WARM):
            for k in range(n, n + args.steps):
                (root / f"in{k}.txt").write_text(f"input {k}\n")
                (root / f"out{k}.txt").write_text(f"output {k}\n")
            if i == WARM and args.gc_off:
                gc.collect()
                gc.disable()
            if i >= WARM:
                instrument(True)
            for _ in range(args.steps):
                step = rec.start_step(wf, key="task", kind="task", engine_task_id=str(n))
                rec.use(step, f"in{n}.txt")
                rec.produce(step, f"out{n}.txt")
                rec.finish_step(step)
                n += 1
            rec.flush()
            if i >= WARM:
                instrument(False)
        ll.disconnect()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
