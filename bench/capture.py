"""Lineage capture overhead per engine task, plain Recorder against BatchRecorder, on SQLite
and PostgreSQL, each against a no-capture baseline of the same workflow: one table.

    uv run python bench/capture.py [--tasks 200] [--rounds 3] [--db sqlite|postgres|both]
                                   [--engines track,nextflow,redun,snakemake,prefect]
                                   [--redun-tasks 50]

Every workflow hashes its files (one input, one output per task), except the Nextflow import,
whose 486-task nf-core fixture has no files on disk (runs, params and statuses only).
`plain` / `batched` is `LAKELINE_CAPTURE_BATCH=off` / `on`. Per engine:
- track: the Recorder's own calls (start_step, use, produce, finish_step; the batched final
  flush counted), baseline = writing the task's two files;
- nextflow: `import_run` of ../shared/fixtures/nextflow/nf-core-crispriscreen-... into a fresh
  instance, baseline = the same import with `dry_run` (read and plan, no recording);
- redun: a flow of N file tasks with lakeline's scheduler, baseline = redun's own scheduler;
- snakemake: N small jobs with `--logger lakeline`, baseline = without; wall time and the
  plugin's own recording time (it records in Snakemake's logging thread);
- prefect: N file tasks with lakeline's hooks; overhead = time spent inside the hooks and
  in the batches lakeline's flusher thread writes between them (Prefect's own tens of ms per
  task make the wall-time difference noise).
Overhead = (with capture - baseline) / tasks, the median of `rounds` alternating runs.
Prints the load average before every engine. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
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
CRISPR = HERE.parent.parent / "shared" / "fixtures" / "nextflow"
CRISPR = CRISPR / "nf-core-crispriscreen-1.2.0-nf24.04.4"
ENGINES = ("track", "nextflow", "redun", "snakemake", "prefect")
VARIANTS = ("off", "on")  # LAKELINE_CAPTURE_BATCH: plain, batched


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Bench:
    """One database: its instances and server, and the figures measured on it."""

    def __init__(self, db: str, base: Path, args: argparse.Namespace, server: Any) -> None:
        self.db, self.base, self.args, self.server = db, base, args, server
        self.count = 0

    def instance(self, label: str) -> str:
        """A fresh instance (a new database on PostgreSQL), connected; its name."""
        import lakeline as ll

        self.count += 1
        name = f"{self.db}-{label}-{self.count}"
        url = None if self.server is None else self.server.create_database(name.replace("-", "_"))
        ll.init(storage=self.base / f"data-{name}", db=url, name=name)
        return name

    def rounds(self, once: Callable[[str, int], tuple[float, float]], warm: bool = True) -> Figures:
        """Medians of `once(variant, round)` -> (wall s, s inside lakeline) per variant
        (baseline, off, on), rounds alternating; with `warm`, a first round is not counted."""
        wall: dict[str, list[float]] = {"baseline": [], "off": [], "on": []}
        inside: dict[str, list[float]] = {"baseline": [], "off": [], "on": []}
        for r in range(-1 if warm else 0, self.args.rounds):
            for variant in wall:
                if variant != "baseline":
                    os.environ["LAKELINE_CAPTURE_BATCH"] = variant
                spent, own = once(variant, r)
                if r >= 0:
                    wall[variant].append(spent)
                    inside[variant].append(own)
        os.environ.pop("LAKELINE_CAPTURE_BATCH", None)
        return Figures(
            {k: median(v) for k, v in wall.items()}, {k: median(v) for k, v in inside.items()}
        )


class Figures(NamedTuple):
    """Median seconds per variant (baseline, off, on): wall time of the workflow, and the
    time spent inside lakeline (the capture overhead)."""

    wall: dict[str, float]
    inside: dict[str, float]


def track(bench: Bench) -> tuple[Figures, int, str]:
    import lakeline as ll
    import track as recorder_bench

    n = bench.args.tasks
    bench.instance("track")

    def once(variant: str, r: int) -> float:
        root = bench.base / f"track-{bench.db}-{variant}-{r}"
        (root / "in").mkdir(parents=True)  # the workflow without lakeline: write the files
        (root / "out").mkdir()
        start = time.perf_counter()
        for i in range(n):
            (root / "in" / f"{i}.txt").write_text(f"input {i}\n" * 10)
            (root / "out" / f"{i}.txt").write_text(f"output {i}\n" * 10)
        written = time.perf_counter() - start
        if variant == "baseline":
            return written, 0.0
        figures = recorder_bench.measure_recorder(root, n, merged=False, batch=variant == "on")
        calls = figures["task"] * n / 1000  # the recorder calls alone
        return written + calls, calls

    figures = bench.rounds(once)
    ll.disconnect()
    return figures, n, "Recorder calls (start_step/use/produce/finish_step), bench/track.py"


def nextflow(bench: Bench) -> tuple[Figures, int, str]:
    import lakeline as ll
    from lakeline_nextflow import import_run

    if not CRISPR.is_dir():
        raise FileNotFoundError(f"the Nextflow fixture is not at {CRISPR}")

    dry: list[float] = []

    def once(variant: str, r: int) -> tuple[float, float]:
        bench.instance("nf")
        start = time.perf_counter()
        report = import_run(CRISPR, dry_run=variant == "baseline")
        spent = time.perf_counter() - start
        assert report.tasks == 486 and not report.warnings, report.warnings
        ll.disconnect()
        if variant == "baseline":
            dry.append(spent)
        return spent, spent - dry[-1]  # recording: the import less its dry run

    figures = bench.rounds(once)
    whole = ", ".join(f"{v}: {figures.wall[v]:.2f} s" for v in VARIANTS)
    return figures, 486, f"import_run of 486 tasks (no files; {whole}), baseline dry_run"


def redun(bench: Bench) -> tuple[Figures, int, str]:
    import lakeline as ll
    from lakeline_redun.scheduler import LakelineScheduler
    from redun import Scheduler
    from redun.config import Config

    n = bench.args.redun_tasks
    bench.instance("redun")
    inside = [0.0]

    def timed(method: Callable[..., None]) -> Callable[..., None]:
        def run(self: Any, job: Any, *more: Any) -> None:
            start = time.perf_counter()
            try:
                method(self, job, *more)
            finally:
                inside[0] += time.perf_counter() - start

        return run

    class Timed(LakelineScheduler):  # lakeline's two hooks, timed
        _record_start = timed(LakelineScheduler._record_start)
        _record_end = timed(LakelineScheduler._record_end)

    def once(variant: str, r: int) -> tuple[float, float]:
        import capture_redun

        folder = bench.base / f"redun-{bench.db}-{variant}-{r}"
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
                scheduler = Timed(config=config, root=str(folder))
            scheduler.load()
            inside[0] = 0.0
            start = time.perf_counter()
            made = scheduler.run(capture_redun.many(n))
            spent = time.perf_counter() - start
        finally:
            os.chdir(cwd)
        assert len(made) == n
        return spent, 0.0 if variant == "baseline" else inside[0]

    figures = bench.rounds(once)
    recorded = ll.Run.filter(engine="redun", parent_id__isnull=False).count()
    expected = (bench.args.rounds + 1) * 2 * (n + 1)
    assert recorded == expected, (recorded, expected)
    ll.disconnect()
    return figures, n, "time in the scheduler's hooks, baseline redun's Scheduler"


def snakemake(bench: Bench) -> tuple[Figures, int, str]:
    import snakemake_overhead as smk

    n = bench.args.tasks
    name = bench.instance("smk")
    import lakeline as ll

    ll.disconnect()
    env = {**os.environ, "LAKELINE_INSTANCE": name}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    options = argparse.Namespace(cores=2, jobs=n, sleep=0.0)

    def once(variant: str, r: int) -> tuple[float, float]:
        folder = smk.workflow(bench.base / f"smk-{bench.db}-{variant}-{r}", n)
        plugin = variant != "baseline"
        if plugin:
            env["LAKELINE_CAPTURE_BATCH"] = variant
        wall, _cpu, spent = smk.run(folder, options, env, plugin=plugin)
        return wall, spent or 0.0

    figures = bench.rounds(once, warm=False)
    return figures, n + 1, "the plugin's recording time (+ the `all` job), --cores 2"


def prefect(bench: Bench) -> tuple[Figures, int, str]:
    import prefect_overhead as pf

    n = bench.args.tasks
    url = None if bench.server is None else bench.server.create_database(f"pf_{bench.db}")
    options = argparse.Namespace(tasks=n, repeats=bench.args.rounds)
    row = pf.measure(bench.db, url, bench.base, options)
    wall = {"baseline": median(row["without"])}
    inside = {"baseline": 0.0}
    for variant in VARIANTS:
        wall[variant] = median(row["with"][variant])
        inside[variant] = median(row["spent"][variant])
    cpu = "/".join(f"{median(row['cpu'][v]) / n * 1000:.2f}" for v in VARIANTS)
    how = f"time in the hooks and the flusher's flushes (its threads' CPU: {cpu} ms)"
    return Figures(wall, inside), n, how


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--redun-tasks", type=int, default=50, help="redun's own scheduler spends ~0.1 s a job"
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engine(s) {sorted(unknown)}; choose from {', '.join(ENGINES)}")
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
                before = load()
                print(f"[{db}] {engine}: load {before}", file=sys.stderr)
                spent, n, how = measure(bench)
                rows.append((engine, db, n, spent, how, before))
                print(f"[{db}] {engine}: {spent} load {load()}", file=sys.stderr)
    finally:
        if harness is not None:
            harness.__exit__(None, None, None)
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"capture overhead per task, ms (median of {args.rounds} rounds; budget <= 1 ms)")
    print(
        f"{'engine':<10} {'db':<9} {'tasks':>5} {'baseline':>9} {'plain':>7} {'(wall)':>8} "
        f"{'batched':>8} {'(wall)':>8}  {'load 1/5/15':<13}  measured"
    )
    for engine, db, n, figures, how, before in rows:
        wall = {k: v / n * 1000 for k, v in figures.wall.items()}
        own = {k: v / n * 1000 for k, v in figures.inside.items()}
        print(
            f"{engine:<10} {db:<9} {n:>5} {wall['baseline']:>9.2f} {own['off']:>7.2f} "
            f"{wall['off'] - wall['baseline']:>+8.2f} {own['on']:>8.2f} "
            f"{wall['on'] - wall['baseline']:>+8.2f}  {before:<13}  {how}"
        )
    print(
        "baseline: ms per task of the workflow without lakeline; plain / batched: ms per task "
        "spent recording (LAKELINE_CAPTURE_BATCH=off / on), (wall): the workflow's wall time "
        "per task less the baseline's (noisy where the engine's own cost per task is large)"
    )


if __name__ == "__main__":
    main()
