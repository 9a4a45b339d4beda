"""SQLite's AUTOINCREMENT (migration 0027): what its rebuild costs a catalog, and an insert.

    uv run --frozen python bench/autoinc.py migrate DB     # a copy of a catalog at 0026
    uv run --frozen python bench/autoinc.py insert [--rounds 6]

`migrate`: wall and CPU of upgrading DB to the head (0027's rebuild), of the downgrade to 0026
and of the upgrade again, with the rows of the largest tables, `sqlite_sequence` and `PRAGMA
quick_check` at the end (fill a catalog at 0026 with bench/scale.py run on an older tree).
`insert`: thread CPU a run row (runs' audit and search triggers included) inserted into a
fresh catalog at 0026 and one at 0027, 5,000 rows a round in transactions of 100, the two
alternated round by round; prints both and the paired difference. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from alembic import command
from lakeline.db.engine import make_engine
from lakeline.db.migrate import alembic_config, current_revision, migrating, upgrade


def migrate(path: str) -> None:
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        counts = {
            t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
            for t in ("artifacts", "runs", "transforms", "audit_log")
        }
        print("at", current_revision(conn), counts)
    for step in ("upgrade", "downgrade", "upgrade"):
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        if step == "upgrade":
            upgrade(engine)
        else:
            cfg = alembic_config()
            with migrating(engine) as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "0026")
        print(
            f"{step}: wall {time.perf_counter() - wall:.1f} s, cpu "
            f"{time.process_time() - cpu:.1f} s, load {load:.1f}->{os.getloadavg()[0]:.1f}",
            flush=True,
        )
    with engine.connect() as conn:
        sequence = dict(conn.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").tuples())
        print("at", current_revision(conn), sequence)
        print("quick_check", conn.exec_driver_sql("PRAGMA quick_check").scalar())


def insert(rounds: int, n: int = 5000, batch: int = 100) -> None:
    tmp = Path(tempfile.mkdtemp())
    engines = {}
    for rev in ("0026", "0027"):
        engine = make_engine(f"sqlite:///{tmp / rev}.db")
        upgrade(engine, rev)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users (id, uid, handle, created_at) "
                "VALUES (1, 'u0000001', 'u', '2026-01-01')"
            )
            conn.exec_driver_sql(
                "INSERT INTO transforms (id, uid, stem, is_latest, key, kind, created_at) "
                "VALUES (1, 't000000000000000', 't00000000000', 1, 'k', 'rule', '2026-01-01')"
            )
        engines[rev] = engine
    cpu: dict[str, list[float]] = {rev: [] for rev in engines}
    serial = 0
    for i in range(rounds):
        for rev in ("0026", "0027") if i % 2 == 0 else ("0027", "0026"):
            engine = engines[rev]
            began = time.thread_time()
            for _ in range(n // batch):
                rows = []
                for _ in range(batch):
                    serial += 1
                    rows.append((f"r{serial:015d}", f"w/{serial}"))
                with engine.begin() as conn:
                    conn.exec_driver_sql(
                        "INSERT INTO runs (transform_id, status, uid, created_at, engine, "
                        "engine_ref) VALUES (1, 'completed', ?, '2026-12-07 08:00:00', 'b', ?)",
                        rows,
                    )
            cpu[rev].append((time.thread_time() - began) / n * 1e6)
            with engine.begin() as conn:  # the same table size each round
                conn.exec_driver_sql("DELETE FROM runs")
    for rev, values in cpu.items():
        each = " ".join(f"{v:.1f}" for v in values)
        print(f"{rev}: median {statistics.median(values):.1f} us a run; rounds {each}")
    diff = [b - a for a, b in zip(cpu["0026"], cpu["0027"], strict=True)]
    each = " ".join(f"{d:+.2f}" for d in diff)
    print(
        f"0027 - 0026: median {statistics.median(diff):+.2f} us a run; rounds {each}; "
        f"load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("migrate").add_argument("db")
    sub.add_parser("insert").add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if args.what == "migrate":
        migrate(args.db)
    else:
        insert(args.rounds)


if __name__ == "__main__":
    sys.exit(main())
