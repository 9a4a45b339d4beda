"""lakeline benchmark: prints figures next to DESIGN.md §8's budgets; asserts nothing.

    uv run python bench/run.py                      # full: both databases, 100k and 1M artifacts
    uv run python bench/run.py --quick              # smaller sizes, under a minute
    uv run python bench/run.py --db sqlite --sizes 100000 --profile /tmp/prof --explain

Each database is measured in its own worker process (this script with --worker), so its peak
RSS is its own and nothing leaks between the two. See bench/README.md for what each figure is.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure

DATABASES = {"sqlite": ("sqlite",), "postgres": ("postgresql",), "both": ("sqlite", "postgresql")}
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

# DESIGN.md §8, and the reference figures of LaminDB 2.12 measured on this machine.
IMPORT_BUDGET_MS = 150.0
BULK_BUDGET_PER_S = 3000.0
FILTER_BUDGET_MS = 2.0
SEARCH_BUDGET_MS = 50.0
LAMINDB_RSS_MB = 468.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--db", choices=sorted(DATABASES), default="both")
    parser.add_argument("--sizes", help="catalog sizes for the query figures (default 100k,1M)")
    parser.add_argument("--files", type=int, help="files for bulk registration (default 10k)")
    parser.add_argument("--large-mb", type=int, help="size of the large-file save (default 1024)")
    parser.add_argument("--queries", type=int, help="distinct queries per kind (default 50)")
    parser.add_argument("--df-rows", type=int, help="DataFrame rows (default 100k)")
    parser.add_argument("--import-runs", type=int, help="interpreter starts per figure (10)")
    parser.add_argument("--profile", type=Path, help="write cProfile .prof files here")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--tmp", type=Path, help="where instances and files go (default: $TMPDIR)")
    parser.add_argument("--worker", choices=("sqlite", "postgresql"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = sorted(
        {
            int(s.replace("_", ""))
            for s in (args.sizes or ("20000" if quick else "100000,1000000")).split(",")
        }
    )
    args.files = args.files or (1000 if quick else 10_000)
    args.large_mb = args.large_mb or (100 if quick else 1024)
    args.queries = args.queries or (20 if quick else 50)
    args.df_rows = args.df_rows or (10_000 if quick else 100_000)
    args.import_runs = args.import_runs or (5 if quick else 10)
    args.df_reps = 3 if quick else 5
    return args


# -- the worker: every database-bound figure for one database ------------------------------------


def bulk_locations(args: argparse.Namespace) -> dict[str, Path]:
    """Where bulk registration runs: tmpfs (lakeline's own cost) and disk (with the disk's)."""
    return {"tmpfs": Path("/dev/shm"), "disk": Path(args.tmp or tempfile.gettempdir())}


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run phases 2-5 against one database, in this (fresh) process."""
    db_kind: str = args.worker
    root = Path(tempfile.mkdtemp(prefix=f"lakeline-bench-{db_kind}-", dir=args.tmp))
    os.environ["LAKELINE_HOME"] = str(root / "home")
    scratch = [root]
    server = None
    try:
        import lakeline.instance as li

        if db_kind == "postgresql":
            from lakeline.testing_servers import PostgresServer

            server = PostgresServer(parent_dir="/dev/shm").start()
            log(f"[{db_kind}] PostgreSQL started on port {server.port}")

        def connect(name: str, storage: Path) -> Any:
            db = server.create_database(name) if server is not None else None
            return li.init(str(storage), db=db, name=name)

        out: dict[str, Any] = {"rss_mb": {}, "bulk": {}, "load_start": os.getloadavg()[0]}
        started = time.perf_counter()

        for where, parent in bulk_locations(args).items():
            if not parent.is_dir():
                log(f"[{db_kind}] no {parent}: bulk registration on {where} skipped")
                continue
            base = Path(tempfile.mkdtemp(prefix=f"lakeline-bench-{db_kind}-", dir=parent))
            scratch.append(base)
            log(f"[{db_kind}] bulk registration of {args.files:,} files on {where} ({base})")
            paths, seconds = measure.make_files(base / "files", args.files)
            connect(f"bench_bulk_{where}", base / "storage")
            figures = measure.bulk_register(
                paths, profile_dir=args.profile, tag=f"{db_kind}-{where}", log=log
            )
            figures["make_files_per_s"] = len(paths) / seconds
            figures["large"] = measure.large_file(base, args.large_mb, log=log)
            out["bulk"][where] = figures
            li.disconnect()
            shutil.rmtree(base, ignore_errors=True)
        out["rss_mb"]["after bulk"] = measure.peak_rss_mb()

        inst = connect("bench_query", root / "bench_query")
        out["server"] = _server_version(inst)
        out["queries"], out["populate_s"], out["plans"] = {}, {}, {}
        filled = 0
        for n in args.sizes:
            log(f"[{db_kind}] filling the catalog to {n:,} artifacts")
            out["populate_s"][str(n)] = measure.populate(inst, filled, n, log)
            filled = n
            measure.analyze(inst)
            log(f"[{db_kind}] {args.queries} queries of each kind at {n:,} artifacts")
            figures = measure.run_queries(n, args.queries, profile_dir=args.profile, tag=db_kind)
            out["queries"][str(n)] = figures
            for kind, fig in figures.items():
                log(f"  {kind:<14} median {fig['median_ms']:8.2f} ms  rows {fig['rows_median']}")
            if args.explain:
                out["plans"][str(n)] = measure.explain(inst, n)
        li.disconnect()
        out["rss_mb"]["after queries"] = measure.peak_rss_mb()

        log(f"[{db_kind}] DataFrame {args.df_rows:,} x 10")
        connect("bench_df", root / "bench_df")
        out["dataframe"] = measure.dataframes(args.df_rows, args.df_reps, root / "df", log)
        li.disconnect()
        out["rss_mb"]["after dataframe"] = out["rss_mb"]["peak"] = measure.peak_rss_mb()
        out["seconds"] = time.perf_counter() - started
        out["load_end"] = os.getloadavg()[0]
        return out
    finally:
        if server is not None:
            server.stop()
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)


