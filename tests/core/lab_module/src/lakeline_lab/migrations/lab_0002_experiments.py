"""Experiments on biosamples; which biosample was taken from which.

Revision ID: lab_0002
Revises: lab_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def KEY(length: int) -> sa.types.TypeEngine[str]:
    """A string compared in code-point order (the "C" collation on PostgreSQL)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


revision = "lab_0002"
down_revision = "lab_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lab_experiments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", KEY(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("protocol", sa.String(128), nullable=True),
        sa.Column("biosample_id", sa.Integer, sa.ForeignKey("lab_biosamples.id"), nullable=True),
        sa.UniqueConstraint("uid"),
    )
    for column in ("created_at", "run_id", "name", "biosample_id"):
        op.create_index(f"ix_lab_experiments_{column}", "lab_experiments", [column])

    op.create_table(
        "lab_biosample_parents",
        sa.Column("child_id", sa.Integer,
                  sa.ForeignKey("lab_biosamples.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("parent_id", sa.Integer,
                  sa.ForeignKey("lab_biosamples.id", ondelete="CASCADE"), primary_key=True),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("lab_biosample_parents")
    op.drop_table("lab_experiments")
