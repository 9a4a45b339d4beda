"""Lineage capture overhead: `track()`/`finish()` and the Recorder's cost per engine task.

    uv run python bench/track.py [--tasks 200] [--rounds 3] [--db sqlite|postgres|both]

Prints figures next to DESIGN §8's budgets (track() <= 50 ms, <= 5 ms per engine task).
Asserts nothing about time. See bench/README.md ("bench/track.py") for what is timed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CALLS = ("start_step", "use", "produce", "finish_step")


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
    # the first start writes the plugin discovery cache (as after an install): not counted
    return statistics.median(tracks[1:]), statistics.median(finishes[1:])


def measure_recorder(
    root: Path, n_tasks: int, *, merged: bool, batch: bool = False
) -> dict[str, float]:
    """Milliseconds per task, in total and per call: start a step, use one input, produce
    one (hashed) output, finish. `merged`: the output goes to finish_step(outputs=[...]).
    `batch`: a BatchRecorder (default batch size); its final flush in finish_workflow is
    counted in finish_step."""
    from lakeline.lineage.recorder import BatchRecorder, Recorder

    (root / "in").mkdir(parents=True, exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    warm = 5  # first tasks create the rule transforms and fill SQLAlchemy's caches
    for i in range(n_tasks + warm):
        (root / "in" / f"{i}.txt").write_text(f"input {i}\n" * 10)
        (root / "out" / f"{i}.txt").write_text(f"output {i}\n" * 10)
    rec = BatchRecorder("bench", root=root) if batch else Recorder("bench", root=root)
    wf = rec.start_workflow(key="bench-pipeline", engine_run_id=f"bench-{root.name}")
    spent = dict.fromkeys(CALLS, 0.0)
    clock = time.perf_counter
    cpu = 0.0
    for i in range(n_tasks + warm):
        c0 = time.thread_time()
        t0 = clock()
        step = rec.start_step(wf, key=f"rule{i % 5}", kind="rule", engine_task_id=str(i))
        t1 = clock()
        rec.use(step, f"in/{i}.txt")
        t2 = clock()
        if merged:
            t3 = t2
            rec.finish_step(step, outputs=[f"out/{i}.txt"])
        else:
            rec.produce(step, f"out/{i}.txt")
            t3 = clock()
            rec.finish_step(step)
        t4 = clock()
        if i >= warm:
            cpu += (time.thread_time() - c0) * 1000 / n_tasks
            for name, spent_ms in zip(CALLS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[name] += spent_ms * 1000 / n_tasks
    t0, c0 = clock(), time.thread_time()
    rec.finish_workflow(wf)
    if batch:
        spent["finish_step"] += (clock() - t0) * 1000 / n_tasks
        cpu += (time.thread_time() - c0) * 1000 / n_tasks
    return {"task": sum(spent.values()), **spent, "cpu": cpu}


def recorder_figures(base: Path, db: str, n_tasks: int, rounds: int) -> list[dict[str, float]]:
    """The median round of each variant (by total per task); rounds alternate the variants."""
    variants = ("calls", "merged", "batched")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            root = base / f"wf-{db}-{v}-{r}"
            figures = measure_recorder(root, n_tasks, merged=v == "merged", batch=v == "batched")
            results[v].append(figures)
    return [sorted(results[v], key=lambda f: f["task"])[(rounds - 1) // 2] for v in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="Recorder rounds per variant")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-track-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    import lakeline as ll

    load_before = os.getloadavg()[0]
    server = None
    rows = []
    try:
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
            calls, merged, batched = recorder_figures(base, db, args.tasks, args.rounds)
            rows.append((db, track_ms, finish_ms, calls, merged, batched))
            ll.disconnect()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"load average (1 min): {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} now")
    print(
        f"{'database':<10} {'track() ms':>11} {'finish() ms':>12} {'per task ms':>12} "
        f"{'outputs at finish':>18} {'BatchRecorder':>14}"
    )
    for db, track_ms, finish_ms, calls, merged, batched in rows:
        print(
            f"{db:<10} {track_ms:>11.1f} {finish_ms:>12.1f} {calls['task']:>12.2f} "
            f"{merged['task']:>18.2f} {batched['task']:>14.2f}"
        )
    print("per call, ms (start_step / use / produce / finish_step):")
    for db, _, _, calls, merged, batched in rows:
        print(f"  {db:<10} " + " / ".join(f"{batched[name]:.2f}" for name in CALLS) + " (batched)")
        print(f"  {db:<10} " + " / ".join(f"{calls[name]:.2f}" for name in CALLS))
        print(
            f"  {db:<10} {merged['start_step']:.2f} / {merged['use']:.2f} / - / "
            f"{merged['finish_step']:.2f} (finish_step with outputs=)"
        )
    print("budgets (DESIGN §8): track() <= 50 ms; lineage capture <= 5 ms per engine task")


if __name__ == "__main__":
    main()
