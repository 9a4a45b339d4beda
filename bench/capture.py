"""Lineage capture overhead per engine task, plain Recorder against BatchRecorder, on SQLite
and PostgreSQL, each against a no-capture baseline of the same workflow: one table.

    uv run python bench/capture.py [--tasks 200] [--rounds 3] [--db sqlite|postgres|both]
                                   [--engines track,nextflow,redun,snakemake,prefect]
                                   [--redun-tasks 50] [--split 200] [--before DIR]

Every workflow hashes its files (one input, one output per task), except the Nextflow import,
whose 486-task nf-core fixture has no files on disk (runs, params and statuses only).
`plain` / `batched` is `LAKELINE_CAPTURE_BATCH=off` / `on`.

What "overhead per task" means. Three figures per variant, each divided by the tasks:
- added wall: the workflow's wall time with capture less the baseline's, paired round by
  round (variants alternate, so load changes hit all alike), median over the rounds. This
  is what a user feels. It is noisy where the engine's own time per task is large
  (Snakemake, Prefect: tens of ms), so use many rounds there and read it with the CPU.
- lakeline CPU: the CPU time of the threads running lakeline's code while they run it
  (`time.thread_time`). lakeline's own work, which the machine's load hardly changes.
- in lakeline: the wall time inside lakeline's code. Besides its CPU it holds waiting for
  the database and for the GIL while the engine's own threads hold it (Prefect's in-process
  server, Snakemake's scheduler): not lakeline's work, and on the engine's hot path only
  where the engine waits for that code (Prefect's hooks run in the task's thread;
  Snakemake's plugin runs in its logging thread, which Snakemake does not wait for except
  at temp() removals and update() jobs).
The budget (<= 1 ms) applies to the added wall time and to lakeline's CPU.

Per engine, baseline and where lakeline's code runs:
- track: the Recorder's own calls (start_step, use, produce, finish_step; the batched final
  flush counted), baseline = writing the task's two files;
- nextflow: `import_run` of ../shared/fixtures/nextflow/nf-core-crispriscreen-... into a fresh
  instance, baseline = the same import with `dry_run` (read and plan, no recording), whose
  time and CPU are subtracted;
- redun: a flow of N file tasks with lakeline's scheduler, baseline = redun's own scheduler;
  lakeline's code = its scheduler hooks, the ended jobs and the batches its timer thread records;
- snakemake: N small jobs with `--logger lakeline`, baseline = without; lakeline's code =
  what the plugin reports at the end (its set-up in Snakemake's main thread — imports,
  connecting —, its time in Snakemake's logging thread and its flusher thread, their CPU, plus
  the CPU of its log filter in Snakemake's scheduling thread);
- prefect: N file tasks with lakeline's hooks, baseline = Prefect's plain decorators;
  lakeline's code = the hooks, the task runs' ends and the batches lakeline's flusher thread
  records (prefect_overhead.time_ended, time_flushes).
Each round records a first run: into a fresh instance (track, redun, snakemake; the Nextflow
import's rounds too) or, for Prefect, under one root with a folder per round, so no round's
files are new versions of an earlier round's keys and no round adds a storage root.
Prints the load average before every engine. Asserts nothing about time.

`--before DIR` (bench/capture_ab.py): this checkout against DIR, a `git archive REV core/src
integrations` tree, every round in a fresh process per checkout, alternated AB, BA, ...: each
side's lakeline CPU and baseline, and the paired difference. One pass per checkout cannot tell
a 10-20 % change on this machine; this can.

`--split N` (bench/capture_split.py does this round by round, each round's two sizes back to
back, and prints the range: read that one): redun, Prefect and Snakemake are measured again
at N tasks (not an engine already measured at N: redun runs --redun-tasks, the others
--tasks), and their lakeline
CPU per run (median, batched unless only plain is asked) is split into a fixed part and a part
per task, the line through the two sizes: c(n) = fixed + n * slope. A figure per task at one
size is fixed / n + slope; redun's and Snakemake's fixed part is a first run's (fresh
instance; Snakemake's holds the plugin's set-up in a fresh process: importing lakeline,
connecting), Prefect's a run into an instance it recorded into before (its warm-up round).
Both parts hold the flushes their timers write every 2 s while the engine is busy, so the
slower the engine runs a task, the more flushes per task (the machine's load changes both),
and Snakemake's hold whatever garbage collections of Snakemake's whole heap happen to run
inside the plugin's code (~80 ms each; where they land moves with any change of allocations).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CRISPR = HERE.parent.parent / "shared" / "fixtures" / "nextflow"  # or $LAKELINE_NF_FIXTURES
CRISPR = Path(os.environ.get("LAKELINE_NF_FIXTURES", CRISPR))
CRISPR = CRISPR / "nf-core-crispriscreen-1.2.0-nf24.04.4"
ENGINES = ("track", "nextflow", "redun", "snakemake", "prefect")
SIZED = {"redun": "redun_tasks", "prefect": "tasks", "snakemake": "tasks"}  # again at --split
VARIANTS = ("off", "on")  # LAKELINE_CAPTURE_BATCH: plain, batched


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP end the bench as Ctrl-C does: its `finally` blocks and exit handlers
    run (the Prefect test server, a uvicorn process, is stopped by one; the PostgreSQL
    server and temporary folders by the others). Before, a killed bench left them running.
    A signal ignored when the bench starts (SIGHUP under nohup) stays ignored."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored (nohup): left so
            signal.signal(sig, stop)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Bench:
    """One database: its instances and server, and the figures measured on it."""

    def __init__(self, db: str, base: Path, args: argparse.Namespace, server: Any) -> None:
        self.db, self.base, self.args, self.server = db, base, args, server
        self.count = 0
        self.warm = True  # False: no engine's first round is a warm-up (capture_split warms once)
        self.launch: tuple[str, ...] = ("-m", "snakemake")  # how Snakemake is started

    def instance(self, label: str) -> str:
        """A fresh instance (a new database on PostgreSQL), connected; its name."""
        import lakeline as ll

        self.count += 1
        name = f"{self.db}-{label}-{self.count}"
        url = None if self.server is None else self.server.create_database(name.replace("-", "_"))
        ll.init(storage=self.base / f"data-{name}", db=url, name=name)
        return name

    def rounds(self, once: Callable[[str, int], Timing], warm: bool = True) -> Figures:
        """Figures of `once(variant, round)` per variant (baseline, off, on), rounds
        alternating; with `warm`, a first round is not counted."""
        timings: dict[str, list[Timing]] = {"baseline": [], "off": [], "on": []}
        for r in range(-1 if warm and self.warm else 0, self.args.rounds):
            base = ["baseline"] if getattr(self.args, "baseline", True) else []
            for variant in [*base, *self.args.variants]:
                if variant != "baseline":
                    os.environ["LAKELINE_CAPTURE_BATCH"] = variant
                timing = once(variant, r)
                if r >= 0:
                    timings[variant].append(timing)
        os.environ.pop("LAKELINE_CAPTURE_BATCH", None)
        return Figures.of(timings)


class Timing(NamedTuple):
    """One run of a workflow, in seconds: its wall time, the wall time spent inside
    lakeline's code, and the CPU time lakeline's code used (its threads' own CPU; NaN when
    the code measured does not report it); where measured (Prefect; Snakemake under
    capture_ab), the part of that CPU spent in garbage collections that started inside
    lakeline's code, the batches written (Prefect) and, for Snakemake under capture_ab, those
    collections by generation (`collections`: "cpu" seconds and "count" of those that started
    inside lakeline's code, "process_cpu" and "process" of all the process's, each a list by
    generation 0, 1, 2)."""

    wall: float
    inside: float
    cpu: float = float("nan")
    gc: float = float("nan")
    flushes: float = float("nan")
    collections: dict[str, list[float]] | None = None


class Figures(NamedTuple):
    """Seconds per variant (baseline, off, on): the workflow's median wall time, the median
    of each round's wall time less the same round's baseline (`added`), and the medians of
    the time inside lakeline, of lakeline's CPU time, of its garbage collections' part and of
    the batches written (NaN where not measured), and of the collections by generation
    (`Timing.collections`, each number's median; None where not measured)."""

    wall: dict[str, float]
    added: dict[str, float]
    inside: dict[str, float]
    cpu: dict[str, float]
    gc: dict[str, float]
    flushes: dict[str, float]
    collections: dict[str, dict[str, list[float]] | None]

    @classmethod
    def of(cls, timings: dict[str, list[Timing]]) -> Figures:
        rounds = max(len(v) for v in timings.values())
        base = timings["baseline"] = timings["baseline"] or [Timing(*[float("nan")] * 3)] * rounds
        for v in VARIANTS:  # a variant (or the baseline) not run: NaN
            timings[v] = timings.get(v) or [Timing(*[float("nan")] * 3)] * len(base)
        return cls(
            {k: median([t.wall for t in v]) for k, v in timings.items()},
            {
                k: median([t.wall - b.wall for t, b in zip(v, base, strict=True)])
                for k, v in timings.items()
            },
            {k: median([t.inside for t in v]) for k, v in timings.items()},
            {k: median([t.cpu for t in v]) for k, v in timings.items()},
            {k: median([t.gc for t in v]) for k, v in timings.items()},
            {k: median([t.flushes for t in v]) for k, v in timings.items()},
            {k: _collections([t.collections for t in v]) for k, v in timings.items()},
        )


def _collections(measured: list[dict[str, list[float]] | None]) -> dict[str, list[float]] | None:
    """Each number's median over the rounds (None if a round did not measure them)."""
    rounds = [m for m in measured if m is not None]
    if not rounds or len(rounds) < len(measured):
        return None
    return {
        key: [median(list(x)) for x in zip(*(m[key] for m in rounds), strict=True)]
        for key in rounds[0]
    }


def track(bench: Bench) -> tuple[Figures, int, str]:
    import lakeline as ll
    import track as recorder_bench

    n = bench.args.tasks

    def once(variant: str, r: int) -> Timing:
        root = bench.base / f"track-{bench.db}-{variant}-{r}"
        (root / "in").mkdir(parents=True)  # the workflow without lakeline: write the files
        (root / "out").mkdir()
        start = time.perf_counter()
        for i in range(n):
            (root / "in" / f"{i}.txt").write_text(f"input {i}\n" * 10)
            (root / "out" / f"{i}.txt").write_text(f"output {i}\n" * 10)
        written = time.perf_counter() - start
        if variant == "baseline":
            return Timing(written, 0.0, 0.0)
        bench.instance("track")  # a first run's keys: new records, not new versions
        figures = recorder_bench.measure_recorder(root, n, merged=False, batch=variant == "on")
        ll.disconnect()
        calls = figures["task"] * n / 1000  # the recorder calls alone
        return Timing(written + calls, calls, figures["cpu"] * n / 1000)

    figures = bench.rounds(once)
    return figures, n, "Recorder calls (start_step/use/produce/finish_step), bench/track.py"


def nextflow(bench: Bench) -> tuple[Figures, int, str]:
    import lakeline as ll
    from lakeline_nextflow import import_run

    if not CRISPR.is_dir():
        raise FileNotFoundError(f"the Nextflow fixture is not at {CRISPR}")

    dry: list[tuple[float, float]] = []

    def once(variant: str, r: int) -> Timing:
        bench.instance("nf")
        # each run pays the collection of its own garbage, not of the run before: a dry run
        # just after an import paid the collection of the import's objects (its CPU ~150 ms
        # instead of ~65 on PostgreSQL), and the import less its dry run read ~0 a task
        gc.collect()
        start, cpu = time.perf_counter(), time.thread_time()
        report = import_run(CRISPR, dry_run=variant == "baseline")
        gc.collect()
        spent, cpu = time.perf_counter() - start, time.thread_time() - cpu
        assert report.tasks == 486 and not report.warnings, report.warnings
        ll.disconnect()
        if variant == "baseline":
            dry.append((spent, cpu))
        return Timing(spent, spent - dry[-1][0], cpu - dry[-1][1])  # less its dry run

    figures = bench.rounds(once)
    whole = ", ".join(f"{v}: {figures.wall[v]:.2f} s" for v in VARIANTS)
    return figures, 486, f"import_run of 486 tasks (no files; {whole}), baseline dry_run"


def redun(bench: Bench) -> tuple[Figures, int, str]:
    import threading

    import lakeline as ll
    from lakeline.lineage.recorder import BatchRecorder
    from lakeline_redun.scheduler import LakelineScheduler
    from redun import Scheduler
    from redun.config import Config

    n = bench.args.redun_tasks
    inside = [0.0, 0.0]  # wall, CPU
    lock, depth = threading.Lock(), threading.local()

    def timed(method: Callable[..., None]) -> Callable[..., None]:
        def run(self: Any, *args: Any) -> None:
            if getattr(depth, "n", 0):  # a flush inside a hook: counted once
                return method(self, *args)
            depth.n, start, cpu = 1, time.perf_counter(), time.thread_time()
            try:
                method(self, *args)
            finally:
                depth.n = 0
                with lock:
                    inside[0] += time.perf_counter() - start
                    inside[1] += time.thread_time() - cpu

        return run

    class Timed(LakelineScheduler):  # lakeline's two hooks, timed
        _record_start = timed(LakelineScheduler._record_start)
        _record_end = timed(LakelineScheduler._record_end)
        if hasattr(LakelineScheduler, "_record_ended"):  # the ended jobs its timer records
            _record_ended = timed(LakelineScheduler._record_ended)

    # timed too: the batches the scheduler's timer thread writes, through the method every
    # write goes through (`_flush` where the checkout has one: its due and idle flushes call
    # it, not `flush`)
    writes = "_flush" if hasattr(BatchRecorder, "_flush") else "flush"
    flush = getattr(BatchRecorder, writes)

    def once(variant: str, r: int) -> Timing:
        import capture_redun

        folder = bench.base / f"redun-{bench.db}-{n}-{variant}-{r}"
        (folder / "data").mkdir(parents=True)
        (folder / "out").mkdir()
        (folder / ".redun").mkdir()
        for i in range(n):
            (folder / "data" / f"{i}.txt").write_text(f"sample {i}\n" * 20)
        db_uri = f"sqlite:///{folder}/.redun/redun.db"
        config = Config({"backend": {"db_uri": db_uri, "automigrate": "True"}})
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            if variant == "baseline":
                scheduler = Scheduler(config=config)
            else:
                bench.instance("redun")  # a first run's keys: new records, not new versions
                scheduler = Timed(config=config, root=str(folder))
                setattr(BatchRecorder, writes, timed(flush))
            scheduler.load()
            inside[:] = [0.0, 0.0]
            start = time.perf_counter()
            made = scheduler.run(capture_redun.many(n))
            spent = time.perf_counter() - start
        finally:
            os.chdir(cwd)
            setattr(BatchRecorder, writes, flush)
        assert len(made) == n
        if variant != "baseline":
            recorded = ll.Run.filter(engine="redun", parent_id__isnull=False).count()
            assert recorded == n + 1, (recorded, n + 1)
            ll.disconnect()
        return Timing(spent, *inside)

    figures = bench.rounds(once)
    how = "time in the scheduler's hooks and its timer's flushes, baseline redun's Scheduler"
    return figures, n, how


def snakemake(bench: Bench) -> tuple[Figures, int, str]:
    import lakeline as ll
    import snakemake_overhead as smk

    n = bench.args.tasks
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    options = argparse.Namespace(cores=2, jobs=n, sleep=0.0)

    collected = bench.base / "snakemake-gc.txt"  # written by capture_ab's launcher only
    env["CAPTURE_SNAKEMAKE_GC"] = str(collected)

    def once(variant: str, r: int) -> Timing:
        folder = smk.workflow(bench.base / f"smk-{bench.db}-{variant}-{r}", n)
        plugin = variant != "baseline"
        if plugin:
            env["LAKELINE_INSTANCE"] = bench.instance("smk")  # a first run's keys
            ll.disconnect()
            env["LAKELINE_CAPTURE_BATCH"] = variant
        collected.unlink(missing_ok=True)
        wall, _cpu, spent = smk.run(folder, options, env, plugin=plugin, launch=bench.launch)
        if not plugin:
            return Timing(wall, 0.0, 0.0)
        if not collected.exists():
            return Timing(wall, spent.wall, spent.cpu)
        collections = json.loads(collected.read_text())
        gc = sum(collections["cpu"])
        return Timing(wall, spent.wall, spent.cpu, gc, collections=collections)

    figures = bench.rounds(once, warm=False)
    how = "the plugin's time and its threads' CPU (+ the `all` job), --cores 2"
    return figures, n + 1, how


def prefect(bench: Bench) -> tuple[Figures, int, str]:
    import prefect_overhead as pf

    n = bench.args.tasks
    bench.count += 1
    name = f"pf_{bench.db}_{bench.count}"
    url = None if bench.server is None else bench.server.create_database(name)
    options = argparse.Namespace(
        tasks=n,
        repeats=bench.args.rounds,
        variants=bench.args.variants,
        warm_tasks=getattr(bench.args, "warm_tasks", n),
    )
    row = pf.measure(bench.db, url, bench.base, options, name=name)
    timings = {"baseline": [Timing(w, 0.0, 0.0) for w in row["without"]]}
    for v in VARIANTS:
        runs = zip(
            row["with"][v],
            row["spent"][v],
            row["cpu"][v],
            row["gc"][v],
            row["flushes"][v],
            strict=True,
        )
        timings[v] = [Timing(*run) for run in runs]
    how = "time in the hooks, the flusher's ends and flushes, and those threads' CPU"
    return Figures.of(timings), n, how


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--redun-tasks", type=int, default=50, help="redun's own scheduler spends ~0.1 s a job"
    )
    parser.add_argument(
        "--split",
        type=int,
        default=0,
        help="also run redun, prefect, snakemake at this many tasks: fixed cost per run + per task",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument(
        "--variants", default="off,on", help="off (plain), on (batched) or both; baseline always"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout's `git archive REV core/src integrations` tree: A/B, alternated",
    )
    args = parser.parse_args()
    stop_on_signals()
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not args.variants or set(args.variants) - set(VARIANTS):
        parser.error(f"--variants: choose from {', '.join(VARIANTS)}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engine(s) {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    if args.before is not None:
        import capture_ab

        capture_ab.compare(args, engines)
        return
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-capture-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    harness = None
    if "prefect" in engines:
        import prefect_overhead as pf

        os.environ.update(pf.OFFLINE)
        os.environ["PREFECT_HOME"] = str(base / "prefect")
        from prefect.testing.utilities import prefect_test_harness

        harness = prefect_test_harness(server_startup_timeout=90)
        harness.__enter__()
    measures = {e: globals()[e] for e in engines}
    rows = []
    server = None
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            if db == "postgres" and server is None:
                from lakeline.testing_servers import PostgresServer

                shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                server = PostgresServer(parent_dir=shm).start()
            bench = Bench(db, base, args, server if db == "postgres" else None)
            for engine, measure in measures.items():
                split = args.split if engine in SIZED else 0
                if split and split == getattr(args, SIZED[engine]):  # its size: measured once
                    print(f"[{db}] {engine}: measured at {split} tasks once", file=sys.stderr)
                    split = 0
                for size in [0, *([split] if split else [])]:
                    field = SIZED.get(engine, "tasks")
                    default = getattr(args, field)
                    setattr(args, field, size or default)
                    before = load()
                    print(f"[{db}] {engine}: load {before}", file=sys.stderr)
                    spent, n, how = measure(bench)
                    setattr(args, field, default)
                    rows.append((engine, db, n, spent, how, before))
                    print(f"[{db}] {engine}: {spent} load {load()}", file=sys.stderr)
    finally:
        if harness is not None:
            harness.__exit__(None, None, None)
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"capture overhead per task, ms (median of {args.rounds} rounds; budget <= 1 ms)")
    print(f"{'':<26} {'':>9} {'added wall':>15} {'lakeline CPU':>15} {'in lakeline':>15}")
    print(
        f"{'engine':<10} {'db':<9} {'tasks':>5} {'baseline':>9} {'plain':>7} {'batched':>7} "
        f"{'plain':>7} {'batched':>7} {'plain':>7} {'batched':>7}  {'load 1/5/15':<13}  measured"
    )
    for engine, db, n, figures, how, before in rows:
        ms = {
            name: {k: v / n * 1000 for k, v in getattr(figures, name).items()}
            for name in ("wall", "added", "inside", "cpu")
        }
        print(
            f"{engine:<10} {db:<9} {n:>5} {ms['wall']['baseline']:>9.2f} "
            f"{ms['added']['off']:>+7.2f} {ms['added']['on']:>+7.2f} "
            f"{ms['cpu']['off']:>7.2f} {ms['cpu']['on']:>7.2f} "
            f"{ms['inside']['off']:>7.2f} {ms['inside']['on']:>7.2f}  {before:<13}  {how}"
        )
    print(
        "baseline: the workflow's wall time per task without lakeline. plain / batched: "
        "LAKELINE_CAPTURE_BATCH=off / on. added wall: the workflow's wall time with capture "
        "less the same round's baseline (median over rounds) - what a user waits for, noisy "
        "where the engine's own time per task is large. lakeline CPU: CPU time of the "
        "threads while they run lakeline's code - its own work, whatever the machine's load. "
        "in lakeline: wall time inside lakeline's code, which includes waiting for the GIL "
        "(held by the engine's own threads) and for the database."
    )
    if args.split:
        print_split(rows, "on" if "on" in args.variants else "off")


def print_split(rows: list[tuple[Any, ...]], variant: str) -> None:
    """Per engine and database measured at two sizes: its lakeline CPU per run as a fixed part
    plus a part per task (the line through both sizes' medians)."""
    print(f"lakeline CPU ({'batched' if variant == 'on' else 'plain'}) = fixed + tasks * slope:")
    sizes: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for engine, db, n, figures, *_ in rows:
        if engine in SIZED:
            sizes.setdefault((engine, db), []).append((n, figures.cpu[variant]))
    for (engine, db), measured in sizes.items():
        if len(measured) < 2 or measured[0][0] == measured[1][0]:
            continue
        (n1, c1), (n2, c2) = sorted(measured)[:2]
        slope = (c2 - c1) / (n2 - n1)
        fixed = c1 - n1 * slope
        print(
            f"  {engine:<9} {db:<9} fixed {fixed * 1000:6.1f} ms a run, slope "
            f"{slope * 1000:5.2f} ms a task (from {n1} and {n2} tasks: "
            f"{c1 / n1 * 1000:.2f} and {c2 / n2 * 1000:.2f} ms a task)"
        )


if __name__ == "__main__":
    main()
