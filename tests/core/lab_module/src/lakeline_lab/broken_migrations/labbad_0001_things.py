"""A table of things, with a row.

Revision ID: labbad_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "labbad_0001"
down_revision = None
branch_labels = ("labbad",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labbad_things",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(16), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), index=True),
        sa.Column("name", sa.String(64), nullable=False),
    )
    op.execute(
        "INSERT INTO labbad_things (uid, created_at, name) "
        "VALUES ('thing00000000001', CURRENT_TIMESTAMP, 'first')"
    )


def downgrade() -> None:
    op.drop_table("labbad_things")
