"""Changes a core table and a table of its own, then fails half-way.

Revision ID: labbad_0002
Revises: labbad_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "labbad_0002"
down_revision = "labbad_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("labbad_more", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("UPDATE settings SET value = 'overwritten' WHERE key = 'instance_name'")
    op.execute("DELETE FROM labbad_things")
    op.execute("SELECT no_such_column FROM labbad_things")  # fails: nothing may remain


def downgrade() -> None:
    op.drop_table("labbad_more")
