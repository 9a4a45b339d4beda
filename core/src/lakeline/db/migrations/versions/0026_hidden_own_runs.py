"""PostgreSQL: `lakeline_own_runs(ids)`, which of the caller's own runs exist whatever their space

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 05:00:00.000000

A BatchRecorder's look-up after a failed flush reads the runs its batch names; a role held to
spaces does not see a run an admin moved since to a space it is not in, and that run was
reported "deleted since" (a false fact; its steps left out for that reason). The function
(SECURITY DEFINER, search path pg_catalog only, every name qualified) answers, of the run ids
given, those that exist and that the calling role created (`lakeline_user_id()`): what the
role recorded itself, so it learns nothing of other roles' runs. Owned by the catalog's
owner, whoever migrates (a superuser's would run as a superuser). Downgrade: dropped. SQLite:
nothing (no spaces there).
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

FUNCTION = (
    "CREATE FUNCTION {h}.lakeline_own_runs(ids integer[]) RETURNS integer[] LANGUAGE sql "
    "STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS\n$$ "
    "SELECT pg_catalog.array_agg(r.id) FROM {s}.runs r "
    "WHERE r.id OPERATOR(pg_catalog.=) ANY (ids) "
    "AND r.created_by_id OPERATOR(pg_catalog.=) {h}.lakeline_user_id() $$"
)


def upgrade() -> None:
    from lakeline.db.pg_helpers import helpers

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = str(bind.exec_driver_sql("SELECT pg_catalog.current_schema()").scalar_one())
    catalog = bind.dialect.identifier_preparer.quote_schema(schema)
    schema_of = helpers(bind)
    bind.exec_driver_sql(FUNCTION.format(h=schema_of, s=catalog))
    # the owner's, as 0022 made its schema: a superuser may be migrating, and a SECURITY
    # DEFINER function of its would run as a superuser
    owner = bind.exec_driver_sql(
        "SELECT c.relowner::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_class c "
        "WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.quote_ident("
        "pg_catalog.current_schema()) OPERATOR(pg_catalog.||) '.artifacts')::pg_catalog.oid"
    ).scalar_one()
    bind.exec_driver_sql(
        f"ALTER FUNCTION {schema_of}.lakeline_own_runs(integer[]) OWNER TO {owner}"
    )


def downgrade() -> None:
    from lakeline.db.pg_helpers import helpers

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(f"DROP FUNCTION {helpers(bind)}.lakeline_own_runs(integer[])")
