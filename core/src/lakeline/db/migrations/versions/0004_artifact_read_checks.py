"""artifacts.store_tag: what every read checks (with the size) before trusting stored bytes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 04:00:00.000000

The stored object's modification time (local storage) or ETag (object stores) as written at
save time. A plain nullable `ADD COLUMN` on both databases (SQLite's `artifacts` table is not
rebuilt, its FTS5 triggers stay); existing rows keep NULL and are checked by size only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("artifacts", sa.Column("store_tag", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("artifacts", "store_tag")  # SQLite >= 3.35: ALTER TABLE ... DROP COLUMN
