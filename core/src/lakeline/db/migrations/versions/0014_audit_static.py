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
  address (`ctid`, a TID scan) instead of their id in the primary key.
- `lakeline_audit()` stays for tables without a primary key and the downgrade; it now reads
  the row as `to_jsonb(n.*)`: `to_jsonb(n)` took a column named `n` (or `o`) for the row.
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
CHAIN_BY_CTID = (
    ("SELECT id, head_seq + row_number()", "SELECT ctid AS t, head_seq + row_number()"),
    ("SELECT NULL::bigint AS id, head_seq", "SELECT NULL::tid AS t, head_seq"),
    ("SELECT id, seq, lakeline_audit_digest(", "SELECT t, seq, lakeline_audit_digest("),
    ("SELECT id, seq, lakeline_chain(d)", "SELECT t, seq, lakeline_chain(d)"),
    ("SELECT id, seq, hash, lag(hash)", "SELECT t, seq, hash, lag(hash)"),
    ("WHERE f.id IS NOT NULL AND a.id = f.id", "WHERE f.t IS NOT NULL AND a.ctid = f.t"),
)
# 0009's generic function (tables without a primary key, the downgrade): `to_jsonb(n)` read a
# column named `n` (or `o`) instead of the row ("cannot delete from scalar"); `n.*` is the row
ROW_NOT_COLUMN = (("to_jsonb(n)", "to_jsonb(n.*)"), ("to_jsonb(o)", "to_jsonb(o.*)"))


def _rewrite(function: str, pairs: tuple[tuple[str, str], ...], upgrading: bool) -> None:
    """`function` made again (its definition as the catalog holds it, settings included)
    with each pair's first text replaced by its second (the other way when downgrading)."""
    bind = op.get_bind()
    definition = bind.exec_driver_sql(
        f"SELECT pg_get_functiondef('{function}()'::regprocedure)"
    ).scalar_one()
    for before, after in pairs:
        old, new = (before, after) if upgrading else (after, before)
        if old not in definition:
            raise RuntimeError(f"{function}() is not as expected: no {old!r}")
        definition = definition.replace(old, new)
    bind.exec_driver_sql(definition.replace("%", "%%"))  # as stored: no bind parameters


def upgrade() -> None:
    from lakeline.access.audit_pg import install_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    install_audits(bind)
    _rewrite("lakeline_audit_chain", CHAIN_BY_CTID, upgrading=True)
    _rewrite("lakeline_audit", ROW_NOT_COLUMN, upgrading=True)
    for name, value in CHAIN.items():
        op.execute(f"ALTER FUNCTION lakeline_audit_chain() SET {name} = {value}")


def downgrade() -> None:
    from lakeline.access.audit_pg import remove_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    remove_audits(bind)
    _rewrite("lakeline_audit_chain", CHAIN_BY_CTID, upgrading=False)
    _rewrite("lakeline_audit", ROW_NOT_COLUMN, upgrading=False)
    for name in CHAIN:
        op.execute(f"ALTER FUNCTION lakeline_audit_chain() RESET {name}")
