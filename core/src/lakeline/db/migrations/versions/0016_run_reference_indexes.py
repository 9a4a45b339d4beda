"""Indexes on the runs' references that deleting an artifact or a run follows

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 18:45:00.000000

`runs.report_id` and `runs.environment_id` (ON DELETE SET NULL to artifacts) and
`runs.cached_from_id` (to runs) had no index: deleting one artifact made both databases read
every run twice to find those pointing at it, deleting a run once. Partial indexes on the rows
that hold a reference (most runs hold none): a few pages, no cost to a run without one. Both
databases use them for the foreign key's own `... WHERE report_id = ?` (the equality implies
NOT NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = ("report_id", "environment_id", "cached_from_id")


def upgrade() -> None:
    for column in COLUMNS:
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_runs_{column}", "runs", [column], sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_runs_{column}", table_name="runs")
