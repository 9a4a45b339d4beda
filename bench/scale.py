"""Catalogs of 10M artifacts and 1M runs, on disk, on SQLite and PostgreSQL: fill rates,
DESIGN §8's query figures at each size, and sizes on disk per million rows.

    uv run --frozen python bench/scale.py --db sqlite --sizes 100000 --keep /tmp/scale-try
    nohup uv run --frozen python bench/scale.py --db postgres --sizes 1000000,3000000,10000000 \\
        --keep /tmp/lakeline-scale-pg --json /tmp/scale-pg.json > /tmp/scale-pg.log 2>&1 &
    uv run --frozen python bench/scale.py --db postgres --reuse /tmp/lakeline-scale-pg --explain
    uv run --frozen python bench/scale.py --report /tmp/scale-sqlite.json /tmp/scale-pg.json

The catalog is filled to each size in turn (smallest first) and measured there; `--keep DIR`
keeps it (SQLite file, the PostgreSQL cluster, LAKELINE_HOME), and `--reuse DIR` measures an
existing fill again (and tops it up when a larger size is asked for) without refilling. Rows
go in through lakeline's own bulk paths inside the instance's write session, 20k artifacts
(2k runs) per transaction: `lakeline.db.rows.insert_rows` for runs and artifacts (what
`ll.save` uses: SQLite multi-row INSERT ... VALUES, PostgreSQL COPY) and
`insert_many` for run inputs, feature values and label links; every trigger (search index,
audit log) fires as for a user's save. What the rows are: `bench/scale_fill.py`'s docstring.
Sizes are multiples of 10,000: one artifact in 5 is produced by a run, 1 run per 10
artifacts, ~3 lineage edges per run, 1 artifact in 10 annotated (3 feature values, a label).

PostgreSQL: a cluster of the installed server (15) in `DIR/pg` (a disk, never /dev/shm),
with the durable defaults (fsync, synchronous_commit and full_page_writes on, the default
planner costs) and shared_buffers=1GB, max_wal_size=4GB, checkpoint_timeout=15min,
maintenance_work_mem=256MB; `VACUUM ANALYZE` after each fill (what autovacuum reaches).
SQLite: lakeline's own connection settings (WAL); no ANALYZE, as lakeline never runs it.

Each query kind runs once to warm up, then for each of `--queries` distinct parameters 3
times (once when slower than 100 ms) and its best time counts; the figures are the median
and p90 over the parameters, in ms, at the Python API. The UI figures are time to first byte
of a real `lakeline ui`. Prints figures only; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_fill
import scale_measure


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_db(db: str, keep: Path, reuse: bool, args: argparse.Namespace) -> dict[str, Any]:
    import lakeline.instance as li

    keep.mkdir(parents=True, exist_ok=True)
    keep.chmod(0o755)
    state = scale_fill.load_state(keep, db)
    if reuse and not state["artifacts"]:
        raise SystemExit(
            f"--reuse {keep}: no {db} fill there (no {scale_fill.state_file(keep, db)})"
        )
    if not reuse and state["artifacts"]:
        raise SystemExit(
            f"--keep {keep} already holds a {db} fill of {state['artifacts']:,}: "
            "--reuse it, or pick another folder"
        )
    instance, server = scale_fill.open_instance(db, keep, log, existing=reuse)
    out: dict[str, Any] = {"keep": str(keep), "fills": state["fills"], "sizes": {}}
    try:
        for size in args.sizes:
            if size < state["artifacts"]:
                log(f"[{db}] {size:,} < the {state['artifacts']:,} filled: skipped")
                continue
            if size > state["artifacts"]:
                log(f"[{db}] filling {state['artifacts']:,} -> {size:,} artifacts")

                def committed(n: int) -> None:
                    state["artifacts"], state["analyzed"] = n, False
                    scale_fill.save_state(keep, db, state)

                figures = scale_fill.fill(instance, state["artifacts"], size, log, committed)
                state["fills"].append(figures)
                state["analyzed"] = True
                scale_fill.save_state(keep, db, state)
            if not state.get("analyzed", True):  # a fill stopped midway: as after a fill
                scale_fill.analyze(instance)
                state["analyzed"] = True
                scale_fill.save_state(keep, db, state)
            if args.fill_only:
                continue
            if args.plans_only:
                for kind, plan in scale_measure.explain(instance, size).items():
                    print(f"--- {db} {size:,} {kind}\n{plan}")
                continue
            log(f"[{db}] measuring at {size:,} artifacts")
            figures = scale_measure.run_all(
                instance, instance.name, size, args.queries, log, only=args.only
            )
            if args.explain:
                figures["plans"] = scale_measure.explain(instance, size)
                for kind, plan in figures["plans"].items():
                    log(f"--- {db} {size:,} {kind}\n{plan}")
            out["sizes"][str(size)] = figures
            _write(args.json, {db: out}, merge=True)
    finally:
        li.disconnect()
        if server is not None:
            server.stop()
    return out


def _write(path: str | None, results: dict[str, Any], *, merge: bool) -> None:
    if not path:
        return
    target = Path(path)
    old = json.loads(target.read_text()) if merge and target.exists() else {}
    for db, result in results.items():
        sizes = {**old.get(db, {}).get("sizes", {}), **result["sizes"]}
        old[db] = {**result, "sizes": sizes}
    target.write_text(json.dumps(old, indent=1, default=str))


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def report(results: dict[str, Any]) -> None:
    """The tables: queries per size and database (median / p90 ms), growth from the
    smallest to the largest size, fill rates, sizes on disk per million rows."""
    dbs = [db for db in results if results[db].get("sizes")]
    sizes = sorted({int(s) for db in dbs for s in results[db]["sizes"]})
    cols = [(db, s) for db in dbs for s in sizes if str(s) in results[db]["sizes"]]
    print("\nmedian / p90 ms at the Python API (UI: time to first byte)")
    print(
        f"{'query':<22}"
        + "".join(f"{db[:6] + ' ' + f'{s / 1e6:g}M':>20}" for db, s in cols)
        + "".join(f"{'x ' + db[:6]:>10}" for db in dbs)
    )
    kinds: list[str] = []
    for db in dbs:
        for at in results[db]["sizes"].values():
            for kind in [*at.get("queries", {}), *at.get("ui", {})]:
                kinds += [] if kind in kinds else [kind]
    for kind in kinds:
        cells, ratios = [], []
        for db, s in cols:
            fig = _figure(results[db]["sizes"][str(s)], kind)
            cells.append(
                f"{fig['median_ms']:>10.2f} / {fig['p90_ms']:<7.1f}" if fig else f"{'-':>20}"
            )
        for db in dbs:
            have = sorted(int(s) for s in results[db]["sizes"])
            a = _figure(results[db]["sizes"][str(have[0])], kind)
            b = _figure(results[db]["sizes"][str(have[-1])], kind)
            ratios.append(
                f"{b['median_ms'] / a['median_ms']:>10.2f}"
                if a and b and len(have) > 1
                else f"{'-':>10}"
            )
        print(f"{kind:<22}" + "".join(cells) + "".join(ratios))
    for db in dbs:
        print(f"\n{db}: fills")
        for fill in results[db]["fills"]:
            rates = ", ".join(
                f"{t} {v['rows']:,} rows {v['rows_per_s']:,.0f}/s"
                for t, v in fill["tables"].items()
            )
            print(
                f"  {fill['from']:,} -> {fill['to']:,}: {fill['seconds']:,.0f} s "
                f"({fill['artifacts_per_s']:,.0f} artifacts/s; load {fill['load_avg_min']:.1f}-"
                f"{fill['load_avg_max']:.1f}); {rates}; analyze {fill['analyze_seconds']:.0f} s"
            )
        for s in sizes:
            fig = results[db]["sizes"].get(str(s))
            if not fig or "disk" not in fig:  # --only: no sizes measured
                continue
            disk, counts = fig["disk"], fig["counts"]
            per_m = disk["database"] / (counts["artifacts"] / 1e6)
            print(
                f"  at {s:,}: database {_mb(disk['database'])} ({_mb(per_m)} per million "
                f"artifacts); load {fig['load_avg_start']:.1f} -> {fig['load_avg_end']:.1f}; "
                f"rows {counts}"
            )
            for table, size in list(disk.get("tables", {}).items())[:10]:
                rows = counts.get(table)
                each = f", {_mb(size / (rows / 1e6))} per million rows" if rows else ""
                print(f"    {table:<28} {_mb(size):>10}{each}")


def _figure(at: dict[str, Any], kind: str) -> dict[str, Any] | None:
    fig = at.get("queries", {}).get(kind) or at.get("ui", {}).get(kind)
    return fig if fig and "median_ms" in fig else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--sizes", default="1000000,10000000")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--keep", help="fill a new catalog here (default /tmp/lakeline-scale)")
    where.add_argument("--reuse", help="measure (and top up) the catalog kept here")
    parser.add_argument("--queries", type=int, default=20, help="distinct parameters per kind")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--json", help="write (merge) every figure into this file")
    parser.add_argument("--fill-only", action="store_true", help="fill, measure nothing")
    parser.add_argument("--plans-only", action="store_true", help="print the plans, no timing")
    parser.add_argument(
        "--only",
        help="time only these query kinds (comma-separated, e.g. search_rare,search_common,"
        "search_rare_exhaustive,search_common_exhaustive); no UI pages, counts or sizes",
    )
    parser.add_argument("--report", nargs="+", help="print the tables of these --json files")
    parser.add_argument("--delete", action="store_true", help="remove the folder at the end")
    args = parser.parse_args(argv)
    if args.report:
        merged: dict[str, Any] = {}
        for path in args.report:
            merged.update(json.loads(Path(path).read_text()))
        report(merged)
        return
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    keep = Path(args.reuse or args.keep or "/tmp/lakeline-scale")
    dbs = {"sqlite": ["sqlite"], "postgres": ["postgresql"]}.get(args.db, ["sqlite", "postgresql"])
    results = {db: bench_db(db, keep, bool(args.reuse), args) for db in dbs}
    if args.delete:
        shutil.rmtree(keep, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    main()