def _server_version(inst: Any) -> str:
    if inst.dialect == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with inst.engine.connect() as conn:
        return f"PostgreSQL {conn.exec_driver_sql('SHOW server_version').scalar()}"


def run_worker(db_kind: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lakeline-bench-out-") as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, __file__, "--worker", db_kind, "--out", str(out)]
        argv += ["--sizes", ",".join(map(str, args.sizes)), "--files", str(args.files)]
        argv += ["--large-mb", str(args.large_mb)]
        argv += ["--queries", str(args.queries), "--df-rows", str(args.df_rows)]
        argv += ["--quick"] if args.quick else []
        argv += ["--explain"] if args.explain else []
        argv += ["--profile", str(args.profile)] if args.profile else []
        argv += ["--tmp", str(args.tmp)] if args.tmp else []
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            log(f"[{db_kind}] worker failed with exit code {proc.returncode}")
            return {"error": f"worker exit code {proc.returncode}"}
        return dict(json.loads(out.read_text()))


# -- the report --------------------------------------------------------------------------------


def _fmt_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:,.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def _per_s(value: float) -> str:
    return f"{value:,.0f} /s"


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


Getter = Callable[[dict[str, Any]], Any]
VALUE, MARK = 11, 5  # widths of a figure and of its ok/MISS mark


def _cell(figures: dict[str, Any], get: Getter, fmt: Callable[[Any], str], check: Any) -> str:
    try:
        value = get(figures)
    except (KeyError, TypeError):
        return f"{'-':>{VALUE}} {'':<{MARK}}"
    mark = "" if check is None else ("ok" if check(value) else "MISS")
    return f"{fmt(value):>{VALUE}} {mark:<{MARK}}"


class Table:
    """Rows of figures: a label, one cell per database (or one for all), the budget."""

    def __init__(self, columns: list[str], label_width: int = 54) -> None:
        self.columns = columns
        self.width = label_width
        self.lines: list[str] = []
        cells = " ".join(f"{c:>{VALUE}} {'':<{MARK}}" for c in columns)
        self.lines.append(f"{'':<{self.width}} {cells}  budget (DESIGN.md §8)")
        self.lines.append("-" * (len(self.lines[0]) + 12))

    def section(self, title: str) -> None:
        self.lines.append(title)

    def row(
        self,
        label: str,
        figures: list[dict[str, Any]],
        get: Getter,
        fmt: Callable[[Any], str],
        check: Any,
        budget: str,
    ) -> None:
        cells = " ".join(_cell(f, get, fmt, check) for f in figures)
        self.lines.append(f"  {label:<{self.width - 2}} {cells}  {budget}".rstrip())


QUERY_ROWS = (
    ("filter(key=k).first()", "key", FILTER_BUDGET_MS),
    ("filter(key__startswith=p).limit(20).all()", "prefix", FILTER_BUDGET_MS),
    ('filter(suffix=".csv", size__gt=N).limit(20).all()', "suffix_size", FILTER_BUDGET_MS),
    ("filter(key__startswith=p).count()  (~8 matches)", "count", FILTER_BUDGET_MS),
    ("search(rare word).all()  (limit 20)", "search_rare", SEARCH_BUDGET_MS),
    ("search(common word).all()  (limit 20)", "search_common", SEARCH_BUDGET_MS),
)


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    env = results["env"]
    dbs = [db for db in results["dbs"] if "error" not in results["dbs"][db]]
    per_db = [results["dbs"][db] for db in dbs]
    servers = ", ".join(f.get("server", db) for db, f in zip(dbs, per_db, strict=True))
    loads = ", ".join(
        f"{LABELS[db]} {f['load_start']:.1f}->{f['load_end']:.1f}"
        for db, f in zip(dbs, per_db, strict=True)
    )
    head = [
        f"lakeline benchmark{' (--quick)' if args.quick else ''}: Python {env['python']}, "
        f"{servers or 'no database'}, {env['cpus']} CPUs",
        f"load average (1 min) during the runs: {loads or '-'}; figures are medians;",
        "ok / MISS compare a figure with its budget. Nothing here is asserted.",
        "",
    ]

    imp = results["import"]
    t = Table(["time"])
    t.section("import, fresh interpreter (database independent)")
    rows: list[tuple[str, str, Any, str]] = [
        ('python -c "pass"  (interpreter baseline)', "pass", None, "-"),
        (
            'python -c "import lakeline"',
            "import",
            lambda v: v <= IMPORT_BUDGET_MS,
            f"<= {IMPORT_BUDGET_MS:.0f} ms  (LaminDB: 800 ms)",
        ),
        (
            'python -c "import lakeline, lakeline.models"',
            "import_models",
            None,
            "-  (first real use: SQLAlchemy + models)",
        ),
        (
            '  "import lakeline", no bytecode cache',
            "import_cold",
            None,
            "-  (first run after install)",
        ),
        ('  "import lakeline, lakeline.models", no cache', "import_models_cold", None, "-"),
    ]
    for label, name, check, budget in rows:
        t.row(label, [imp], lambda f, name=name: f[name]["median_ms"], _fmt_ms, check, budget)
    for name, key in (("import lakeline", "heaviest"), ("+ lakeline.models", "heaviest_models")):
        heavy = ", ".join(f"{pkg} {ms:.0f}" for pkg, ms in imp[key])
        t.section(f"  heaviest under `{name}` (ms, cumulative): {heavy}")
    lines = head + t.lines + [""]
    if not dbs:
        return "\n".join([*lines, "no database figures (every worker failed)"])

    t = Table([LABELS[db] for db in dbs])
    for where, parent in bulk_locations(args).items():
        kind = "tmpfs: lakeline's own cost" if where == "tmpfs" else "disk: with this disk's cost"
        t.section(
            f"bulk registration, {args.files:,} files of ~100 B, storage on {parent} ({kind})"
        )
        t.row(
            "ll.save([...]) new: hash + copy + insert",
            per_db,
            lambda f, w=where: f["bulk"][w]["first"]["per_s"],
            _per_s,
            lambda v: v >= BULK_BUDGET_PER_S,
            f">= {BULK_BUDGET_PER_S:,.0f} /s  (LaminDB: 156 /s)",
        )
        t.row(
            "ll.save([...]) again, same files (idempotent)",
            per_db,
            lambda f, w=where: f["bulk"][w]["again"]["per_s"],
            _per_s,
            lambda v: v >= BULK_BUDGET_PER_S,
            f">= {BULK_BUDGET_PER_S:,.0f} /s  (same bar)",
        )
        t.row(
            "  of the new save: Artifact(...) construction",
            per_db,
            lambda f, w=where: f["bulk"][w]["first"]["construct_seconds"] * 1000,
            _fmt_ms,
            None,
            "-",
        )
        t.row(
            "  baseline: writing the files themselves (pathlib)",
            per_db,
            lambda f, w=where: f["bulk"][w]["make_files_per_s"],
            _per_s,
            None,
            "-  (what this filesystem allows)",
        )
        t.row(
            f"Artifact(file of {args.large_mb:,} MiB).save(): hash while copying",
            per_db,
            lambda f, w=where: f["bulk"][w]["large"]["mb_per_s"],
            lambda v: f"{v:,.0f} MiB/s",
            None,
            "-",
        )

    for n in args.sizes:
        t.section(f"queries at {n:,} artifacts, median of {args.queries} distinct queries")
        where = "" if n >= 1_000_000 else " at 1M"
        for label, kind, budget_ms in QUERY_ROWS:
            t.row(
                label,
                per_db,
                lambda f, n=n, kind=kind: f["queries"][str(n)][kind]["median_ms"],
                _fmt_ms,
                lambda v, b=budget_ms: v <= b,
                f"<= {budget_ms:g} ms{where}",
            )

    t.section(f"DataFrame {args.df_rows:,} rows x 10 columns as parquet, median of {args.df_reps}")
    for label, name in (
        ("Artifact.from_dataframe(df, key=...).save()", "save"),
        ("  plain df.to_parquet(path)", "to_parquet"),
        ("artifact.load()", "load"),
        ("  plain pd.read_parquet(path)", "read_parquet"),
    ):
        t.row(
            label,
            per_db,
            lambda f, name=name: f["dataframe"][name]["median_ms"],
            _fmt_ms,
            None,
            "-",
        )

    t.section("memory")
    t.row(
        "peak RSS of the benchmark (worker) process",
        per_db,
        lambda f: f["rss_mb"]["peak"],
        _mb,
        None,
        f"-  (LaminDB: {LAMINDB_RSS_MB:.0f} MB)",
    )
    for phase in ("after bulk", "after queries"):
        t.row(f"  peak {phase}", per_db, lambda f, p=phase: f["rss_mb"][p], _mb, None, "")
    lines += t.lines

    lines += ["", "details: query latency median / p90 / max in ms (rows returned, median)"]
    for db, figures in zip(dbs, per_db, strict=True):
        for n in args.sizes:
            parts = []
            for _, kind, _ in QUERY_ROWS:
                fig = figures["queries"][str(n)][kind]
                parts.append(
                    f"{kind} {fig['median_ms']:.2f}/{fig['p90_ms']:.2f}/{fig['max_ms']:.1f}"
                    f" ({fig['rows_median']:g})"
                )
            lines.append(f"  {LABELS[db]} {n:,}: " + ", ".join(parts[:3]))
            lines.append("      " + ", ".join(parts[3:]))
            fill = figures["populate_s"][str(n)]
            lines.append(f"      (catalog filled to {n:,} by direct inserts, {fill:.0f} s)")
        lines.append(f"  {LABELS[db]} worker wall time: {figures['seconds']:.0f} s")
    for db, figures in results["dbs"].items():
        if "error" in figures:
            lines.append(f"  {LABELS[db]}: no figures ({figures['error']})")
    if args.explain:
        for db, figures in zip(dbs, per_db, strict=True):
            for n, plans in figures["plans"].items():
                for kind, plan in plans.items():
                    lines.append(f"\n-- plan: {LABELS[db]}, {int(n):,} artifacts, {kind}\n{plan}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        figures = worker(args)
        assert args.out is not None
        args.out.write_text(json.dumps(figures, indent=2))
        return 0

    if args.profile:
        args.profile = args.profile.resolve()
    with tempfile.TemporaryDirectory(prefix="lakeline-bench-home-") as scratch:
        # Children get a private bytecode cache: this shell may set PYTHONDONTWRITEBYTECODE
        # on a venv without .pyc files, which would make every start compile from source.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "pycache-warm")
        env["LAKELINE_HOME"] = str(Path(scratch) / "home")
        log(f"import time: {args.import_runs} interpreter starts per figure")
        results: dict[str, Any] = {
            "env": measure.environment(),
            "import": measure.import_times(args.import_runs, env, Path(scratch)),
            "dbs": {},
        }
        for db_kind in DATABASES[args.db]:
            if db_kind == "postgresql":
                from lakeline.testing_servers import PostgresServer

                ok, reason = PostgresServer.available()
                if not ok:
                    results["dbs"][db_kind] = {"error": f"PostgreSQL unavailable: {reason}"}
                    continue
            results["dbs"][db_kind] = run_worker(db_kind, args, env)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
