"""PostgreSQL: migration 0021 (search columns as a function call) on a filled catalog.

    uv run python bench/search_function.py [--n 100000] [--rounds 2]

Fills `--n` artifacts and `--n` runs (bench/delete_many.py's rows) at head, then per round:
down to 0020 and up to 0021 again, each timed (wall, and the migrating backend's CPU), and in
each form: a 0-row UPDATE of runs, artifacts and transforms (the backend's CPU a statement, 200
of each) and a 2k-row INSERT of artifacts (CPU a row), in transactions rolled back; and the
same at 0021 with the columns made plain and kept by triggers instead (`_trigger_form`, the
DDL rolled back). Checks the vectors of every table are the same in both forms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from delete_many import COLS, _fill
from measure import start_postgres

TABLES = ("runs", "artifacts", "transforms")


def _cpu(conn: Any) -> float:
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0]) / 1e9


FIELDS = {
    "runs": ("engine", "engine_ref", "host", "error"),
    "artifacts": ("key", "description"),
    "transforms": ("key", "description", "reference"),
}


def _trigger_form() -> list[str]:
    """The other way (B, what-if at 0021): each column a plain one (DROP EXPRESSION: no
    rewrite) kept by BEFORE row triggers calling the same function: every INSERT, an UPDATE
    WHEN a field or the vector itself changed."""
    ddl = []
    for table, fields in FIELDS.items():
        new = ", ".join(f'NEW."{f}"' for f in fields)
        changed = " OR ".join(
            f'OLD."{f}" IS DISTINCT FROM NEW."{f}"' for f in (*fields, "search_vector")
        )
        ddl += [
            f"CREATE FUNCTION bench_sv_{table}() RETURNS trigger LANGUAGE plpgsql "
            "SET search_path = pg_catalog, pg_temp AS $f$ BEGIN NEW.search_vector := "
            f"public.lakeline_search_{table}({new}); RETURN NEW; END $f$",
            f"ALTER TABLE {table} ALTER COLUMN search_vector DROP EXPRESSION",
            f"CREATE TRIGGER bench_sv_i BEFORE INSERT ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION bench_sv_{table}()",
            f"CREATE TRIGGER bench_sv_u BEFORE UPDATE ON {table} FOR EACH ROW WHEN ({changed}) "
            f"EXECUTE FUNCTION bench_sv_{table}()",
        ]
    return ddl


def _statements(engine: Any, ddl: list[str]) -> dict[str, float]:
    """us of backend CPU: a 0-row UPDATE of each table, an INSERTed artifact row."""
    out = {}
    with engine.connect() as conn:
        conn.exec_driver_sql("UPDATE runs SET status = status WHERE id = -1")  # warm the session
        conn.rollback()
        started = _cpu(conn)
        for statement in ddl:
            conn.exec_driver_sql(statement)
        if ddl:
            out["DDL (s of CPU)"] = _cpu(conn) - started
            conn.exec_driver_sql("UPDATE runs SET status = status WHERE id = -1")
        for table in TABLES:
            started = _cpu(conn)
            for _ in range(200):
                conn.exec_driver_sql(f"UPDATE {table} SET id = id WHERE id = -1")
            out[f"0-row UPDATE {table} us"] = (_cpu(conn) - started) / 200 * 1e6
        conn.rollback()
        for statement in ddl:
            conn.exec_driver_sql(statement)
        started = _cpu(conn)
        conn.exec_driver_sql(
            f"INSERT INTO artifacts ({COLS}) SELECT 'ins/' || g || '.txt', description, suffix, "
            "kind, otype, size, hash, hash_type, n_files, n_observations, storage_id, "
            "store_key || 'i' || g, in_place, run_id, substr(md5('i' || g), 1, 16), created_at, "
            "created_by_id, substr(md5('i' || g), 1, 12), version, is_latest, available, "
            "store_tag FROM artifacts a, generate_series(1, 2000) AS s(g) WHERE a.key = 'seed.txt'"
        )
        out["INSERT artifacts us/row"] = (_cpu(conn) - started) / 2000 * 1e6
        conn.rollback()
    return out


def _vectors(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return [
            conn.exec_driver_sql(
                f"SELECT md5(string_agg(id || ':' || search_vector::text, ',' ORDER BY id)) "
                f"FROM {t}"
            ).scalar()
            for t in (*TABLES, "collections", "features", "ulabels", "schemas", "storages", "users")
        ]


def _migrate(engine: Any, revision: str) -> tuple[float, float]:
    from alembic import command
    from lakeline.db.migrate import alembic_config

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        wall, cpu = time.perf_counter(), _cpu(conn)
        (command.downgrade if revision == "0020" else command.upgrade)(cfg, revision)
        return time.perf_counter() - wall, _cpu(conn) - cpu


def main() -> None:
    import lakeline as ll

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.1f}")
    started = start_postgres("searchfn")
    if isinstance(started, str):
        print(f"postgres: skipped ({started})")
        return
    server, url = started
    try:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            os.environ["LAKELINE_HOME"] = str(Path(tmp) / "home")
            instance = ll.init(storage=str(Path(tmp) / "store"), db=url, name="searchfn")
            _fill(instance, args.n)
            engine = instance.engine
            head = _vectors(engine)
            samples: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for revision, form in (("0020", "inline"), ("0021", "function")):
                    wall, cpu = _migrate(engine, revision)
                    samples.setdefault(f"migrate to {revision} wall s", []).append(wall)
                    samples.setdefault(f"migrate to {revision} backend cpu s", []).append(cpu)
                    assert _vectors(engine) == head, f"vectors differ at {revision}"
                    for name, value in _statements(engine, []).items():
                        samples.setdefault(f"{form}: {name}", []).append(value)
                for name, value in _statements(engine, _trigger_form()).items():
                    samples.setdefault(f"trigger (B): {name}", []).append(value)
            print(f"{args.n} artifacts, {args.n} runs; vectors equal in both forms")
            for name, values in samples.items():
                shown = ", ".join(f"{v:.1f}" for v in values)
                print(f"  {name:42} median {statistics.median(values):9.1f}  ({shown})")
    finally:
        server.stop()
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
