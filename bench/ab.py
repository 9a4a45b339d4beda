"""Save figures of two checkouts, alternated and best of N: what a change to saving costs.

    git archive main core/src | tar -x -C /tmp/before
    uv run python bench/ab.py --before /tmp/before/core/src --rounds 3

Each round runs, for each database (`--db`), place (tmpfs and disk) and checkout, a fresh
process that makes an instance there and times `ll.save` of `--files` new small files, the same
files again (idempotent) and `Artifact(file).save()` of a `--large-mb` MiB file
(bench/measure.py). PostgreSQL: one throwaway cluster on /dev/shm, a new database per process.
The checkout under test is this one; `--before` is put first on PYTHONPATH for the other. The
best of the rounds is printed: on a shared machine the best is the figure least disturbed by
others. Beside it, the process CPU per small file (user + system of the saving process, not
the database server's), which the machine's load disturbs far less than wall time, and on
PostgreSQL the server's CPU per small file (every process of the throwaway cluster, an
autovacuum worker included; a backend that ends during a phase takes its CPU with it: a round
far below the others is that).
`--versions` adds a phase: every small file rewritten (new bytes) and saved again under its key,
each record a new version of its key (a pipeline re-run that rewrites its outputs); with
`--large-mb 0` the large file is skipped.
`--pipeline on|off` forces this checkout's choice of the two-thread bulk save
(artifacts/pipeline.py, PostgreSQL only; by default taken below a load of twice the CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one(where: str, files: int, mb: int, db: str | None, versions: bool = False) -> None:
    """In a fresh process: the figures, as one JSON line."""
    sys.path.insert(0, str(HERE))
    import measure

    base = Path(tempfile.mkdtemp(prefix="lakeline-ab-", dir=where))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    os.environ["LAKELINE_CACHE_DIR"] = str(base / "cache")
    try:
        import lakeline.instance as li

        forced = os.environ.get("AB_PIPELINE", "auto")
        if forced != "auto":
            try:
                from lakeline.artifacts import pipeline
            except ImportError:  # a checkout without it
                pass
            else:
                pipeline.spare_core = lambda: forced == "on"  # type: ignore[assignment]

        li.init(str(base / "storage"), name="ab", db=db)
        paths, _ = measure.make_files(base / "files", files)
        cpu: dict[str, float] = {}
        postmaster = int(os.environ.get("AB_POSTMASTER", "0")) if db is not None else 0
        served = (lambda: _server_cpu(postmaster)) if postmaster else None
        bulk = measure.bulk_register(
            paths,
            profile_dir=None,
            tag="ab",
            log=lambda _: None,
            cpu=cpu,
            server_cpu=served,
            worker_cpu=lambda: _children_cpu(os.getpid()),
        )
        figures = {
            "new /s": files / bulk["first"]["seconds"],
            "again /s": files / bulk["again"]["seconds"],
            "new cpu us": 1e6 * cpu["first"] / files,
            "again cpu us": 1e6 * cpu["again"] / files,
            "new worker us": 1e6 * cpu["first worker"] / files,
            "again worker us": 1e6 * cpu["again worker"] / files,
        }
        if served is not None:
            figures["new server us"] = 1e6 * cpu["first server"] / files
            figures["again server us"] = 1e6 * cpu["again server"] / files
        if versions:
            figures.update(_versions(paths, served))
        if mb:
            large = measure.large_file(base, mb, log=lambda _: None)
            figures["large MiB/s"] = large["mb_per_s"]
        print(json.dumps(figures))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _versions(paths: list[Path], served: Callable[[], float] | None) -> dict[str, float]:
    """Every file rewritten (new bytes), then `ll.save` of them under their keys (as
    measure.bulk_register names them): a new version each. Its figures."""
    import lakeline as ll

    for path in paths:
        path.write_text(path.read_text()[::-1])  # distinct still, and not a previous version
    keys = [f"raw/bench/{p.parent.name}/{p.name}" for p in paths]
    server = served() if served is not None else 0.0
    worker = _children_cpu(os.getpid())
    used = _cpu()
    start = time.perf_counter()
    ll.save([ll.Artifact(str(p), key=k) for p, k in zip(paths, keys, strict=True)])
    seconds = time.perf_counter() - start
    n = len(paths)
    figures = {
        "version /s": n / seconds,
        "version cpu us": 1e6 * (_cpu() - used) / n,
        "version worker us": 1e6 * (_children_cpu(os.getpid()) - worker) / n,
    }
    if served is not None:
        figures["version server us"] = 1e6 * (served() - server) / n
    latest = ll.Artifact.filter(key__startswith="raw/bench/", is_latest=True).count()
    if latest != n:
        raise SystemExit(f"{latest} latest records for {n} keys")
    return figures


def _server_cpu(postmaster: int) -> float:
    """CPU seconds so far of the PostgreSQL server's processes (the postmaster's children:
    every backend, the WAL writer...), from their schedstat (ns); a process that ended since
    is not counted (this run's backends live as long as its engine)."""
    return _children_cpu(postmaster)


def _children_cpu(parent: int) -> float:
    """CPU seconds so far of the living children of process `parent` (their schedstat)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            with open(f"/proc/{pid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other core/src")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="the disk place")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--places", default="tmpfs,disk", help="tmpfs, disk or both")
    parser.add_argument("--pipeline", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--versions", action="store_true", help="time a save of new versions")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        where, files, mb, url = args.one
        one(where, int(files), int(mb), None if url == "-" else url, args.versions)
        return
    places = {"tmpfs": "/dev/shm", "disk": args.tmp}
    places = {p: places[p] for p in args.places.split(",")}
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    server = None
    if "postgres" in dbs:
        sys.path.insert(0, str(HERE))
        import measure

        started = measure.start_postgres("ab")
        if isinstance(started, str):
            raise SystemExit(f"no PostgreSQL: {started}")
        server = started[0]
        with open(server.data_dir / "postmaster.pid") as f:
            os.environ["AB_POSTMASTER"] = f.readline().strip()
    best: dict[tuple[str, str, str], dict[str, float]] = {}
    runs = 0
    try:
        for _ in range(args.rounds):
            for db in dbs:
                for place, where in places.items():
                    for label in ("before", "after"):
                        runs += 1
                        url = server.create_database(f"ab{runs}") if db == "postgres" else "-"
                        figures = _run(args, label, where, url)
                        kept = best.setdefault((db, place, label), figures)
                        for name, value in figures.items():
                            better = min if name.endswith("us") else max
                            kept[name] = better(kept[name], value)
                        shown = {k: round(v) for k, v in figures.items()}
                        print(db, place, label, shown, file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
    large = f", one {args.large_mb:,} MiB file" if args.large_mb else ""
    print(f"best of {args.rounds}: {args.files:,} small files{large}")
    for db, place, label in best:
        row = "  ".join(f"{k} {v:>6,.0f}" for k, v in best[(db, place, label)].items())
        print(f"{db:<8} {place:<6} {label:<7} {row}")


def _run(args: argparse.Namespace, label: str, where: str, url: str) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["AB_PIPELINE"] = args.pipeline
    if label == "before":
        env["PYTHONPATH"] = str(args.before)
    argv = [sys.executable, __file__, "--before", str(args.before)]
    argv += ["--versions"] if args.versions else []
    argv += ["--one", where, str(args.files), str(args.large_mb), url]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


if __name__ == "__main__":
    main()
