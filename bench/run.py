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

import measure  # noqa: E402

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
        {int(s.replace("_", "")) for s in (args.sizes or ("20000" if quick else "100000,1000000")).split(",")}
    )
    args.files = args.files or (1000 if quick else 10_000)
    args.queries = args.queries or (20 if quick else 50)
    args.df_rows = args.df_rows or (10_000 if quick else 100_000)
    args.import_runs = args.import_runs or (5 if quick else 10)
    args.df_reps = 3 if quick else 5
    return args


# -- the worker: every database-bound figure for one database ------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run phases 2-5 against one database, in this (fresh) process."""
    db_kind: str = args.worker
    root = Path(tempfile.mkdtemp(prefix=f"lakeline-bench-{db_kind}-", dir=args.tmp))
    os.environ["LAKELINE_HOME"] = str(root / "home")
    server = None
    try:
        import lakeline.instance as li

        if db_kind == "postgresql":
            from lakeline.testing_servers import PostgresServer

            server = PostgresServer(parent_dir="/dev/shm").start()
            log(f"[{db_kind}] PostgreSQL started on port {server.port}")

        def instance(name: str) -> Any:
            db = server.create_database(name) if server is not None else None
            return li.init(str(root / name), db=db, name=name)

        out: dict[str, Any] = {"rss_mb": {}}
        started = time.perf_counter()

        log(f"[{db_kind}] bulk registration of {args.files:,} files")
        paths = measure.make_files(root / "files", args.files)
        instance("bench_bulk")
        out["bulk"] = measure.bulk_register(paths, profile_dir=args.profile, tag=db_kind, log=log)
        li.disconnect()
        out["rss_mb"]["after bulk"] = measure.peak_rss_mb()

        inst = instance("bench_query")
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
        instance("bench_df")
        out["dataframe"] = measure.dataframes(args.df_rows, args.df_reps, root / "df", log)
        li.disconnect()
        out["rss_mb"]["after dataframe"] = out["rss_mb"]["peak"] = measure.peak_rss_mb()
        out["seconds"] = time.perf_counter() - started
        return out
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


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


def _mark(ok: bool | None) -> str:
    return {True: " ok", False: " MISS", None: ""}[ok]


Getter = Callable[[dict[str, Any]], Any]


