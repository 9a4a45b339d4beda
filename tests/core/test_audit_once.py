"""SQLite's audit triggers compute an entry's values once (migration 0012): the subquery that
selects them was flattened into the INSERT, so the row's JSON, the actor and the time were
computed once per use. Entries, hashes and the chain stay as they were."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from alembic import command
from lakeline.access.audit import entry_hash, verify
from lakeline.db.migrate import HEAD_REVISION, alembic_config, migrating, upgrade
from lakeline.instance import Instance
from lakeline.search_vocab import register_sqlite as register_tokens
from sqlalchemy import text


def counting_connection(instance: Instance, calls: Counter[str]) -> sqlite3.Connection:
    """A raw connection to the instance's SQLite file whose audit functions count calls."""
    conn = sqlite3.connect(str(instance.engine.url.database), isolation_level=None)

    def actor() -> str:
        calls["actor"] += 1
        return "counter"

    def hashed(*args: Any) -> str:
        calls["hash"] += 1
        return entry_hash(*args)

    conn.create_function("lakeline_actor", 0, actor)
    conn.create_function("lakeline_hash", 8, hashed)
    register_tokens(conn)  # the search triggers' function (0015)
    return conn


def saved_file(tmp_path: Path) -> ll.Artifact:
    (tmp_path / "a.txt").write_text("audited")
    return ll.Artifact(tmp_path / "a.txt", key="a.txt").save()


def changes(
    instance: Instance, calls: Counter[str], tmp_path: Path, saved: ll.Artifact | None = None
) -> None:
    """An INSERT, an UPDATE and a DELETE of an artifact row, through the raw connection
    (`saved`: the record copied and edited, saved before: this code cannot save into a
    catalog older than its columns, 0028)."""
    saved = saved_file(tmp_path) if saved is None else saved
    conn = counting_connection(instance, calls)
    try:
        conn.execute("BEGIN IMMEDIATE")
        columns = [r[1] for r in conn.execute("PRAGMA table_info(artifacts)") if r[1] != "id"]
        copied = {"uid": "'copy000000000000'", "stem": "'copy00000000'", "key": "'copy.txt'"}
        picked = ", ".join(copied.get(c, c) for c in columns)
        listed = ", ".join(columns)
        conn.execute(f"INSERT INTO artifacts ({listed}) SELECT {picked} FROM artifacts")
        edit = f"edited in {tmp_path.name}"
        conn.execute("UPDATE artifacts SET description = ? WHERE id = ?", (edit, saved.id))
        conn.execute("DELETE FROM artifacts WHERE uid = 'copy000000000000'")
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_each_audit_entry_is_computed_once(instance: Instance, tmp_path: Path) -> None:
    if instance.dialect != "sqlite":
        pytest.skip("PostgreSQL's audit is one statement trigger, computed set-based")
    calls: Counter[str] = Counter()
    changes(instance, calls, tmp_path)
    assert calls == {"actor": 3, "hash": 3}  # an insert, an update, a delete: 3 entries
    assert verify(instance).ok


def test_migration_rewrites_the_triggers_of_an_existing_catalog(
    instance: Instance, tmp_path: Path
) -> None:
    """Back at 0011 (entries made by the old triggers), then upgraded: the chain goes on."""
    if instance.dialect != "sqlite":
        pytest.skip("nothing changes on PostgreSQL")
    saved = saved_file(tmp_path)
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    before: Counter[str] = Counter()
    changes(instance, before, tmp_path, saved)
    assert before == {"actor": 6, "hash": 3}  # the old triggers: the actor once per use
    upgrade(instance.engine)
    with instance.engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        old = conn.execute(
            text("SELECT count(*) FROM sqlite_master WHERE sql LIKE '%FROM audit_head h) s;%'")
        ).scalar()
    assert revision == HEAD_REVISION and old == 0
    after: Counter[str] = Counter()
    (tmp_path / "b").mkdir()
    changes(instance, after, tmp_path / "b")
    assert after == {"actor": 3, "hash": 3}
    assert verify(instance).ok
