"""PostgreSQL: each search column calls a function holding its expression

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 15:00:00.000000

PostgreSQL 15 reads a stored generated column's expression (pg_attrdef.adbin: 166,881
characters for runs', 116,071 for artifacts', 0013's folds) at the start of every UPDATE of its
table, whatever the statement sets and even for 0 rows: 0.4-0.6 ms of server CPU a statement
(a run's status, an artifact's is_latest, and ON DELETE SET NULL's two UPDATEs of runs for each
deleted artifact). Every lakeline search column (0013's form: the core's registries and any
module's made by `lakeline.search.search_index_ddl`) is made again as
`GENERATED ALWAYS AS (<schema>.lakeline_search_<table>(fields...)) STORED`: an IMMUTABLE plpgsql
function (`SET search_path = pg_catalog, pg_temp`, built-ins only, not SECURITY DEFINER) whose
body is the same expression, compiled once a session. The same vectors; the ALTER computes the
column for every row (a table rewrite) and the GIN index is built again, as 0013 did.
Downgrade: 0013's form exactly. SQLite: nothing.
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import text

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# 0013's expression (inline), and this one's (a call)
INLINE_MARK = "'[^0-9a-z]+'"
CALL_MARK = re.compile(r"\blakeline_search_(\w+)\(")


def _searchable(inline: bool) -> dict[str, list[str]]:
    """Each table of the current schema whose search column is lakeline's in one form: the
    columns its expression reads (PostgreSQL's dependencies), in the order it reads them."""
    rows = op.get_bind().execute(
        text(
            "SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) "
            "FROM pg_attrdef d "
            "JOIN pg_attribute g ON g.attrelid = d.adrelid AND g.attnum = d.adnum "
            "JOIN pg_class c ON c.oid = d.adrelid "
            "JOIN pg_depend p ON p.classid = 'pg_attrdef'::regclass AND p.objid = d.oid "
            "AND p.refclassid = 'pg_class'::regclass AND p.refobjid = d.adrelid "
            "AND p.refobjsubid > 0 AND p.refobjsubid <> d.adnum "
            "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = p.refobjsubid "
            "WHERE g.attname = 'search_vector' AND c.relnamespace = current_schema()::regnamespace "
            "ORDER BY c.relname"
        )
    )
    from lakeline.search import pg_search_function, pg_search_function_cut

    found: dict[str, list[tuple[int, str]]] = {}
    for table, field, expression in rows:
        call = CALL_MARK.search(expression)
        # the table's function: by its name, or by the name PostgreSQL cut (a long one)
        names = (pg_search_function(table), pg_search_function_cut(table))
        ours = call is not None and f"lakeline_search_{call[1]}" in names
        if (INLINE_MARK not in expression) if inline else not ours:
            continue
        at = re.search(rf'\b"?{re.escape(field)}"?\b', expression[call.end() if call else 0 :])
        found.setdefault(table, []).append((at.start() if at else len(expression), field))
    return {table: [field for _, field in sorted(fields)] for table, fields in found.items()}


def _rebuild(function: bool) -> None:
    from lakeline.search import drop_search_index_ddl, search_index_ddl

    if op.get_bind().dialect.name != "postgresql":
        return
    for table, fields in _searchable(inline=function).items():
        for statement in drop_search_index_ddl(table, "postgresql"):
            op.execute(statement)
        for statement in search_index_ddl(table, fields, "postgresql", pg_function=function):
            op.execute(statement)


def upgrade() -> None:
    _rebuild(function=True)


def downgrade() -> None:
    _rebuild(function=False)
