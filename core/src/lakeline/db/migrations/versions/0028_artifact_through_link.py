"""artifacts.through_link: a record made in place through a symlink says so

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 17:00:00.000000

A symlink recorded under its own path as key (`out/link.txt -> ../data/raw.txt`) is a record
at its target's place: it stands for the link, never for the file there. Once the link is gone
(Snakemake's temp()) nothing on disk tells it from a keyed save, and a later plain use of the
target took it, with the linking step as producer (a false edge). The save now marks it:
true for a link's record, false for any other new record; rows recorded before stay NULL
(unknown: `keying.may_be` asks the file system for them, as before).

A plain nullable `ADD COLUMN` on both databases (SQLite's table is not rebuilt, its full-text
index stays). The audit records every column: SQLite's three audit triggers of `artifacts`
list them, so they are made again with the new one; SQLite runs a table's triggers newest
first, so every trigger of the table (search, version space) is made again, in its order
(review48). PostgreSQL's audit function is made again by `install_audits`. Downgrade: the
column dropped (SQLite: the triggers first, then made again without it, in order).
"""

from __future__ import annotations

from alembic import op
from lakeline.errors import UnexpectedSchema
from sqlalchemy import Boolean, Column, Connection

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

TABLE = "artifacts"
COLUMN = "through_link"
EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.add_column(TABLE, Column(COLUMN, Boolean(), nullable=True))
        _audit_pg(bind)
        return
    triggers = _triggers(bind)
    op.add_column(TABLE, Column(COLUMN, Boolean(), nullable=True))
    _make_again(bind, triggers)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_column(TABLE, COLUMN)
        _audit_pg(bind)
        return
    triggers = _triggers(bind)  # dropped first: SQLite drops no column a trigger names
    bind.exec_driver_sql(f'ALTER TABLE {TABLE} DROP COLUMN "{COLUMN}"')  # SQLite >= 3.35
    _make_again(bind, triggers)


def _audit_pg(bind: Connection) -> None:
    """The table's audit function made again for its columns now (as after any upgrade)."""
    from lakeline.access.audit_pg import install_audits

    install_audits(bind, [TABLE])


def _triggers(bind: Connection) -> list[tuple[str, str]]:
    """The table's triggers (name, SQL) in the order they were made, each dropped; the audit
    ones checked to be as 0009/0012 made them for the table's columns now."""
    columns = _columns(bind)
    found = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
        "ORDER BY rowid",
        (TABLE,),
    ).all()
    triggers = [(str(name), str(sql)) for name, sql in found]
    audits = {name: sql for name, sql in triggers if name.startswith(f"lakeline_audit_{TABLE}_")}
    expected = {f"lakeline_audit_{TABLE}_{e.lower()}": _audit(columns, e) for e in EVENTS}
    if audits != expected:
        wrong = sorted(set(audits) ^ set(expected)) or sorted(
            name for name in audits if audits[name] != expected[name]
        )
        raise UnexpectedSchema(
            f"migration 0028 cannot make the audit triggers of {TABLE} again: {wrong} are not "
            "the ones lakeline made for its columns; nothing was migrated (were they changed "
            "by hand or by another tool?)"
        )
    for name, _ in triggers:
        bind.exec_driver_sql(f'DROP TRIGGER "{name}"')
    return triggers


def _make_again(bind: Connection, triggers: list[tuple[str, str]]) -> None:
    """`triggers` made again in their order, the audit ones for the table's columns now."""
    columns = _columns(bind)
    for name, sql in triggers:
        if name.startswith(f"lakeline_audit_{TABLE}_"):
            sql = _audit(columns, name.rpartition("_")[2].upper())
        bind.exec_driver_sql(sql)


def _columns(bind: Connection) -> list[str]:
    return [
        str(name)
        for (name,) in bind.exec_driver_sql(f"SELECT name FROM pragma_table_info('{TABLE}')")
    ]


def _audit(columns: list[str], event: str) -> str:
    """The table's SQLite audit trigger for `event` over `columns`, as 0009 and 0012 made it
    (`access.audit._sqlite_trigger`, written out here: a migration's SQL never changes)."""
    action, row = event.lower(), "OLD" if event == "DELETE" else "NEW"
    if event == "UPDATE":
        when = " WHEN " + " OR ".join(f'OLD."{c}" IS NOT NEW."{c}"' for c in columns)
        pairs = ", ".join(
            f'\'{c}\', CASE WHEN OLD."{c}" IS NOT NEW."{c}" '
            f'THEN json_array(OLD."{c}", NEW."{c}") END'
            for c in columns
        )
    else:
        when, pairs = "", ", ".join(f"'{c}', {row}.\"{c}\"" for c in columns)
    return (
        f"CREATE TRIGGER lakeline_audit_{TABLE}_{action} AFTER {event} ON {TABLE}{when} "
        "BEGIN INSERT INTO audit_log (seq, at, actor, tbl, uid, action, changes, prev_hash, hash) "
        f"SELECT s.seq, s.at, s.actor, '{TABLE}', s.uid, '{action}', s.changes, s.prev, "
        f"lakeline_hash(s.prev, s.seq, s.at, s.actor, '{TABLE}', s.uid, '{action}', s.changes) "
        "FROM (SELECT h.seq + 1 AS seq, h.hash AS prev, "
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS at, lakeline_actor() AS actor, "
        f"{row}.uid AS uid, json_patch('{{}}', json_object({pairs})) AS changes "
        "FROM audit_head h LIMIT -1 OFFSET 0) s; UPDATE audit_head SET seq = seq + 1, "
        "hash = (SELECT hash "
        "FROM audit_log ORDER BY seq DESC LIMIT 1); END"
    )
