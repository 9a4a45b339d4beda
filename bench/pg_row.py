"""What one new artifact row costs the PostgreSQL server, part by part.

    uv run python bench/pg_row.py --rows 10000 --rounds 3

A throwaway cluster on /dev/shm (bench/measure.py's settings). `ll.save` of `--rows` small new
files records the rows the bulk save COPYs (the same columns, read back); a template database
holds the catalog as it was before that save. Each variant is a fresh database from the
template, its changes applied (an index dropped, the audit trigger disabled...), then the rows
COPYed in one statement and committed: the backend's CPU (its schedstat, ns) for the COPY and
for the commit (the audit chaining runs there), and the WAL written (insert position before
and after). Best of `--rounds`. The cumulative variants strip one part after another, so their
differences add up to the whole; the `only_` ones take one part away from the whole.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AUDIT = ["ALTER TABLE artifacts DISABLE TRIGGER lakeline_audit_insert"]
STATEMENT = [
    "ALTER TABLE artifacts DISABLE TRIGGER lakeline_creator_insert",
    "ALTER TABLE artifacts DISABLE TRIGGER lakeline_version_space",
]


def _catalog(conn: Any, kind: str) -> list[str]:
    """The artifacts table's secondary indexes (`index`) or foreign keys (`fk`, with 0019's
    trigger checking the references to users, storages and spaces), as DDL."""
    if kind == "index":
        names = conn.execute(
            "SELECT i.indexrelid::regclass::text, c.conname FROM pg_index i "
            "LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype = 'u' "
            "WHERE i.indrelid = 'artifacts'::regclass AND NOT i.indisprimary ORDER BY 1"
        ).fetchall()
        return [
            f"ALTER TABLE artifacts DROP CONSTRAINT {con}" if con else f"DROP INDEX {name}"
            for name, con in names
        ]
    names = conn.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'artifacts'::regclass "
        "AND contype = 'f' ORDER BY 1"
    ).fetchall()
    # since 0019 the references to users, storages and spaces are checked by one trigger
    checks = conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'artifacts'::regclass "
        "AND tgname = 'lakeline_artifact_refs'"
    ).fetchall()
    return [f"ALTER TABLE artifacts DROP CONSTRAINT {n}" for (n,) in names] + [
        f"ALTER TABLE artifacts DISABLE TRIGGER {n}" for (n,) in checks
    ]


def _prepare(server: Any, rows: int, every: bool) -> tuple[bytes, str]:
    """Databases `base` (before the save) and `full` (after); the saved rows as COPY text."""
    import psycopg

    sys.path.insert(0, str(HERE))
    import measure

    url = server.create_database("full")
    home = Path(tempfile.mkdtemp(prefix="pg-row-", dir="/dev/shm"))
    os.environ["LAKELINE_HOME"] = str(home / "home")
    os.environ["LAKELINE_CACHE_DIR"] = str(home / "cache")
    try:
        import lakeline as ll
        import lakeline.instance as li
        from lakeline.artifacts import pipeline
        from sqlalchemy.engine import Engine

        pipeline.spare_core = lambda: False  # one COPY of every row
        li.init(str(home / "storage"), name="pgrow", db=url)
        warm = home / "warm.txt"
        warm.write_text("warm")
        ll.Artifact(str(warm), key="warm/warm.txt").save()
        import gc

        for obj in gc.get_objects():  # no connection to `full` while it is copied
            if isinstance(obj, Engine):
                obj.dispose()
        plain = server.url("postgres").replace("+psycopg", "")
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute("CREATE DATABASE base TEMPLATE full")
        paths, _ = measure.make_files(home / "files", rows)
        ll.save([ll.Artifact(str(p), key=f"raw/{p.parent.name}/{p.name}") for p in paths])
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            columns = [
                str(n)
                for (n,) in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = 'artifacts'::regclass "
                    "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
                ).fetchall()
            ]
            # what the bulk save COPYs: the columns with a value in some row, and space_id
            # (`--every-column`: every column but space_id, as before they were left out)
            kept = [
                c
                for c in columns
                if (c != "space_id" if every else c in ("id", "space_id"))
                or conn.execute(
                    f"SELECT count({c}) FROM artifacts WHERE key LIKE 'raw/%'"
                ).fetchone()[0]  # type: ignore[index]
            ]
            listed = ", ".join(kept)
            data = bytearray()
            with (
                conn.cursor() as cur,
                cur.copy(
                    f"COPY (SELECT {listed} FROM artifacts WHERE key LIKE 'raw/%' ORDER BY id) "
                    "TO STDOUT"
                ) as copy,
            ):
                for chunk in copy:
                    data += chunk
        return bytes(data), listed
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def _one(server: Any, name: str, setup: list[str], data: bytes, columns: str) -> dict[str, float]:
    import psycopg

    plain = server.url("postgres").replace("+psycopg", "")
    n = data.count(b"\n")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE base")
    try:
        with psycopg.connect(server.url(name).replace("+psycopg", "")) as conn:
            for statement in setup:
                conn.execute(statement)
            conn.commit()
            pid = conn.info.backend_pid
            lsn = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]
            conn.commit()
            began = _cpu(pid)
            with conn.cursor() as cur, cur.copy(f"COPY artifacts ({columns}) FROM STDIN") as copy:
                copy.write(data)
            copied = _cpu(pid)
            conn.commit()
            committed = _cpu(pid)
            wal = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn,)
            ).fetchone()[0]  # type: ignore[index]
    finally:
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
    return {
        "COPY us": 1e6 * (copied - began) / n,
        "commit us": 1e6 * (committed - copied) / n,
        "WAL B": float(wal) / n,
    }


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--each", action="store_true", help="also each index and foreign key")
    parser.add_argument(
        "--every-column", action="store_true", help="COPY every column but space_id (as before)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import measure

    started = measure.start_postgres("pgrow")
    if isinstance(started, str):
        raise SystemExit(f"no PostgreSQL: {started}")
    server = started[0]
    try:
        data, columns = _prepare(server, args.rows, args.every_column)
        with psycopg.connect(server.url("base").replace("+psycopg", "")) as conn:
            indexes, fks = _catalog(conn, "index"), _catalog(conn, "fk")
        variants: dict[str, list[str]] = {
            "everything": [],
            "- audit entry (and its chaining)": AUDIT,
            "- secondary indexes": AUDIT + indexes,
            "- foreign keys": AUDIT + indexes + fks,
            "- statement triggers (creator, version space)": AUDIT + indexes + fks + STATEMENT,
            "only: no foreign keys": fks,
            "only: no indexes": indexes,
        }
        if args.each:
            variants.update({f"only: {s.split()[-1]} dropped": [s] for s in indexes + fks})
        print(f"{args.rows:,} new artifact rows in one COPY, best of {args.rounds}; columns: "
              f"{columns}")  # fmt: skip
        for i, (label, setup) in enumerate(variants.items()):
            best: dict[str, float] = {}
            for r in range(args.rounds):
                got = _one(server, f"v{i}_{r}", setup, data, columns)
                best = {k: min(best.get(k, v), v) for k, v in got.items()}
            total = best["COPY us"] + best["commit us"]
            row = "  ".join(f"{k} {v:7.1f}" for k, v in best.items())
            print(f"{label:<48} {row}  total us {total:6.1f}  load {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
