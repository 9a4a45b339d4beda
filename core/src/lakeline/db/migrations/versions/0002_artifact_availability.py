"""artifacts.available: records of data lakeline knows of but holds no bytes for

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000

A plain `ADD COLUMN` on both databases (NOT NULL with a server default: existing rows become
available), so SQLite's `artifacts` table is not rebuilt and its FTS5 triggers stay. The
partial index serves the lookups a save makes for references at a file's location; it stays
empty while an instance holds no references.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNAVAILABLE = "NOT available"


def upgrade() -> None:
    op.add_column(
        "artifacts",
        sa.Column("available", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.create_index(
        "ix_artifacts_unavailable",
        "artifacts",
        ["storage_id", "store_key"],
        unique=False,
        sqlite_where=sa.text(UNAVAILABLE),
        postgresql_where=sa.text(UNAVAILABLE),
    )


def downgrade() -> None:
    op.drop_index("ix_artifacts_unavailable", table_name="artifacts")
    op.drop_column("artifacts", "available")  # SQLite >= 3.35: ALTER TABLE ... DROP COLUMN
