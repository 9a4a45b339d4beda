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
commit by `migrate.migrating`, which turned them off (no new violation: refused otherwise);
this migration runs only inside it. Each table rebuilt is logged (`lakeline.migrate`, shown by
the CLI): ~3 minutes at 1M artifacts, while other writers wait for SQLite's lock at most 60 s.
Downgrade: rebuilt without AUTOINCREMENT.
"""

from __future__ import annotations

import logging
import re

from alembic import op
from lakeline.db.migrate import FK_CHECKED
from lakeline.errors import UnexpectedSchema
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
log = logging.getLogger("lakeline.migrate")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _check_off(bind)
    # shown for a catalog holding records (a new one's empty tables take no time: no lines)
    level = logging.INFO if _holds_records(bind) else logging.DEBUG
    log.log(
        level,
        "migration 0027: rebuilding %d SQLite tables with AUTOINCREMENT ids (about 3 minutes "
        "a million artifacts; writers in other processes give up after 60 s: stop them first)",
        len(TABLES),
    )
    deleted: dict[str, int | None] = dict(
        bind.exec_driver_sql(
            "SELECT tbl, max(CAST(json_extract(changes, '$.id') AS INTEGER)) FROM audit_log "
            "WHERE action = 'delete' GROUP BY tbl"
        )
        .tuples()
        .all()
    )
    for number, table in enumerate(TABLES, 1):
        _rebuild(bind, table, PLAIN, AUTO, number, level)
        top = bind.exec_driver_sql(f'SELECT max(id) FROM "{table}"').scalar()
        seq = max(top or 0, deleted.get(table) or 0)
        bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _check_off(bind)
    for number, table in enumerate(TABLES, 1):
        _rebuild(bind, table, AUTO, PLAIN, number, logging.DEBUG)


def _rebuild(bind: Connection, table: str, old: str, new: str, number: int, level: int) -> None:
    """`table` made again with `old` in its primary key constraint replaced by `new`: its rows
    (ids kept), indexes and triggers as they were."""
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    pk = f"CONSTRAINT pk_{table} {old}"
    head = re.match(rf'CREATE TABLE ("?){table}\1 \(', sql)
    if sql.count(pk) != 1 or head is None:
        found = " ".join(sql.split())
        raise UnexpectedSchema(
            f"migration 0027 cannot rebuild table {table}: its definition is not the one "
            f"lakeline made (expected CREATE TABLE {table} (...) with {pk!r} once), found: "
            f"{found[:400]}{'...' if len(found) > 400 else ''}; nothing was migrated (was the "
            "table changed by hand or by another tool?)"
        )
    log.log(level, "migration 0027: table %s (%d of %d)", table, number, len(TABLES))
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


def _holds_records(bind: Connection) -> bool:
    """Whether the catalog holds an artifact or a run."""
    return bool(
        bind.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM artifacts) OR EXISTS (SELECT 1 FROM runs)"
        ).scalar()
    )


def _check_off(bind: Connection) -> None:
    """Foreign keys off (dropping a table would run its children's ON DELETE actions) by
    `migrate.migrating`, which checks them before the commit; RuntimeError otherwise."""
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar() or not bind.info.get(FK_CHECKED):
        raise RuntimeError(
            "migration 0027 runs in migrate.migrating (foreign keys off, checked at the end)"
        )
