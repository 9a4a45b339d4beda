"""Lineage capture overhead: `track()`/`finish()` and the Recorder's cost per engine task.

    uv run python bench/track.py [--tasks 300] [--db sqlite|postgres|both]

Prints figures next to DESIGN §8's budgets (track() <= 50 ms, <= 5 ms per engine task).
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure_track(home: Path, name: str, script_dir: Path, repeats: int = 7) -> tuple[float, float]:
    """Median in-process time of track() and of finish(), over fresh processes."""
    script = script_dir / "tracked_script.py"
    script.write_text(
        "import time, lakeline as ll\n"
        "ll.connect()\n"
        "t0 = time.perf_counter(); ll.track(params={'n': 1}); t1 = time.perf_counter()\n"
        "ll.finish(); t2 = time.perf_counter()\n"
        "print(f'{(t1 - t0) * 1000:.3f} {(t2 - t1) * 1000:.3f}')\n"
    )
    env = {**os.environ, "LAKELINE_HOME": str(home), "LAKELINE_INSTANCE": name}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as users run
    tracks, finishes = [], []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        tracks.append(float(out[0]))
        finishes.append(float(out[1]))
    return statistics.median(tracks[1:]), statistics.median(finishes[1:])


def measure_recorder(root: Path, n_tasks: int) -> float:
    """Milliseconds per task: start step, one input, one output (hashed), finish."""
    from lakeline.lineage.recorder import Recorder

    (root / "in").mkdir(parents=True, exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    for i in range(n_tasks):
        (root / "in" / f"{i}.txt").write_text(f"input {i}\n" * 10)
        (root / "out" / f"{i}.txt").write_text(f"output {i}\n" * 10)
    rec = Recorder("bench", root=root)
    wf = rec.start_workflow(key="bench-pipeline", engine_run_id="bench-run")
    start = time.perf_counter()
    for i in range(n_tasks):
        step = rec.start_step(wf, key=f"rule{i % 5}", kind="rule", engine_task_id=str(i))
        rec.use(step, f"in/{i}.txt")
        rec.produce(step, f"out/{i}.txt")
        rec.finish_step(step)
    elapsed = time.perf_counter() - start
    rec.finish_workflow(wf)
    return elapsed / n_tasks * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-track-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    import lakeline as ll

    server = None
    rows = []
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        url = None
        if db == "postgres":
            from lakeline.testing_servers import PostgresServer

            server = PostgresServer(
                parent_dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            )
            url = server.start().create_database("bench_track")
        instance = ll.init(storage=base / f"data-{db}", db=url, name=f"bench-{db}")
        track_ms, finish_ms = measure_track(base / "home", instance.name, base)
        per_task = measure_recorder(base / f"wf-{db}", args.tasks)
        rows.append((db, track_ms, finish_ms, per_task))
        ll.disconnect()
    if server is not None:
        server.stop()
    print(f"{'database':<10} {'track() ms':>11} {'finish() ms':>12} {'per task ms':>12}")
    for db, track_ms, finish_ms, per_task in rows:
        print(f"{db:<10} {track_ms:>11.1f} {finish_ms:>12.1f} {per_task:>12.2f}")
    print("budgets (DESIGN §8): track() <= 50 ms; lineage capture <= 5 ms per engine task")


if __name__ == "__main__":
    main()
