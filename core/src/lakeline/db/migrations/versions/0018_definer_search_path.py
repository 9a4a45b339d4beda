"""PostgreSQL: every SECURITY DEFINER function of the catalog searches pg_catalog first and
the session's temporary schema last

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 02:00:00.000000

The functions that run with the owner's rights (the audit and its chaining at commit, 0009/
0014/0017; `lakeline_spaces`, 0008; `lakeline_grant`/`lakeline_revoke`, 0007) had
`search_path = public, pg_catalog`: `public` before `pg_catalog`, and the session's `pg_temp`
implicitly first for tables. A role that may CREATE in `public` (every role before PostgreSQL
15 unless revoked) could define `public.sha256(bytea)` or `public.encode(bytea, text)` and have
it run with the owner's rights inside the audit chaining (forge the chain, or anything the
owner may do); any session could shadow `audit_log` with a temporary table. Now
`pg_catalog, public, pg_temp` (PostgreSQL's advice for SECURITY DEFINER): built-ins and the
catalog's own tables win. Functions the definers call (the digest and chain step functions)
run under the definer's setting. The per-table audit functions are made with it by
`access/audit_pg.py` (after every migration); here every SECURITY DEFINER function of the
schema is altered in place. Downgrade: 0017's `public, pg_catalog`. SQLite: nothing.
"""

from __future__ import annotations

from alembic import op
from lakeline.db.pg_helpers import in_catalog_schema
from sqlalchemy import text

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SAFE = "pg_catalog, public, pg_temp"
OLD = "public, pg_catalog"


def _definers() -> list[str]:
    rows = op.get_bind().execute(
        text(
            "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p "
            "WHERE p.pronamespace = current_schema()::regnamespace AND p.prosecdef ORDER BY 1"
        )
    )
    return [str(r[0]) for r in rows]


def _set(path: str) -> None:
    for function in _definers():
        op.execute(
            in_catalog_schema(op.get_bind(), f"ALTER FUNCTION {function} SET search_path = {path}")
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _set(SAFE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _set(OLD)
