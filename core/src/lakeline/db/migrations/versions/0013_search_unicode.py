"""PostgreSQL's search column reads non-ASCII letters as FTS5 does, in any locale

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:00:00.000000

`search_vector` read punctuation as spaces with `[^[:alnum:]]`, which the C locale limits to
ASCII: 'aü µl' was indexed as 'a l', so `ü` or `µl` found nothing. Every table with a
`search_vector` column (the core's registries and any module's, found in the catalog, its fields
read from the column's expression) gets it again from `lakeline.search.search_index_ddl`:
FTS5's unicode61 separators and folds, whatever the locale. The ALTER computes the column for
every row (a table rewrite) and the GIN index is built again. Downgrade: the old expression
(artifacts': 0001's).
SQLite: nothing (FTS5 tokenizes as before).
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import text

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD_FIELD = "coalesce(regexp_replace(left({f}, 100000), '[^[:alnum:]]+', ' ', 'g'), '')"
# artifacts' column as 0001 made it (its description was not split at punctuation)
OLD_ARTIFACTS = (
    "coalesce(regexp_replace(key, '[^[:alnum:]]+', ' ', 'g'), '') || ' ' || "
    "coalesce(description, '')"
)


# what tells lakeline's search column (search_index_ddl's) from another one: its old expression
# splits words with this class, its new one reads ASCII text with this one
OLD_MARK = "'[^[:alnum:]]+'"
NEW_MARK = "'[^0-9a-z]+'"


def _searchable(mark: str) -> dict[str, list[str]]:
    """Each table of the current schema whose search column is lakeline's (its expression
    holds `mark`): the columns its expression reads (PostgreSQL's dependencies), in the order
    the expression reads them. Another `search_vector` (a module's own, made by hand, its table
    perhaps named as search_index_ddl refuses) is left as it is."""
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
    found: dict[str, list[tuple[int, str]]] = {}
    for table, field, expression in rows:
        if mark not in expression:
            continue
        at = re.search(rf'\b"?{re.escape(field)}"?\b', expression)
        found.setdefault(table, []).append((at.start() if at else len(expression), field))
    return {table: [field for _, field in sorted(fields)] for table, fields in found.items()}


def _rebuild(old: bool) -> None:
    from lakeline.search import drop_search_index_ddl, search_index_ddl

    if op.get_bind().dialect.name != "postgresql":
        return
    for table, fields in _searchable(NEW_MARK if old else OLD_MARK).items():
        for statement in drop_search_index_ddl(table, "postgresql"):
            op.execute(statement)
        statements = search_index_ddl(table, fields, "postgresql", pg_function=False)
        if old:
            document = " || ' ' || ".join(OLD_FIELD.format(f=f'"{f}"') for f in fields)
            if table == "artifacts" and fields == ["key", "description"]:
                document = OLD_ARTIFACTS
            statements[0] = (
                f"ALTER TABLE {table} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
                f"to_tsvector('simple'::regconfig, {document})) STORED"
            )
        for statement in statements:
            op.execute(statement)


def upgrade() -> None:
    _rebuild(old=False)


def downgrade() -> None:
    _rebuild(old=True)
