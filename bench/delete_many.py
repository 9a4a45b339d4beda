"""Deleting many artifacts that runs reference (report, environment: ON DELETE SET NULL).

    uv run python bench/delete_many.py [--db sqlite|postgres|both] [--n 10000] [--rounds 3]

Fills `--n` artifacts and `--n` runs (every 10th run names one as its report, every 10th + 5
one as its environment) in SQL, then per round, each in a transaction rolled back after:
one `DELETE` of all of them ("bulk"), and one `DELETE` a row with a bound id ("each", the
statement a loop of `Artifact.delete()` sends, without its Python). Prints deletes/s (wall) and
CPU a row:
PostgreSQL's backend (schedstat), SQLite's this thread (in process). Checks each time that
exactly the runs naming a deleted artifact lost that reference and nothing else changed.

On PostgreSQL before migration 0021 a row cost ~0.9 ms: PostgreSQL 15 reads a table's stored
generated expressions (`stringToNode` of pg_attrdef.adbin, ~167 kB for runs' search_vector
then) at the start of every UPDATE statement, and ON DELETE SET NULL runs one UPDATE of runs
per deleted row and constraint. 0021 put the expression in a function (~55 us a row since).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from measure import start_postgres

COLS = (
    "key, description, suffix, kind, otype, size, hash, hash_type, n_files, n_observations, "
    "storage_id, store_key, in_place, run_id, uid, created_at, created_by_id, stem, version, "
    "is_latest, available, store_tag"
)
REFS = "SELECT count(report_id), count(environment_id), count(*) FROM runs"


def _series(pg: bool, n: int) -> str:
    if pg:
        return f"generate_series(1, {n}) AS s(g)"
    return (
        f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) "
        "SELECT g FROM s) AS s"
    )


def _fill(instance: Any, n: int) -> None:
    import lakeline as ll
    from lakeline.lineage.recorder import Recorder
    from sqlalchemy import text

    pg = instance.dialect == "postgresql"
    seed = Path(os.environ["LAKELINE_HOME"]) / "seed.txt"
    seed.write_text("seed")
    ll.Artifact(str(seed), key="seed.txt").save()
    workflow = Recorder("bench").start_workflow(key="bench-delmany", engine_run_id="delmany")
    uid = "substr(md5(CAST(g AS text)), 1, 12)" if pg else "printf('%012x', g)"
    with instance.engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO artifacts ({COLS}) SELECT 'k/' || g || '.txt', description, "
                "suffix, kind, otype, size, hash, hash_type, n_files, n_observations, "
                "storage_id, store_key || g, in_place, run_id, "
                f"{uid} || '0000', created_at, created_by_id, {uid}, version, "
                f"is_latest, available, store_tag FROM artifacts a, {_series(pg, n)} "
                "WHERE a.key = 'seed.txt'"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (uid, transform_id, status, engine, engine_ref, created_at, "
                "report_id, environment_id) SELECT 'bench' || a.id, :t, 'completed', 'bench', "
                "'r' || a.id, CURRENT_TIMESTAMP, CASE WHEN a.id % 10 = 0 THEN a.id END, "
                "CASE WHEN a.id % 10 = 5 THEN a.id END FROM artifacts a WHERE a.key LIKE 'k/%'"
            ),
            {"t": workflow.transform.id},
        )
        conn.execute(text("ANALYZE"))


def _round(
    cur: Any, commit: Callable[[], None], cpu: Callable[[], float], n: int, how: str
) -> tuple[float, float]:
    """Delete the n artifacts, (wall s, cpu s); checks the runs' references, rolls back."""
    before = cur.execute(REFS).fetchone()
    each = "DELETE FROM artifacts WHERE id = " + ("?" if hasattr(cur, "total_changes") else "%s")
    ids = [row[0] for row in cur.execute("SELECT id FROM artifacts WHERE key LIKE 'k/%'")]
    wall, started = time.perf_counter(), cpu()
    if how == "bulk":
        cur.execute("DELETE FROM artifacts WHERE key LIKE 'k/%'")
    else:
        for id_ in ids:
            cur.execute(each, (id_,))
    took = cpu() - started, time.perf_counter() - wall
    after = cur.execute(REFS).fetchone()
    assert tuple(after) == (0, 0, before[2]), (before, after)
    assert before[0] == before[1] == n // 10, before
    commit()
    return took[1], took[0]


def _report(db: str, n: int, results: dict[str, list[tuple[float, float]]]) -> None:
    for label, samples in results.items():
        walls = [w for w, _ in samples]
        cpus = [c for _, c in samples]
        print(
            f"{db} {label:16s}: {n / statistics.median(walls):9,.0f} deletes/s, "
            f"CPU {statistics.median(cpus) / n * 1e6:7.1f} us a row "
            f"(best {min(cpus) / n * 1e6:.1f}; rounds {len(samples)})"
        )


def run_sqlite(n: int, rounds: int) -> None:
    import lakeline as ll

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        os.environ["LAKELINE_HOME"] = str(Path(tmp) / "home")
        instance = ll.init(storage=str(Path(tmp) / "store"), name="delmany-sqlite")
        _fill(instance, n)
        raw = instance.engine.raw_connection()
        conn = raw.driver_connection
        conn.execute("PRAGMA foreign_keys = ON")
        results: dict[str, list[tuple[float, float]]] = {}
        for _ in range(rounds):
            for how in ("bulk", "each"):
                conn.execute("BEGIN")
                sample = _round(conn, conn.rollback, time.thread_time, n, how)
                results.setdefault(how, []).append(sample)
        raw.close()
        _report("sqlite", n, results)


def run_postgres(n: int, rounds: int) -> None:
    import lakeline as ll
    import psycopg

    started = start_postgres("delmany")
    if isinstance(started, str):
        print(f"postgres: skipped ({started})")
        return
    server, url = started
    try:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            os.environ["LAKELINE_HOME"] = str(Path(tmp) / "home")
            instance = ll.init(storage=str(Path(tmp) / "store"), db=url, name="delmany-pg")
            _fill(instance, n)
            instance.engine.dispose()
            with psycopg.connect(url.replace("+psycopg", "")) as conn:
                pid = conn.info.backend_pid

                def cpu() -> float:
                    with open(f"/proc/{pid}/schedstat") as stat:
                        return int(stat.read().split()[0]) / 1e9

                conn.rollback()
                results: dict[str, list[tuple[float, float]]] = {}
                for _ in range(rounds):
                    for how in ("bulk", "each"):
                        sample = _round(conn, conn.rollback, cpu, n, how)
                        results.setdefault(how, []).append(sample)
            _report("postgres", n, results)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.1f}")
    if args.db in ("sqlite", "both"):
        run_sqlite(args.n, args.rounds)
    if args.db in ("postgres", "both"):
        run_postgres(args.n, args.rounds)
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
