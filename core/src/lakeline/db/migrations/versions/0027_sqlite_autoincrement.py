"""SQLite: the record tables' ids are AUTOINCREMENT (an id is never given twice)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 08:00:00.000000

Without AUTOINCREMENT SQLite gives a new row max(id) + 1: a deleted record with the highest id
lent its id to the next record, whoever inserted it, and a process still holding the old id (a
Recorder's run written by an earlier flush, a transform it cached, a file's record it
remembers) wrote its facts onto the unrelated new record, where no foreign key refused them.
PostgreSQL's sequences never give an id twice: nothing to do there.

Each table is rebuilt as https://www.sqlite.org/lang_altertable.html#otheralter says (the
migration runs with foreign keys off, `migrate.upgrade`): a copy made from the table's own SQL
with `PRIMARY KEY (id AUTOINCREMENT)`, every row copied with its id, the old table dropped, the
copy renamed, its indexes and triggers (audit, search, version space) made again from their
own SQL; the full-text indexes keep pointing at the same ids. `sqlite_sequence` starts at the
highest id the table holds or the audit log saw deleted. Foreign keys are checked before the
commit: the same violations as before (none). Downgrade: rebuilt without AUTOINCREMENT.
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import Connection

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# the tables whose ids a process holds across transactions (`models.base.AUTOINCREMENT`);
# link rows (run_inputs, feature_values, ...) and the audit log are never named by a held id
TABLES = (
    "users",
    "spaces",
    "storages",
    "transforms",
    "runs",
    "artifacts",
    "collections",
    "features",
    "schemas",
    "ulabels",
)
PLAIN = "PRIMARY KEY (id)"
AUTO = "PRIMARY KEY (id AUTOINCREMENT)"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    before = _violations(bind)  # foreign keys off, or dropping a table would cascade
    deleted: dict[str, int | None] = dict(
        bind.exec_driver_sql(
            "SELECT tbl, max(CAST(json_extract(changes, '$.id') AS INTEGER)) FROM audit_log "
            "WHERE action = 'delete' GROUP BY tbl"
        )
        .tuples()
        .all()
    )
    for table in TABLES:
        _rebuild(bind, table, PLAIN, AUTO)
        top = bind.exec_driver_sql(f'SELECT max(id) FROM "{table}"').scalar()
        seq = max(top or 0, deleted.get(table) or 0)
        bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))
    _check(bind, before)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    before = _violations(bind)  # foreign keys off, or dropping a table would cascade
    for table in TABLES:
        _rebuild(bind, table, AUTO, PLAIN)
    _check(bind, before)


def _rebuild(bind: Connection, table: str, old: str, new: str) -> None:
    """`table` made again with `old` in its primary key constraint replaced by `new`: its rows
    (ids kept), indexes and triggers as they were."""
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    pk = f"CONSTRAINT pk_{table} {old}"
    head = re.match(rf'CREATE TABLE ("?){table}\1 \(', sql)
    if sql.count(pk) != 1 or head is None:
        raise RuntimeError(f"table {table}: unexpected definition, not rebuilt: {sql}")
    copy = f"_new_{table}"
    made = f'CREATE TABLE "{copy}" (' + sql[head.end() :].replace(
        pk, f"CONSTRAINT pk_{table} {new}"
    )
    others = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, rowid",
        (table,),
    ).all()
    columns = ", ".join(
        f'"{name}"'
        for (name,) in bind.exec_driver_sql(f"SELECT name FROM pragma_table_info('{table}')").all()
    )
    bind.exec_driver_sql(made)
    bind.exec_driver_sql(f'INSERT INTO "{copy}" ({columns}) SELECT {columns} FROM "{table}"')
    bind.exec_driver_sql(f'DROP TABLE "{table}"')  # its indexes and triggers with it
    # legacy: a view or another table's trigger naming `table` (a user's, a module's) is neither
    # checked nor rewritten by the rename (SQLite >= 3.26 refused it: "error in view v: no such
    # table"); it names the table by the name it has again
    legacy = bind.exec_driver_sql("PRAGMA legacy_alter_table").scalar()
    bind.exec_driver_sql("PRAGMA legacy_alter_table=ON")
    try:
        bind.exec_driver_sql(f'ALTER TABLE "{copy}" RENAME TO "{table}"')
    finally:
        bind.exec_driver_sql(f"PRAGMA legacy_alter_table={'ON' if legacy else 'OFF'}")
    for (statement,) in others:
        bind.exec_driver_sql(statement)


def _violations(bind: Connection) -> list[tuple[object, ...]]:
    """The rows whose foreign keys point nowhere; RuntimeError unless foreign keys are off."""
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("migration 0027 needs foreign keys off (migrate.upgrade turns them off)")
    return [tuple(row) for row in bind.exec_driver_sql("PRAGMA foreign_key_check").all()]


def _check(bind: Connection, before: list[tuple[object, ...]]) -> None:
    """The foreign keys hold as they did before the rebuild (step 10 of SQLite's procedure)."""
    after = _violations(bind)
    if after != before:
        raise RuntimeError(f"foreign keys broken by the rebuild: {after[:5]}")
