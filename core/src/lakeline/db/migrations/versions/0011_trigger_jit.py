"""trigger functions that turn nested loops off turn JIT off too (PostgreSQL)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 09:55:00.000000

`lakeline_audit()` (0009) and `lakeline_check_creator()` (0006) run with
`enable_nestloop = off` so that large UPDATEs join their transition tables by hash. A plan
that still needs a nested loop (the audit's LATERAL over each row's keys) then carries the
planner's disable cost, far above `jit_above_cost`, and PostgreSQL JIT-compiled the audit
query of every UPDATE: ~0.3 s per statement, a one-row UPDATE of a run 400 ms instead of
2 ms. JIT buys nothing for these statements: both functions run with `jit = off`.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FUNCTIONS = ("lakeline_audit()", "lakeline_check_creator()")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} SET jit = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} RESET jit")