def _cell(figures: dict[str, Any], get: Getter, fmt: Callable[[Any], str], check: Any) -> str:
    try:
        value = get(figures)
    except (KeyError, TypeError):
        return "-"
    return fmt(value) + _mark(check(value) if check else None)


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines: list[str] = []
    env = results["env"]
    dbs = [db for db in results["dbs"] if "error" not in results["dbs"][db]]
    servers = ", ".join(results["dbs"][db].get("server", db) for db in dbs)
    lines.append(
        f"lakeline benchmark{' (--quick)' if args.quick else ''}: Python {env['python']}, "
        f"{servers}, {env['cpus']} CPUs"
    )
    lines.append("figures are medians; 'ok' / 'MISS' compare with DESIGN.md §8's budget")
    lines.append("")

    imp = results["import"]
    w = (52, 14, 44)
    lines.append(f"{'figure (database independent)':<{w[0]}} {'time':>{w[1]}}   budget")
    lines.append("-" * (w[0] + w[1] + w[2] + 4))
    rows = [
        ('python -c "pass"  (interpreter baseline)', imp["pass"]["median_ms"], None, "-"),
        (
            'python -c "import lakeline"',
            imp["import"]["median_ms"],
            imp["import"]["median_ms"] <= IMPORT_BUDGET_MS,
            f"<= {IMPORT_BUDGET_MS:.0f} ms  (LaminDB: 800 ms)",
        ),
        (
            'python -c "import lakeline, lakeline.models"',
            imp["import_models"]["median_ms"],
            None,
            "- (first real use: SQLAlchemy + models)",
        ),
    ]
    for label, ms, ok, budget in rows:
        lines.append(f"{label:<{w[0]}} {_fmt_ms(ms) + _mark(ok):>{w[1]}}   {budget}")
    heavy = ", ".join(f"{name} {ms:.0f}" for name, ms in imp["heaviest"][:5])
    lines.append(f"  heaviest imports under `import lakeline` (ms, -X importtime): {heavy}")
    lines.append("")

    if not dbs:
        lines.append("no database figures (every worker failed)")
        return "\n".join(lines)
    col = 16
    header = f"{'figure':<{w[0]}} " + " ".join(f"{LABELS[db]:>{col}}" for db in dbs)
    lines.append(header + "   budget")
    lines.append("-" * (len(header) + 40))

    def section(title: str) -> None:
        lines.append(title)

    def row(label: str, get: Getter, fmt: Callable[[Any], str], check: Any, budget: str) -> None:
        cells = " ".join(f"{_cell(results['dbs'][db], get, fmt, check):>{col}}" for db in dbs)
        lines.append(f"  {label:<{w[0] - 2}} {cells}   {budget}")

    def per_s(v: float) -> str:
        return f"{v:,.0f} /s"

    section(f"bulk registration, {args.files:,} small files (~100 B), fresh instance")
    row(
        "ll.save([...]) new: hash + copy + insert",
        lambda f: f["bulk"]["first"]["per_s"],
        per_s,
        lambda v: v >= BULK_BUDGET_PER_S,
        f">= {BULK_BUDGET_PER_S:,.0f} /s  (LaminDB: 156 /s)",
    )
    row(
        "ll.save([...]) again: same files (idempotent)",
        lambda f: f["bulk"]["again"]["per_s"],
        per_s,
        lambda v: v >= BULK_BUDGET_PER_S,
        f">= {BULK_BUDGET_PER_S:,.0f} /s  (same bar as new)",
    )
    row(
        "  of which Artifact(...) construction",
        lambda f: f["bulk"]["first"]["construct_seconds"] * 1000,
        _fmt_ms,
        None,
        "-",
    )

    queries = [
        ("filter(key=k).first()", "key", FILTER_BUDGET_MS),
        ("filter(key__startswith=p).limit(20).all()", "prefix", FILTER_BUDGET_MS),
        ('filter(suffix=".csv", size__gt=N).limit(20).all()', "suffix_size", FILTER_BUDGET_MS),
        ("filter(key__startswith=p).count()  (~8 rows)", "count", FILTER_BUDGET_MS),
        ("search(rare word).all()  (limit 20)", "search_rare", SEARCH_BUDGET_MS),
        ("search(common word).all()  (limit 20)", "search_common", SEARCH_BUDGET_MS),
    ]
    for n in args.sizes:
        section(f"queries at {n:,} artifacts, median of {args.queries} distinct queries")
        for label, kind, budget_ms in queries:
            where = "" if n >= 1_000_000 else " at 1M"
            row(
                label,
                lambda f, n=n, kind=kind: f["queries"][str(n)][kind]["median_ms"],
                _fmt_ms,
                lambda v, b=budget_ms: v <= b,
                f"<= {budget_ms:g} ms{where}",
            )

    section(f"DataFrame {args.df_rows:,} rows x 10 columns, parquet, median of {args.df_reps}")
    df_rows = [
        ("Artifact.from_dataframe(df).save()", "save"),
        ("  plain df.to_parquet(path)", "to_parquet"),
        ("artifact.load()", "load"),
        ("  plain pd.read_parquet(path)", "read_parquet"),
    ]
    for label, name in df_rows:
        row(
            label,
            lambda f, name=name: f["dataframe"][name]["median_ms"],
            _fmt_ms,
            None,
            "- (compare with plain pandas)",
        )
    section("memory")
    row(
        "peak RSS of the benchmark process",
        lambda f: f["rss_mb"]["peak"],
        lambda v: f"{v:,.0f} MB",
        None,
        f"- (LaminDB: {LAMINDB_RSS_MB:.0f} MB)",
    )
    for phase in ("after bulk", "after queries"):
        row(
            f"  peak RSS {phase}",
            lambda f, phase=phase: f["rss_mb"][phase],
            lambda v: f"{v:,.0f} MB",
            None,
            "",
        )

    lines.append("")
    lines.append("details: query latency median / p90 / max in ms (rows returned, median)")
    for db in dbs:
        figures = results["dbs"][db]
        for n in args.sizes:
            parts = []
            for _, kind, _ in queries:
                fig = figures["queries"][str(n)][kind]
                parts.append(
                    f"{kind} {fig['median_ms']:.2f}/{fig['p90_ms']:.2f}/{fig['max_ms']:.1f}"
                    f" ({fig['rows_median']:g})"
                )
            populate_s = figures["populate_s"][str(n)]
            lines.append(f"  {LABELS[db]} {n:,}: " + ", ".join(parts))
            lines.append(f"    (catalog filled up to {n:,} by direct inserts in {populate_s:.0f} s)")
        lines.append(f"  {LABELS[db]} worker wall time: {figures['seconds']:.0f} s")
    for db, error in ((db, results["dbs"][db].get("error")) for db in results["dbs"]):
        if error:
            lines.append(f"  {LABELS[db]}: no figures ({error})")
    if args.explain:
        for db in dbs:
            for n, plans in results["dbs"][db]["plans"].items():
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
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="lakeline-bench-home-") as home:
        env["LAKELINE_HOME"] = home
        log(f"import time: {args.import_runs} interpreter starts per figure")
        results: dict[str, Any] = {
            "env": measure.environment(),
            "import": measure.import_times(args.import_runs, env),
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
