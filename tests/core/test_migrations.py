"""One alembic tree: it matches the models, and schema mismatches give clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from lakeline.db.engine import make_engine
from lakeline.db.migrate import (
    HEAD_REVISION,
    alembic_config,
    ensure_schema,
    include_object,
    migrating,
    upgrade,
)
from lakeline.errors import SchemaOutOfDate
from lakeline.instance import Instance, connect, migrate
from lakeline.models import Base, load_all
from sqlalchemy import text


def test_head_revision_constant_matches_the_tree() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [HEAD_REVISION]


def _diff(url: str) -> list[object]:
    load_all()  # Base.metadata whole: the annotation registries map on first use
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migrations_match_models(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
        upgrade(make_engine(url))
    else:
        url = request.getfixturevalue("postgres_url")
    assert _diff(url) == []


def test_downgrade_and_upgrade_roundtrip(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    cfg = alembic_config()
    with migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).all()
    # sqlite_sequence (made by 0027's AUTOINCREMENT) is SQLite's own: it cannot be dropped
    assert [t for (t,) in tables if t not in ("alembic_version", "sqlite_sequence")] == []
    upgrade(engine)


def test_schema_newer_than_code_and_missing_schema(instance: Instance) -> None:
    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match=r"newer than this lakeline knows.*upgrade lakeline"):
        ensure_schema(instance.engine, auto_migrate=True)
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(SchemaOutOfDate, match="no lakeline schema"):
        connect("test")


def test_migrate_is_idempotent(instance: Instance) -> None:
    assert migrate("test") == (HEAD_REVISION, HEAD_REVISION, None)


def _fill_0001(url: str, storage_root: Path) -> None:
    """A database at revision 0001 holding an instance's settings, a user and two artifacts,
    written with the 0001 tables as reflected (not today's models)."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, insert

    engine = make_engine(url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            meta = MetaData()
            meta.reflect(conn, only=["settings", "storages", "users", "artifacts"])
            assert "available" not in meta.tables["artifacts"].c
            now = datetime.now(UTC).replace(tzinfo=None)
            conn.execute(
                insert(meta.tables["settings"]),
                [
                    {"key": "instance_uid", "value": "inst00000001"},
                    {"key": "instance_name", "value": "old"},
                    {"key": "default_storage_uid", "value": "stor00000001"},
                ],
            )
            conn.execute(
                insert(meta.tables["storages"]),
                {"id": 1, "uid": "stor00000001", "root": str(storage_root), "type": "local",
                 "instance_uid": "inst00000001", "created_at": now},
            )  # fmt: skip
            conn.execute(
                insert(meta.tables["users"]),
                {"id": 1, "uid": "user0001", "handle": "testuser", "created_at": now},
            )
            rows = [
                {"id": i, "uid": f"oldartifact{i}0000", "stem": f"oldartifact{i}",
                 "is_latest": True, "key": f"old/file{i}.txt", "description": f"legacy {i}",
                 "suffix": ".txt", "size": 5, "hash": f"{i:064x}", "hash_type": "sha256",
                 "storage_id": 1, "store_key": f"old/file{i}.txt", "in_place": True,
                 "created_at": now, "created_by_id": 1}
                for i in (1, 2)
            ]  # fmt: skip
            conn.execute(insert(meta.tables["artifacts"]), rows)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT setval('artifacts_id_seq', 2)")
                conn.exec_driver_sql("SELECT setval('storages_id_seq', 1)")
                conn.exec_driver_sql("SELECT setval('users_id_seq', 1)")
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_upgrade_0001_database_with_rows(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import lakeline as ll
    from lakeline.config import InstanceConfig, set_current

    request.getfixturevalue("lakeline_home")
    storage = tmp_path / "data"
    (storage / "old").mkdir(parents=True)
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    _fill_0001(url, storage)
    InstanceConfig(name="old", db=url, storage=str(storage), uid="inst00000001").write()
    set_current("old")
    if dialect == "sqlite":
        instance = connect("old")  # migrates itself, after a backup
        backups = list(tmp_path.glob("old.db.backup-0001-*"))
        assert len(backups) == 1
        backup = make_engine(f"sqlite:///{backups[0]}")
        with backup.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
            assert conn.execute(text("SELECT count(*) FROM artifacts")).scalar() == 2
        backup.dispose()
    else:
        with pytest.raises(SchemaOutOfDate, match="run `lakeline migrate`"):
            connect("old")
        assert migrate("old") == ("0001", HEAD_REVISION, None)
        instance = connect("old")
    with instance.engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert revision == HEAD_REVISION
    old = ll.Artifact.filter(key__startswith="old/").order_by("key").all()
    assert [(a.uid, a.key, a.description, a.available) for a in old] == [
        ("oldartifact10000", "old/file1.txt", "legacy 1", True),
        ("oldartifact20000", "old/file2.txt", "legacy 2", True),
    ]
    assert ll.Artifact.filter(available=False).count() == 0
    # the search machinery survived the migration (SQLite: the triggers on the same table)
    assert [a.uid for a in ll.Artifact.search("legacy")] != []
    new = ll.Artifact(_new_file(storage)).save()
    assert new.available and new.id == 3
    assert [a.uid for a in ll.Artifact.search("newfile")] == [new.uid]
    assert _diff(url) == []


def _new_file(storage: Path) -> Path:
    path = storage / "fresh" / "newfile.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("new bytes")
    return path


def _fill_0002_runs(url: str) -> None:
    """Take a 0001 database to 0002 and add a transform with a finished and a started run,
    written with the 0002 tables as reflected."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, insert

    engine = make_engine(url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as conn:
            meta = MetaData()
            meta.reflect(conn, only=["transforms", "runs"])
            assert "pid" not in meta.tables["runs"].c
            now = datetime.now(UTC).replace(tzinfo=None)
            conn.execute(
                insert(meta.tables["transforms"]),
                {"id": 1, "uid": "oldtransform0000", "stem": "oldtransform", "is_latest": True,
                 "key": "old/script.py", "kind": "script", "created_at": now,
                 "created_by_id": 1},
            )  # fmt: skip
            conn.execute(
                insert(meta.tables["runs"]),
                [
                    {"id": i, "uid": f"oldrun{i}000000000", "transform_id": 1, "status": status,
                     "started_at": now, "host": "old-host", "created_at": now,
                     "created_by_id": 1}
                    for i, status in ((1, "completed"), (2, "started"))
                ],
            )  # fmt: skip
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT setval('transforms_id_seq', 1)")
                conn.exec_driver_sql("SELECT setval('runs_id_seq', 2)")
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_upgrade_0002_database_with_runs(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0003 adds the process of a run: old runs keep everything and are of unknown liveness."""
    import json

    import lakeline as ll
    from click.testing import CliRunner
    from lakeline.cli import cli
    from lakeline.config import InstanceConfig, set_current

    request.getfixturevalue("lakeline_home")
    storage = tmp_path / "data"
    (storage / "old").mkdir(parents=True)
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    _fill_0001(url, storage)
    _fill_0002_runs(url)
    InstanceConfig(name="old", db=url, storage=str(storage), uid="inst00000001").write()
    set_current("old")
    if dialect == "postgres":
        assert migrate("old") == ("0002", HEAD_REVISION, None)
    instance = connect("old")  # SQLite: migrates itself
    with instance.engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert revision == HEAD_REVISION
    old = ll.Run.filter().order_by("id").all()
    assert [(r.uid, r.status, r.host, r.pid, r.stale) for r in old] == [
        ("oldrun1000000000", "completed", "old-host", None, False),
        ("oldrun2000000000", "started", "old-host", None, False),
    ]
    result = CliRunner().invoke(cli, ["runs", "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["uid"] for line in result.output.splitlines()] == [
        "oldrun2000000000",
        "oldrun1000000000",
    ]
    stale = CliRunner().invoke(cli, ["runs", "--stale"])
    assert stale.exit_code == 0 and stale.stdout == "no stale runs\n"
    assert "1 started runs recorded on other hosts" in stale.stderr

    @ll.tracked(key="new_step")
    def step() -> None:
        pass

    step()
    new = ll.Run.get(transform__key="new_step")
    assert new.id == 3 and new.pid is not None and new.process_started_at is not None
    # 0006: the rows written before the upgrade are in the search index of their registry
    assert [r.uid for r in ll.Run.search("old host")] == ["oldrun2000000000", "oldrun1000000000"]
    assert [t.key for t in ll.Transform.search("script")] == ["old/script.py"]
    assert [s.uid for s in ll.Storage.search(storage.name)] == ["stor00000001"]
    # 0005: old artifacts take feature values and labels, queried by both
    old_file = ll.Artifact.get(key="old/file1.txt")
    ll.save([ll.Feature(name="reads", dtype=int), ll.Feature(name="tissue", dtype="cat")])
    ll.ULabel(name="liver").save()
    old_file.features.add_values({"reads": 12, "tissue": "liver"})
    assert old_file.features.get_values() == {"reads": 12, "tissue": "liver"}
    assert [a.uid for a in ll.Artifact.filter(reads__gte=10, tissue="liver")] == [old_file.uid]
    assert [x.name for x in ll.ULabel.search("liv")] == ["liver"]
    assert _diff(url) == []


def _padded_0001(tmp_path: Path) -> Path:
    """A registered SQLite instance `old` at revision 0001 whose file is ~2 MiB."""
    import sqlite3

    from lakeline.config import InstanceConfig, set_current

    storage = tmp_path / "data"
    (storage / "old").mkdir(parents=True)
    db = tmp_path / "old.db"
    _fill_0001(f"sqlite:///{db}", storage)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE padding (data BLOB)")
        conn.executemany("INSERT INTO padding VALUES (?)", [(bytes(1000),)] * 2000)
    conn.close()
    InstanceConfig(
        name="old", db=f"sqlite:///{db}", storage=str(storage), uid="inst00000001"
    ).write()
    set_current("old")
    return db


def _revision(db: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        conn.close()


def test_sqlite_backup_checks_free_space_before_writing(
    tmp_path: Path, lakeline_home: Path
) -> None:
    """The self-migration's backup refuses, naming the sizes and the folder, when the file
    system has less free space than the database plus the margin; nothing is written."""
    from lakeline.db.migrate import backup_margin, backup_sqlite
    from lakeline.errors import NotEnoughSpace

    db = _padded_0001(tmp_path)
    size = db.stat().st_size
    assert size > 2_000_000
    need = size + backup_margin(size, "0001")
    assert backup_margin(size, "0026") == size + (64 << 20)  # 0027 rebuilds: the size again
    assert backup_margin(size, "0027") == size // 10 + (64 << 20)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(NotEnoughSpace) as refused:
        backup_sqlite(db, "0001", free_bytes=need - 1)
    message = str(refused.value)
    assert str(db) in message and str(tmp_path) in message
    assert f"({size / (1 << 20):,.1f} MiB)" in message
    assert f"need {need / (1 << 20):,.1f} MiB" in message
    assert f"{(need - 1) / (1 << 20):,.1f} MiB free" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    made = backup_sqlite(db, "0001", free_bytes=need)  # just enough
    assert made.name.startswith("old.db.backup-0001-") and _revision(made) == "0001"
    made.unlink()
    assert backup_sqlite(db, "0001").exists()  # the measured free space: this disk has room


BACKUP_FILLS_THE_DISK = """
import resource
import signal
import sys

from lakeline.errors import LakelineError
from lakeline.instance import connect

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG/short)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
try:
    connect("old")
except LakelineError as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
"""


def test_sqlite_backup_that_fills_the_disk_leaves_nothing(
    tmp_path: Path, lakeline_home: Path
) -> None:
    """A backup that runs out of room midway (a real failed write: RLIMIT_FSIZE below the
    database's size, in a subprocess) is removed, and the database is not migrated. (Past
    the limit write() fails with EFBIG, which SQLite reports as an I/O error; a full file
    system, ENOSPC, is SQLITE_FULL and raises NotEnoughSpace.)"""
    import os
    import subprocess
    import sys

    db = _padded_0001(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    script = tmp_path / "fill.py"
    script.write_text(BACKUP_FILLS_THE_DISK)
    limit = db.stat().st_size // 2
    done = subprocess.run(
        [sys.executable, str(script), str(limit)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith(f"DatabaseError backing up {db} (")
    assert "failed (disk I/O error): the partial backup is removed, nothing was migrated" in (
        done.stdout
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "fill.py") == before
    assert _revision(db) == "0001"
    assert connect("old") is not None and _revision(db) == HEAD_REVISION  # room again: migrates
