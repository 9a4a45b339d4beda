"""PostgreSQL audit: each table's UPDATE audit with static SQL, the chaining at commit planned
once per session

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:00:00.000000

- Every audited table's `lakeline_audit_update` trigger runs a function of its own,
  `lakeline_audit_update_<table>()` (`lakeline.access.audit_pg`): the query 0009's generic
  function built with `format()` and EXECUTE on every call, written out for the table's columns
  (planned once per session; columns compared as they are, not as jsonb). Same entries.
  INSERT and DELETE keep `lakeline_audit('<keys>')`: static already.
- `lakeline_audit_chain()` runs with `plan_cache_mode = force_generic_plan`: its statement
  takes the transaction's first entry id, head seq and hash as parameters, and PL/pgSQL
  planned it again at every commit (a custom plan costs less than the generic one's estimate
  for `id >= $1`): ~300 us of server time per writing transaction. `enable_seqscan = off`
  keeps the generic plan on the primary key's range (what the custom plans chose), `jit = off`
  since that plan carries the disable cost (0011). `lakeline_audit()`: generic plans too (its
  one parameter is the table's name).
Downgrade: the generic UPDATE triggers again, the functions dropped, the settings reset.
SQLite: nothing.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SETTINGS = {
    "lakeline_audit_chain()": ("plan_cache_mode", "enable_seqscan", "jit"),
    "lakeline_audit()": ("plan_cache_mode",),
}
VALUES = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off", "jit": "off"}


def upgrade() -> None:
    from lakeline.access.audit_pg import install_update_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    install_update_audits(bind)
    for function, names in SETTINGS.items():
        for name in names:
            op.execute(f"ALTER FUNCTION {function} SET {name} = {VALUES[name]}")


def downgrade() -> None:
    from lakeline.access.audit_pg import remove_update_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    remove_update_audits(bind)
    for function, names in SETTINGS.items():
        for name in names:
            op.execute(f"ALTER FUNCTION {function} RESET {name}")
