"""PostgreSQL: `lakeline_default_space()` calls pg_catalog's operator and aggregate and names
its table by schema

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 23:00:00.000000

The default of `space_id` in artifacts, runs and ulabels (0008): a SQL function with the
caller's rights and search path, run by every role that inserts there (the owner too). Its
`role = session_user` compares a varchar with a name: a role that may CREATE in `public`
(every role before PostgreSQL 15 unless revoked) could define `public.=(varchar, name)`, an
exact match picked over pg_catalog's `=(text, name)` whatever the search path's order, and
have it run as whoever inserts next. Now the comparison is `OPERATOR(pg_catalog.=)` on text,
`min` is pg_catalog's and `space_members` is named by the catalog's schema (as 0022/0023 did
elsewhere). The same answer: the role's first space, else `all` (1).
PostgreSQL: the function's body replaced (same oid: the columns' defaults untouched).
Downgrade: 0023's text again (0008's body). SQLite: nothing (no such function).
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

FUNCTION = (
    "CREATE OR REPLACE FUNCTION {h}.lakeline_default_space() RETURNS integer LANGUAGE sql "
    "STABLE AS\n$${body}$$"
)
# 0008's body, as it wrote it (the downgrade's)
BODY_0023 = (
    " SELECT coalesce((SELECT min(space_id) FROM space_members WHERE role = session_user), 1) "
)
BODY = (
    " SELECT coalesce((SELECT pg_catalog.min(m.space_id) FROM {s}.space_members m"
    " WHERE m.role::pg_catalog.text OPERATOR(pg_catalog.=) session_user::pg_catalog.text), 1) "
)


def _function(body: str) -> None:
    from lakeline.db.pg_helpers import helpers

    bind = op.get_bind()
    schema = str(bind.exec_driver_sql("SELECT pg_catalog.current_schema()").scalar_one())
    catalog = bind.dialect.identifier_preparer.quote_schema(schema)
    sql = FUNCTION.format(h=helpers(bind), body=body.replace("{s}", catalog))
    bind.exec_driver_sql(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _function(BODY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _function(BODY_0023)
