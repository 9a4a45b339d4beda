"""SQLite: a new version of an artifact stays in its previous version's space

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 19:30:00.000000

PostgreSQL's `lakeline_version_space` trigger (0008) moves a new version inserted in `all`
(space 1) to the space of another version of its stem; SQLite had no such trigger: a new
version of an artifact moved with `lakeline space add` landed in `all`. The same trigger on
SQLite, a row trigger (SQLite has no statement-level ones): its WHEN clause skips a first
version (uid ending in `0000`) and a row given another space, so a save of new keys pays one
comparison a row; a new version one lookup by `stem` (indexed). PostgreSQL: nothing.
Downgrade: the trigger dropped.
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# the space of another version of the new row's stem that is not `all` (as 0008's trigger)
OTHER = "FROM artifacts p WHERE p.stem = NEW.stem AND p.id <> NEW.id AND p.space_id <> 1"
TRIGGER = (
    "CREATE TRIGGER lakeline_version_space AFTER INSERT ON artifacts "
    "WHEN NEW.space_id = 1 AND substr(NEW.uid, -4) <> '0000' BEGIN "
    f"UPDATE artifacts SET space_id = (SELECT p.space_id {OTHER} LIMIT 1) "
    f"WHERE id = NEW.id AND EXISTS (SELECT 1 {OTHER}); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER lakeline_version_space")
