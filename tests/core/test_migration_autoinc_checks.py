"""Migration 0027 on SQLite: foreign keys checked once at each end (by `migrate.migrating`, not
again by the migration), a table not as lakeline made it refused with a clear error naming it
(nothing migrated), and each table it rebuilds shown by `lakeline migrate`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from alembic import command
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.db.migrate import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    migrating,
    upgrade,
)
from lakeline.errors import UnexpectedSchema
from lakeline.instance import Instance
from sqlalchemy import event

pytestmark = pytest.mark.parametrize("instance", ["sqlite"], indirect=True)


def _at_0026(instance: Instance) -> Path:
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0026")
    instance.engine.dispose()
    return Path(instance.engine.url.database or "")


def _sql(db: Path, table: str) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return str(row[0])


def test_0027_checks_foreign_keys_once_before_and_once_after(instance: Instance) -> None:
    """`PRAGMA foreign_key_check` reads every row with a foreign key (~0.3 s at 100k
    artifacts): `migrating` runs it before and after; 0027 ran it twice more (4 in all)."""
    _at_0026(instance)
    checks: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "foreign_key_check" in statement:
            checks.append(statement)

    event.listen(instance.engine, "before_cursor_execute", seen)
    try:
        upgrade(instance.engine)
    finally:
        event.remove(instance.engine, "before_cursor_execute", seen)
    with instance.engine.connect() as conn:
        assert current_revision(conn) == HEAD_REVISION
    assert len(checks) == 2, checks


def test_0027_refuses_a_table_changed_by_hand_naming_it(instance: Instance) -> None:
    """ulabels' primary key written without its constraint name (as a hand-made table would
    be): UnexpectedSchema names the table and the constraint expected, and nothing is
    migrated (the tables rebuilt before it are as they were)."""
    db = _at_0026(instance)
    raw = sqlite3.connect(db, isolation_level=None)
    try:
        raw.execute("PRAGMA writable_schema=ON")
        raw.execute(
            "UPDATE sqlite_master SET sql = replace(sql, 'CONSTRAINT pk_ulabels PRIMARY KEY "
            "(id)', 'PRIMARY KEY (id)') WHERE type = 'table' AND name = 'ulabels'"
        )
        raw.execute("PRAGMA writable_schema=OFF")
    finally:
        raw.close()
    assert "pk_ulabels" not in _sql(db, "ulabels")
    with pytest.raises(UnexpectedSchema) as caught:  # was a bare RuntimeError
        upgrade(instance.engine)
    message = str(caught.value)
    assert "table ulabels" in message and "'CONSTRAINT pk_ulabels PRIMARY KEY (id)'" in message
    assert "nothing was migrated" in message
    with instance.engine.connect() as conn:
        assert current_revision(conn) == "0026"
    assert "AUTOINCREMENT" not in _sql(db, "artifacts")


def test_lakeline_migrate_shows_each_table_0027_rebuilds(
    instance: Instance, tmp_path: Path
) -> None:
    """A catalog holding records (a new one's empty tables are rebuilt at once, silently)."""
    (tmp_path / "a.txt").write_text("a")
    ll.Artifact(tmp_path / "a.txt", key="a.txt").save()
    _at_0026(instance)
    result = CliRunner().invoke(cli, ["migrate", instance.name])
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"migrated schema 0026 -> {HEAD_REVISION}" in result.stdout
    lines = result.stderr.splitlines()
    assert any("stop them first" in line for line in lines), lines
    for number, table in enumerate(("users", "spaces", "storages"), 1):
        assert f"migration 0027: table {table} ({number} of 10)" in lines, lines
    assert "migration 0027: table ulabels (10 of 10)" in lines, lines
