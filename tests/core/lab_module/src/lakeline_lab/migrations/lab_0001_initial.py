"""The lab's biosamples and their artifact links.

Revision ID: lab_0001
The core is always migrated first (same transaction): no depends_on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from lakeline.modules import create_link_table, drop_link_table


def KEY(length: int) -> sa.types.TypeEngine[str]:
    """A string compared in code-point order (the "C" collation on PostgreSQL)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


revision = "lab_0001"
down_revision = None
branch_labels = ("lab",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lab_biosamples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", KEY(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("tissue", sa.String(128), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("synonyms", sa.Text(), nullable=True),
        sa.Column("abbr", sa.String(64), nullable=True),
        sa.UniqueConstraint("uid"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_lab_biosamples_created_at", "lab_biosamples", ["created_at"])
    op.create_index("ix_lab_biosamples_run_id", "lab_biosamples", ["run_id"])
    create_link_table(op, "lab_biosamples")


def downgrade() -> None:
    drop_link_table(op, "lab_biosamples")
    op.drop_table("lab_biosamples")
