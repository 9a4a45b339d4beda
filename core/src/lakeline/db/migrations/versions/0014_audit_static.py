"""PostgreSQL audit: each table's audit trigger function with static SQL, the chaining at commit
planned once per session

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:00:00.000000

- Every audited table's three `lakeline_audit_*` triggers run a function of its own,
  `lakeline_audited_<table>()` (`lakeline.access.audit_pg`): the UPDATE query 0009's generic
  function built with `format()` and EXECUTE on every call, written out for the table's columns
  (planned once per session; columns compared as they are, not as jsonb), and a statement that
  wrote no row returns before it registers the transaction for the chaining. Same entries.
- `lakeline_audit_chain()` runs with `plan_cache_mode = force_generic_plan`: its statement
  takes the transaction's first entry id, head seq and hash as parameters, and PL/pgSQL
  planned it again at every commit (a custom plan costs less than the generic one's estimate
  for `id >= $1`): ~300 us of server time per writing transaction. `enable_seqscan = off`
  keeps the generic plan on the primary key's range (what the custom plans chose), `jit = off`
  since that plan carries the disable cost (0011). It finds the entries it fills by their row
  address (`ctid`, a TID scan) instead of their id in the primary key. `lakeline_audit()`
  stays, unused, for the downgrade.
Downgrade: the generic triggers again, the tables' functions dropped, the settings reset.
SQLite: nothing.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

CHAIN = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off", "jit": "off"}
# the chaining statement (0009) finds each entry it fills again by its row address, not by
# a lookup of its id in the primary key (~2 us an entry less)
BY_ID_BY_CTID = (
    ("SELECT id, head_seq + row_number()", "SELECT ctid AS t, head_seq + row_number()"),
    ("SELECT NULL::bigint AS id, head_seq", "SELECT NULL::tid AS t, head_seq"),
    ("SELECT id, seq, lakeline_audit_digest(", "SELECT t, seq, lakeline_audit_digest("),
    ("SELECT id, seq, lakeline_chain(d)", "SELECT t, seq, lakeline_chain(d)"),
    ("SELECT id, seq, hash, lag(hash)", "SELECT t, seq, hash, lag(hash)"),
    ("WHERE f.id IS NOT NULL AND a.id = f.id", "WHERE f.t IS NOT NULL AND a.ctid = f.t"),
)


def _chain(upgrading: bool) -> None:
    """`lakeline_audit_chain()` made again with its statement's row matching swapped."""
    bind = op.get_bind()
    source = bind.exec_driver_sql(
        "SELECT prosrc FROM pg_proc WHERE proname = 'lakeline_audit_chain'"
    ).scalar_one()
    for by_id, by_ctid in BY_ID_BY_CTID:
        old, new = (by_id, by_ctid) if upgrading else (by_ctid, by_id)
        if old not in source:
            raise RuntimeError(f"lakeline_audit_chain() is not as expected: no {old!r}")
        source = source.replace(old, new)
    bind.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION lakeline_audit_chain() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = public, pg_catalog AS $chain$"
        + source.replace("%", "%%")
        + "$chain$"
    )


def upgrade() -> None:
    from lakeline.access.audit_pg import install_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    install_audits(bind)
    _chain(upgrading=True)
    for name, value in CHAIN.items():
        op.execute(f"ALTER FUNCTION lakeline_audit_chain() SET {name} = {value}")


def downgrade() -> None:
    from lakeline.access.audit_pg import remove_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    remove_audits(bind)
    _chain(upgrading=False)
    for name in CHAIN:
        op.execute(f"ALTER FUNCTION lakeline_audit_chain() RESET {name}")
