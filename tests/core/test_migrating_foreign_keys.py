"""Foreign keys hold while a schema module's migrations run on SQLite as they did before 0027
(which rebuilds tables, so runs with them off, `migrate.migrating`): a module's data migration
that deletes rows still cascades to the rows pointing to them, and one that writes a reference
to nothing is refused, nothing changed, instead of leaving rows that point nowhere. (On autoinc
f94a455 every migration ran with foreign keys off: the first two failed.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from lakeline.db.migrate import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    migrating,
    upgrade,
)
from lakeline.errors import DatabaseError, ModuleMigrationFailed
from lakeline.instance import Instance
from lakeline.modules.spec import SchemaModule
from sqlalchemy import text

pytestmark = pytest.mark.parametrize("instance", ["sqlite"], indirect=True)

MIGRATION = '''"""fkx tables

Revision ID: fkx_0001
"""
from alembic import op

revision = "fkx_0001"
down_revision = None
branch_labels = ("fkx",)
depends_on = None


def upgrade():
    op.execute("CREATE TABLE fkx_parents (id INTEGER PRIMARY KEY)")
    op.execute(
        "CREATE TABLE fkx_children (id INTEGER PRIMARY KEY, "
        "parent_id INTEGER REFERENCES fkx_parents (id) ON DELETE CASCADE, "
        "run_id INTEGER REFERENCES runs (id))"
    )
    op.execute("INSERT INTO fkx_parents (id) VALUES (1), (2)")
    op.execute("INSERT INTO fkx_children (id, parent_id) VALUES (1, 1), (2, 2)")
    op.execute("DELETE FROM fkx_parents WHERE id = 1")  # its child with it
    {more}


def downgrade():
    op.execute("DROP TABLE fkx_children")
    op.execute("DROP TABLE fkx_parents")
'''


def _module(tmp_path: Path, more: str = "") -> SchemaModule:
    folder = tmp_path / "fkx_migrations"
    folder.mkdir()
    (folder / "fkx_0001.py").write_text(MIGRATION.format(more=more))
    return SchemaModule("fkx", "lakeline-fkx", "fkx_", "json", folder, "fkx_0001")


def test_a_module_migrations_delete_cascades(instance: Instance, tmp_path: Path) -> None:
    upgrade(instance.engine, modules=[_module(tmp_path)])
    with instance.engine.connect() as conn:
        children = conn.execute(text("SELECT id, parent_id FROM fkx_children")).all()
    assert [tuple(row) for row in children] == [(2, 2)]  # autoinc: [(1, 1), (2, 2)]


def test_a_module_migration_writing_a_reference_to_nothing_is_refused(
    instance: Instance, tmp_path: Path
) -> None:
    bad = 'op.execute("INSERT INTO fkx_children (id, run_id) VALUES (3, 999999)")'
    with pytest.raises(ModuleMigrationFailed, match="FOREIGN KEY"):
        upgrade(instance.engine, modules=[_module(tmp_path, bad)])
    with instance.engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'fkx%'"))
        assert tables.all() == []


def test_an_upgrade_through_0027_refuses_a_reference_to_nothing(
    instance: Instance, tmp_path: Path
) -> None:
    """Across 0027 (foreign keys off for its rebuild) a module migration's reference to nothing
    is not refused by SQLite: the check before the commit refuses it, nothing changed."""
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0026")
    bad = 'op.execute("INSERT INTO fkx_children (id, run_id) VALUES (3, 999999)")'
    with pytest.raises(DatabaseError, match="point nowhere"):
        upgrade(instance.engine, modules=[_module(tmp_path, bad)])
    with instance.engine.connect() as conn:
        assert current_revision(conn) == "0026"
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'fkx%'"))
        assert tables.all() == []
    upgrade(instance.engine)
    with instance.engine.connect() as conn:
        assert current_revision(conn) == HEAD_REVISION
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
