"""Access-control figures: the audit triggers and row-level security on a bulk save, on an
indexed filter at scale, and `audit verify` on a long log.

    uv run python bench/audit.py [--db sqlite|postgres|both] [--files 10000] [--repeats 3]
                                 [--rows 1000000]

Bulk save: `ll.save()` of `--files` new small files into a fresh instance, best of
`--repeats`, with the audit triggers and with them dropped (everything else equal). On
PostgreSQL also as a login role with the `write` level (row-level security applies: the bulk
rows go as an executemany INSERT instead of COPY) and as a role held to a space.
At scale (`--rows`, 0 skips): the artifacts table is filled to that many rows with one SQL
statement (each row audited by the triggers: that is also the log `verify` then checks);
an indexed filter (`Artifact.filter(key=...)`, 200 keys) as the owner, as a writer, as a space
member; `audit verify` of the whole log. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from measure import make_files, start_postgres


def _drop_audit(instance: Any) -> None:
    from sqlalchemy import text

    with instance.engine.begin() as conn:
        if instance.dialect == "sqlite":
            names = conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND name LIKE 'lakeline_audit_%'"
                )
            ).scalars()
            for name in list(names):
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            rows = conn.execute(
                text(
                    "SELECT tgname, tgrelid::regclass::text FROM pg_trigger "
                    "WHERE tgname LIKE 'lakeline_audit_%' AND tgname <> 'lakeline_audit_chain'"
                )
            ).all()
            for name, table in rows:
                conn.execute(text(f"DROP TRIGGER {name} ON {table}"))


def _admin(url: str, *statements: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def _connect_as(url: str, role: str, name: str) -> Any:
    import lakeline as ll
    from lakeline.config import InstanceConfig
    from sqlalchemy.engine import make_url

    instance = ll.connect("owner")
    role_url = make_url(url).set(username=role).render_as_string(False)
    InstanceConfig(
        name=name, db=role_url, storage=instance.config.storage, uid=instance.uid
    ).write()
    return ll.connect(name)


def _roles(url: str) -> None:
    """A writer and an oncology member (login roles), granted through the CLI's functions."""
    from lakeline.access import roles, spaces
    from lakeline.instance import connect

    _admin(
        url,
        "DO $$ BEGIN CREATE ROLE bench_writer LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; "
        "END $$",
        "DO $$ BEGIN CREATE ROLE bench_onc LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; "
        "END $$",
    )
    owner = connect("owner")
    roles.grant(owner.engine, "bench_writer", "write")
    roles.grant(owner.engine, "bench_onc", "write")
    if "oncology" not in [s.name for s in spaces.listing(owner)]:
        spaces.create(owner, "oncology")
    spaces.set_membership(owner.engine, "bench_onc", ["oncology"])


def bulk(db: str, url: str | None, files: list[Path], root: Path, repeats: int) -> None:
    import lakeline as ll

    modes = ["audit", "no audit"]
    if url is not None:
        modes += ["audit, as a writer (RLS)", "audit, as a space member (RLS)"]
    best = dict.fromkeys(modes, float("inf"))
    # rounds alternate the modes (a shared machine's load moves), in reverse order every other
    # round; best of `repeats` each
    for attempt in range(repeats):
        for mode in modes if attempt % 2 == 0 else modes[::-1]:
            data = root / f"data-{abs(hash((mode, attempt)))}"
            if url is not None:
                _admin(url, "DROP DATABASE IF EXISTS bench_bulk WITH (FORCE)")
                _admin(url, "CREATE DATABASE bench_bulk")
                from sqlalchemy.engine import make_url

                db_url = make_url(url).set(database="bench_bulk").render_as_string(False)
            else:
                db_url = None
            instance = ll.init(data, db=db_url, name="owner")
            if mode == "no audit":
                _drop_audit(instance)
            if "writer" in mode or "member" in mode:
                assert db_url is not None
                _roles(db_url)
                role = "bench_writer" if "writer" in mode else "bench_onc"
                _connect_as(db_url, role, role)
            artifacts = [ll.Artifact(str(p), key=f"raw/{p.parent.name}/{p.name}") for p in files]
            os.sync()  # the previous save's copies are written back now, not during this one
            start = time.perf_counter()
            ll.save(artifacts)
            best[mode] = min(best[mode], time.perf_counter() - start)
            from lakeline.instance import disconnect

            disconnect()
            shutil.rmtree(data, ignore_errors=True)
    for mode, seconds in best.items():
        print(
            f"{db:8} bulk save {len(files):,} files, {mode:32} {seconds:6.2f} s "
            f"({len(files) / seconds:,.0f} artifacts/s)"
        )


