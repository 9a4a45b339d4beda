"""PostgreSQL: the audit's digest functions and `lakeline_user_id()` call pg_catalog's functions
and operator

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 02:00:00.000000

SQL and PL/pgSQL functions with the caller's search path (no setting: `audit verify` calls
the digests from its session, the chaining at commit under its pinned one): a role that may
CREATE in `public` (every role before PostgreSQL 15 unless revoked) could define
`public.convert_to(text, text)`, a better match than pg_catalog's `convert_to(text, name)` for
the untyped `'UTF8'`, or `public.=(varchar, name)`, an exact match for `lakeline_user_id()`'s
`handle = session_user`, and have it run as whoever verified the chain or called the
function (the owner too). Now `encode`, `sha256`, `convert_to` and `to_char` are pg_catalog's
in `lakeline_audit_digest`, `lakeline_audit_hash`, `lakeline_chain_step` and
`lakeline_chain_from_step` (the same functions: the same digests and chain), and the
comparison is `OPERATOR(pg_catalog.=)` on text. Each body is replaced (CREATE OR REPLACE from
its definition as the catalog holds it: same oid, the aggregates and callers untouched).
Downgrade: 0024's text again. SQLite: nothing (no such functions).
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

HASH = (
    ("encode(sha256(convert_to(", "pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to("),
)
# function (in the helpers' schema) -> (its text at 0024, at 0025)
PAIRS = {
    "lakeline_user_id()": (
        (
            "WHERE handle = session_user",
            "WHERE handle::pg_catalog.text OPERATOR(pg_catalog.=) session_user::pg_catalog.text",
        ),
    ),
    "lakeline_audit_digest(bigint,timestamptz,text,text,text,text,jsonb)": (
        *HASH,
        ("|| to_char(at AT TIME ZONE", "|| pg_catalog.to_char(at AT TIME ZONE"),
    ),
    "lakeline_audit_hash(text,bigint,timestamptz,text,text,text,text,jsonb)": HASH,
    "lakeline_chain_step(text,text)": HASH,
    "lakeline_chain_from_step(text,text,text)": HASH,
}


def _rewrite(upgrading: bool) -> None:
    from lakeline.db.pg_helpers import helpers

    bind = op.get_bind()
    schema = helpers(bind)
    for function, pairs in PAIRS.items():
        sql = "SELECT pg_catalog.pg_get_functiondef(%s::pg_catalog.regprocedure)"
        definition = str(bind.exec_driver_sql(sql, (f"{schema}.{function}",)).scalar_one())
        for old, new in pairs:
            before, after = (old, new) if upgrading else (new, old)
            if before not in definition:  # changed by hand since: not rewritten blindly
                raise RuntimeError(
                    f"migration 0025: {schema}.{function} does not hold {before!r} "
                    "(its definition differs from lakeline's); nothing was changed"
                )
            definition = definition.replace(before, after)
        bind.exec_driver_sql(definition.replace("%", "%%"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(False)
