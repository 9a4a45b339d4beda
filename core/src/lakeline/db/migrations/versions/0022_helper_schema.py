"""PostgreSQL: lakeline's functions in a schema only the owner may CREATE in

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 17:00:00.000000

Since 0020 the catalog's functions name each other by schema (`public.lakeline_user_id()`),
but they lived in the catalog's schema: a role that may CREATE there (every role before
PostgreSQL 15, or in a database pg_upgrade'd from one, unless revoked) could define
`public.lakeline_audit_digest(..., extra integer DEFAULT 0)` (or `lakeline_user_id(integer
DEFAULT 0)`, ...) and every call became "function ... is not unique": every write of every
role failed (the chaining at commit, the creator and delete checks), grant, revoke and
`audit verify` too. No privilege was gained; the catalog stopped.

Every function of the catalog named `lakeline_*` and owned by its owner (aggregates too; the
audited tables' and the search columns' included) moves to `lakeline_<schema>`
(`lakeline.db.pg_helpers.helper_schema`), made here, owned by the owner, nothing for PUBLIC and
USAGE for the read group (the write and admin groups hold it through it). `ALTER ... SET
SCHEMA` keeps each function's oid: triggers, column defaults, policies and the generated search
columns are bound to it, not to its name, so nothing is made again and no table is rewritten
(their relfilenodes are the same before and after; tests/core/test_helper_schema.py). The
calls by name in the functions' bodies (`public.lakeline_` in 0020's, 0014's unqualified
`lakeline_audit_digest` in `lakeline_audit_hash`) name the new schema; so do lakeline's own
calls from Python (grant, revoke, the audit's verify, spaces) and the DDL it makes at head
(`access/audit_pg.function_sql`, `search.search_index_ddl`, module triggers).
The delete check refuses a non-admin a record whose creator is NULL (the owner's: a role with
no `users` row deleted those, `NULL IS DISTINCT FROM NULL` being false).
Downgrade: each function back in the catalog's schema with 0021's text, the schema dropped
(0021 exactly: pg_dump -s equal). SQLite: nothing.
"""

from __future__ import annotations

import re

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# lakeline's functions of the catalog's schema {s}, owned by the owner of its tables. Every
# operator and function pg_catalog's (as in the other queries here): `oid = regnamespace`,
# `oid = regclass`, `name LIKE name` have no exact match there, a writer's in `public` would
# be one, picked and run in the migration's session (as the owner), or stop it
OWN = (
    "SELECT pg_catalog.quote_ident(p.proname) OPERATOR(pg_catalog.||) '(' "
    "OPERATOR(pg_catalog.||) pg_catalog.pg_get_function_identity_arguments(p.oid) "
    "OPERATOR(pg_catalog.||) ')', p.prokind, p.oid, p.proname FROM pg_catalog.pg_proc p "
    "WHERE p.pronamespace OPERATOR(pg_catalog.=) "
    "pg_catalog.to_regnamespace(%(source)s)::pg_catalog.oid "
    "AND p.proname::pg_catalog.text OPERATOR(pg_catalog.~~) 'lakeline\\_%%'::pg_catalog.text "
    "AND p.proowner OPERATOR(pg_catalog.=) (SELECT c.relowner FROM pg_catalog.pg_class c "
    "WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%(catalog)s)::pg_catalog.oid) "
    "ORDER BY 1"
)
# function -> (its text at 0021, at 0022; {h}: the helpers' schema)
PAIRS = {
    # a call named without a schema (resolved by the caller's search_path: it has no setting,
    # so that `verify`'s query inlines it)
    "lakeline_audit_hash": (("|| lakeline_audit_digest(", "|| {h}.lakeline_audit_digest("),),
    # a record without a creator is the owner's: only an admin deletes it (a role without a
    # `users` row deleted those: `NULL IS DISTINCT FROM NULL` is false)
    "lakeline_check_delete": (
        (
            "FROM old_rows WHERE created_by_id IS DISTINCT FROM me LIMIT 1;",
            "FROM old_rows WHERE created_by_id IS NULL OR created_by_id IS DISTINCT FROM me "
            "LIMIT 1;",
        ),
    ),
}


def _schemas() -> tuple[str, str]:
    """The catalog's schema and its helpers', each quoted where needed."""
    from lakeline.db.pg_helpers import helper_schema

    bind = op.get_bind()
    schema = str(bind.exec_driver_sql("SELECT pg_catalog.current_schema()").scalar_one())
    preparer = bind.dialect.identifier_preparer
    return preparer.quote_schema(schema), preparer.quote_schema(helper_schema(schema))


