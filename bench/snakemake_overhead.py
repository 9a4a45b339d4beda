"""Overhead of the Snakemake logger plugin: a workflow of many small jobs, with and without
`--logger lakeline`.

    uv run python bench/snakemake_overhead.py [--jobs 200] [--repeats 3] [--cores 2]
                                              [--db sqlite|postgres|both] [--sleep 0]

`--sleep S` makes each job last S seconds more (the default, 0, is the worst case for the
plugin: Snakemake itself then spends only a few ms per job).

Each repetition runs the same fresh workflow folder twice, without and with the plugin
(alternating, so load changes hit both alike), and times the whole `snakemake` process.
Figures, per job, against DESIGN §8's budget of 5 ms per engine task:
- overhead: (with - without) / jobs, in wall time from the best of the repetitions and from
  the medians (this machine is shared: the best run is the one least disturbed by other
  work), and in CPU time (user + system of Snakemake and its jobs, median), which other
  sessions on the machine disturb much less;
- recording: the time the plugin itself reports spending (it records in Snakemake's logging
  thread, so part of it overlaps the jobs), median;
- replay: the same lineage recorded again from the run's journal into a fresh instance
  (`lakeline snakemake import`), in this process: the work when nothing else runs.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

SNAKEFILE = """
N = int(config["jobs"])
PAUSE = "sleep {config[sleep]}; " if float(config["sleep"]) else ""

rule all:
    input: expand("out/{i}.txt", i=range(N))

rule step:
    input: "data/{i}.txt"
    output: "out/{i}.txt"
    shell: PAUSE + "tr a-z A-Z < {input} > {output}"
"""


def workflow(folder: Path, jobs: int) -> Path:
    """A fresh workflow folder: `jobs` independent small jobs (plus the `all` job)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    (folder / "Snakefile").write_text(SNAKEFILE)
    for i in range(jobs):
        (folder / "data" / f"{i}.txt").write_text(f"sample {i}\n" * 20)
    return folder


class Spent(NamedTuple):
    """What the plugin says it spent recording: seconds, and its threads' CPU seconds (NaN
    from a plugin that does not report them)."""

    wall: float
    cpu: float


def run(
    folder: Path,
    args: argparse.Namespace,
    env: dict[str, str],
    plugin: bool,
    launch: Sequence[str] = ("-m", "snakemake"),
) -> tuple[float, float, Spent | None]:
    """Wall and CPU seconds of one `snakemake` process (with its jobs), and what the plugin
    says it spent. `launch`: the interpreter's arguments that start Snakemake."""
    command = [sys.executable, *launch, "--cores", str(args.cores), "all"]
    command += ["--config", f"jobs={args.jobs}", f"sleep={args.sleep}"]
    if plugin:
        command += ["--logger", "lakeline"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode != 0 or "lakeline: lineage incomplete" in done.stderr:
        raise SystemExit(f"snakemake failed ({done.returncode}):\n{done.stderr[-3000:]}")
    pattern = r"lakeline: recorded \d+ jobs .*\(([0-9.]+) s recording(?:, ([0-9.]+) s CPU)?\)"
    spent = re.search(pattern, done.stderr)
    if plugin and spent is None:
        raise SystemExit(f"the plugin did not report:\n{done.stderr[-3000:]}")
    if spent is None:
        return elapsed, cpu, None
    return elapsed, cpu, Spent(float(spent.group(1)), float(spent.group(2) or "nan"))


def replay_ms(folder: Path, name: str, jobs: int) -> float:
    """Milliseconds per job to record the run again from its journal, in a fresh instance."""
    import lakeline as ll
    from snakemake_logger_plugin_lakeline.importer import import_workflow

    ll.connect(name)
    start = time.perf_counter()
    result = import_workflow(folder, report=lambda line: None)
    elapsed = time.perf_counter() - start
    ll.disconnect()
    return elapsed / max(result.journal_jobs, 1) * 1000


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each job lasts")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-snakemake-"))
    home = base / "home"
    os.environ["LAKELINE_HOME"] = str(home)
    env = {**os.environ, "LAKELINE_HOME": str(home)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as users run
    import lakeline as ll

    server = None
    rows = []
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            urls: list[str | None] = [None, None]
            if db == "postgres":
                from lakeline.testing_servers import PostgresServer

                if server is None:
                    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                    server = PostgresServer(parent_dir=shm).start()
                urls = [server.create_database(f"bench_{n}") for n in ("live", "replay")]
            for url, name in zip(urls, ("live", "replay"), strict=True):
                ll.init(storage=base / f"data-{db}-{name}", db=url, name=f"{db}-{name}")
                ll.disconnect()
            env["LAKELINE_INSTANCE"] = f"{db}-live"
            without: list[float] = []
            with_plugin: list[float] = []
            cpu: dict[bool, list[float]] = {False: [], True: []}
            spent: list[float] = []
            print(f"[{db}] load at start: {load()}", file=sys.stderr)
            for i in range(args.repeats):
                folder = workflow(base / "wf-plain", args.jobs)
                wall, used, _ = run(folder, args, env, plugin=False)
                without.append(wall)
                cpu[False].append(used)
                folder = workflow(base / f"wf-{db}-{i}", args.jobs)
                wall, used, recording = run(folder, args, env, plugin=True)
                with_plugin.append(wall)
                cpu[True].append(used)
                spent.append(0.0 if recording is None else recording.wall)
                print(
                    f"[{db}] run {i + 1}: without {without[-1]:.2f} s "
                    f"(cpu {cpu[False][-1]:.2f} s), with {wall:.2f} s (cpu {used:.2f} s, "
                    f"recording {spent[-1]:.2f} s), load {load()}",
                    file=sys.stderr,
                )
            replay = replay_ms(base / f"wf-{db}-0", f"{db}-replay", args.jobs)
            extra_cpu = statistics.median(cpu[True]) - statistics.median(cpu[False])
            rows.append((db, without, with_plugin, extra_cpu, statistics.median(spent), replay))
            print(f"[{db}] load at end: {load()}", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    jobs = args.jobs + 1  # the `all` job is recorded too
    print(
        f"{jobs} jobs (+{args.sleep} s each), --cores {args.cores}, {args.repeats} runs each; "
        "times in s, per job in ms"
    )
    print(
        f"{'database':<9} {'without':>14} {'with':>14} {'ratio':>6} "
        f"{'overhead/job: wall':>19} {'cpu':>6} {'recording/job':>14} {'replay/job':>11}"
    )
    print(f"{'':<9} {'best  median':>14} {'best  median':>14} {'best':>6} {'best  median':>19}")
    for db, plain, plugged, extra_cpu, spent, replay in rows:
        best = (min(plugged) - min(plain)) / jobs * 1000
        median = (statistics.median(plugged) - statistics.median(plain)) / jobs * 1000
        print(
            f"{db:<9} {min(plain):>6.2f} {statistics.median(plain):>7.2f} "
            f"{min(plugged):>6.2f} {statistics.median(plugged):>7.2f} "
            f"{min(plugged) / min(plain):>6.3f} {best:>11.2f} {median:>7.2f} "
            f"{extra_cpu / jobs * 1000:>6.2f} {spent / jobs * 1000:>14.2f} {replay:>11.2f}"
        )
    print("budget (DESIGN §8): lineage capture <= 5 ms per engine task")


if __name__ == "__main__":
    main()