def at_scale(db: str, url: str | None, root: Path, rows: int) -> None:
    import lakeline as ll
    from lakeline.access.audit import verify
    from lakeline.instance import disconnect
    from sqlalchemy import text

    data = root / "scale"
    db_url = None
    if url is not None:
        from sqlalchemy.engine import make_url

        _admin(
            url, "DROP DATABASE IF EXISTS bench_scale WITH (FORCE)", "CREATE DATABASE bench_scale"
        )
        db_url = make_url(url).set(database="bench_scale").render_as_string(False)
    instance = ll.init(data, db=db_url, name="owner")
    user_id, storage_id = instance.user.id, instance.storage.id
    now = "now()" if db_url else "CURRENT_TIMESTAMP"
    series = (
        f"generate_series(1, {rows}) AS g(i)"
        if db_url
        else f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows}) "
        "SELECT i FROM s) AS g"
    )
    pad = "lpad(i::text, 8, '0')" if db_url else "printf('%08d', i)"
    start = time.perf_counter()
    with instance.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO artifacts (uid, stem, key, suffix, size, hash, hash_type, storage_id, "
                "store_key, in_place, is_latest, available, created_at, created_by_id) "
                f"SELECT 'b' || {pad} || '0000000', 'b' || {pad} || '000', "
                f"'scale/' || {pad} || '.txt', '.txt', 100, 'h' || {pad}, 'sha256', {storage_id}, "
                f"'scale/' || {pad} || '.txt', true, true, true, {now}, {user_id} FROM {series}"
            )
        )
    filled = time.perf_counter() - start
    print(f"{db:8} filled {rows:,} artifacts in one statement (audited): {filled:.1f} s")
    keys = [f"scale/{i:08d}.txt" for i in range(1, rows, max(1, rows // 200))]
    who = [("owner", "owner")]
    if db_url is not None:
        _roles(db_url)
        with instance.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(
                text(
                    "UPDATE artifacts SET space_id = "
                    "(SELECT id FROM spaces WHERE name = 'oncology') WHERE id % 10 = 0"
                )
            )
        who += [("writer (RLS)", "bench_writer"), ("space member (RLS)", "bench_onc")]
    for label, role in who:
        if role != "owner":
            assert db_url is not None
            _connect_as(db_url, role, role)
        else:
            ll.connect("owner")
        ll.Artifact.filter(key=keys[0]).first()
        start = time.perf_counter()
        for key in keys:
            ll.Artifact.filter(key=key).first()
        per = (time.perf_counter() - start) / len(keys) * 1000
        print(f"{db:8} filter(key=...) at {rows:,} artifacts as {label:20} {per:.2f} ms/query")
    owner = ll.connect("owner")
    start = time.perf_counter()
    verdict = verify(owner)
    print(
        f"{db:8} audit verify of {verdict.checked:,} entries: {time.perf_counter() - start:.1f} s"
        f" ({'intact' if verdict.ok else verdict})"
    )
    disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared machine)")
    root = Path(tempfile.mkdtemp(prefix="lakeline-bench-audit-"))
    os.environ["LAKELINE_HOME"] = str(root / "home")
    os.environ["LAKELINE_CACHE_DIR"] = str(root / "home" / "cache")
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    server = None
    try:
        files, _ = make_files(root / "files", args.files)
        dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        for db in dbs:
            url = None
            if db == "postgres":
                started = start_postgres()
                if isinstance(started, str):
                    print(f"postgres: {started}")
                    continue
                server, url = started
            bulk(db, url, files, root, args.repeats)
            if args.rows:
                at_scale(db, url, root, args.rows)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
