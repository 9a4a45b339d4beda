"""runs.pid, runs.process_started_at: which process runs a run, to tell dead runs from live ones

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 04:00:00.000000

Plain nullable `ADD COLUMN`s (existing runs recorded no process: their liveness is unknown),
and a partial index over the runs still `started`, which `lakeline runs --stale` reads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STARTED = "status = 'started'"


def upgrade() -> None:
    op.add_column("runs", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column(
        "runs", sa.Column("process_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_runs_started",
        "runs",
        ["host"],
        unique=False,
        sqlite_where=sa.text(STARTED),
        postgresql_where=sa.text(STARTED),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_started", table_name="runs")
    op.drop_column("runs", "process_started_at")
    op.drop_column("runs", "pid")
