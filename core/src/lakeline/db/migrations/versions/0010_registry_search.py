"""full-text search on every registry: the index artifacts have, for the other registries

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 06:40:00.000000

Each searchable registry gets what artifacts got in 0001 (`lakeline.search.search_index_ddl`):
on SQLite an external-content FTS5 table `<table>_fts` with three triggers, filled from the
rows the table holds; on PostgreSQL a generated tsvector column `search_vector` (computed for
existing rows by the ALTER) with a GIN index. No existing column changes. The fields are
written out here, as of this revision (a model's `search_fields` may change later, with a
migration of its own).
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FIELDS = {
    "transforms": ("key", "description", "reference"),
    "runs": ("engine", "engine_ref", "host", "error"),
    "collections": ("key", "description"),
    "features": ("name", "synonyms", "abbr", "description"),
    "ulabels": ("name", "synonyms", "abbr", "description"),
    "schemas": ("name", "description"),
    "storages": ("root",),
    "users": ("handle", "name"),
}


def upgrade() -> None:
    from lakeline.search import search_index_ddl

    dialect = op.get_bind().dialect.name
    for table, fields in FIELDS.items():
        for statement in search_index_ddl(table, fields, dialect, pg_function=False):
            op.execute(statement)


def downgrade() -> None:
    from lakeline.search import drop_search_index_ddl

    dialect = op.get_bind().dialect.name
    for table in FIELDS:
        for statement in drop_search_index_ddl(table, dialect):
            op.execute(statement)