def _move(source: str, target: str, catalog: str) -> list[tuple[int, str]]:
    """Every lakeline function of schema `source` into `target` (oids kept); the oid and
    name of those that are not aggregates."""
    bind = op.get_bind()
    rows = bind.exec_driver_sql(OWN, {"source": source, "catalog": f"{catalog}.artifacts"}).all()
    for signature, kind, _, _ in rows:
        what = "AGGREGATE" if kind == "a" else "FUNCTION"
        bind.exec_driver_sql(f"ALTER {what} {source}.{signature} SET SCHEMA {target}")
    return [(int(oid), str(name)) for _, kind, oid, name in rows if kind == "f"]


def _rewrite(functions: list[tuple[int, str]], old: str, new: str, upgrading: bool) -> None:
    """Each of `functions` made again with its calls by `old` named by `new` (and
    PAIRS), its header (`CREATE OR REPLACE FUNCTION <schema>.<name>(...)`)
    kept."""
    bind = op.get_bind()
    for oid, name in functions:
        definition = str(
            bind.exec_driver_sql(
                f"SELECT pg_catalog.pg_get_functiondef({oid}::pg_catalog.oid)"
            ).scalar_one()
        )
        header, _, body = definition.partition("\n")
        before = body
        for first, second in PAIRS.get(name, ()):
            pair = (first.format(h=new), second.format(h=new))
            if not upgrading:
                pair = (second.format(h=old), first.format(h=old))
            if pair[0] not in body:
                raise RuntimeError(f"{name} is not as expected: {pair[0]!r}")
            body = body.replace(*pair)
        # `public.` but not `lakeline_public.`
        body = re.sub(rf'(?<![\w$"]){re.escape(old)}\.lakeline_', f"{new}.lakeline_", body)
        if body != before:  # as stored: no bind parameters
            bind.exec_driver_sql((header + "\n" + body).replace("%", "%%"))


def _usage(helpers: str, catalog: str) -> None:
    """USAGE on the helpers' schema for the read group settings name (if it exists yet:
    `setup_roles` grants it when it makes the groups)."""
    bind = op.get_bind()
    group = bind.exec_driver_sql(
        f"SELECT s.value FROM {catalog}.settings s "
        "WHERE s.key::pg_catalog.text OPERATOR(pg_catalog.=) 'role_read'::pg_catalog.text "
        "AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r "
        "WHERE r.rolname::pg_catalog.text OPERATOR(pg_catalog.=) s.value::pg_catalog.text)"
    ).scalar()
    if group is not None:
        role = bind.dialect.identifier_preparer.quote(str(group))
        bind.exec_driver_sql(f"GRANT USAGE ON SCHEMA {helpers} TO {role}")


def _not_taken(helpers: str, owner: str) -> None:
    """LakelineError naming the schema's owner and what to do when `helpers` exists already
    (a role that may CREATE in the database made it: its functions, or grants on it, would
    sit where lakeline's must be the owner's alone)."""
    from lakeline.errors import LakelineError

    bind = op.get_bind()
    maker = bind.exec_driver_sql(
        "SELECT n.nspowner::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_namespace n "
        "WHERE n.oid OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(%(s)s)::pg_catalog.oid",
        {"s": helpers},
    ).scalar()
    if maker is not None:
        raise LakelineError(
            f"cannot upgrade to 0022: schema {helpers} exists already, owned by role {maker}; "
            f"lakeline keeps its functions there, made by the catalog's owner ({owner}) so "
            "that no other role may create in it. Check what it holds, then as its owner or a "
            f"superuser `DROP SCHEMA {helpers}` (or rename it) and migrate again"
        )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    catalog, helpers = _schemas()
    # the owner's (the catalog's tables' owner: a superuser may be migrating, and the owner
    # makes functions there later); fails if another role made it first
    owner = bind.exec_driver_sql(
        "SELECT c.relowner::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_class c "
        "WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%(t)s)::pg_catalog.oid",
        {"t": f"{catalog}.artifacts"},
    ).scalar_one()
    _not_taken(helpers, owner)
    bind.exec_driver_sql(f"CREATE SCHEMA {helpers} AUTHORIZATION {owner}")
    bind.exec_driver_sql(f"REVOKE ALL ON SCHEMA {helpers} FROM PUBLIC")
    _usage(helpers, catalog)
    functions = _move(catalog, helpers, catalog)
    _rewrite(functions, catalog, helpers, upgrading=True)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    catalog, helpers = _schemas()
    functions = _move(helpers, catalog, catalog)
    _rewrite(functions, helpers, catalog, upgrading=False)
    bind.exec_driver_sql(f"DROP SCHEMA {helpers}")
