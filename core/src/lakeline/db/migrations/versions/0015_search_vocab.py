"""SQLite: a vocabulary of each search index's tokens, so a prefix is read as whole tokens

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 18:00:00.000000

Each FTS5 search table `<table>_fts` (the core's and any module's made by
`lakeline.search.search_index_ddl`) gets `<table>_fts_vocab` (term, docs): every token its index
holds and how many rows hold it, filled from the index (fts5vocab) and kept by its three
triggers, made again here to also keep it (`lakeline.search_vocab`). A search then reads a
prefix as the whole tokens it stands for. Downgrade: the vocabularies dropped, the FTS5-only
triggers made again. PostgreSQL: nothing.
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import text

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_FTS = re.compile(r"CREATE VIRTUAL TABLE (\w+)_fts USING fts5\((.*), content='(\w+)'", re.I)


def _searchable() -> dict[str, list[str]]:
    """Each table with a search_index_ddl FTS5 table (external content, named `<table>_fts`):
    its fields, as the FTS5 table lists them."""
    rows = op.get_bind().execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5(%'")
    )
    found = {}
    for (sql,) in rows:
        match = _FTS.match(sql or "")
        if match and match.group(1) == match.group(3):
            found[match.group(1)] = [f.strip() for f in match.group(2).split(",")]
    return found


def upgrade() -> None:
    from lakeline.search_vocab import vocab_ddl, vocab_fill

    if op.get_bind().dialect.name != "sqlite":
        return
    for table, fields in _searchable().items():
        for statement in [*vocab_ddl(table, fields), *vocab_fill(table, fields)]:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, fields in _searchable().items():
        fts, cols = f"{table}_fts", ", ".join(fields)
        new = ", ".join(f"new.{f}" for f in fields)
        old = ", ".join(f"old.{f}" for f in fields)
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {fts}_vocab")
        op.execute(
            f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols} ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); "
            f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END"
        )
