"""PostgreSQL: the schema of lakeline's functions (0022) belongs to the catalog's owner, whoever
runs the migration (a superuser upgrading an owner's catalog, as a DBA may)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.audit import verify
from lakeline.access.roles import grant
from lakeline.db.engine import make_engine
from lakeline.db.migrate import upgrade
from lakeline.db.pg_helpers import helpers
from lakeline.instance import connect, migrate
from lakeline.testing import LoginRoles
from sqlalchemy import text
from sqlalchemy.engine import make_url
from test_definer_overloads import _migrate

pytestmark = pytest.mark.postgres


def test_a_superuser_upgrading_an_owners_catalog_leaves_the_owner_its_functions_schema(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    """An owner that is no superuser makes its catalog at 0021; a superuser migrates it to
    0022; the schema of the functions is the owner's, and the owner's own `lakeline migrate`
    (the audit functions made again there) still works."""
    roles = LoginRoles(empty_postgres_url, [])
    database = make_url(empty_postgres_url).database
    owner_role, owner_url = roles.create("owner")
    roles.admin_execute(
        f"ALTER ROLE {owner_role} CREATEROLE",
        f"ALTER DATABASE {database} OWNER TO {owner_role}",
        f"ALTER SCHEMA public OWNER TO {owner_role}",
    )
    try:
        owner = ll.init(tmp_path / "data", db=owner_url, name="owner")
        _migrate(owner, "0021")
        engine = make_engine(empty_postgres_url)  # the superuser
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        owner = connect("owner")
        with owner.engine.connect() as conn:
            schema = helpers(conn)
            found = conn.execute(
                text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :s"),
                {"s": schema},
            ).scalar()
        assert schema == "lakeline_public" and found == owner_role
        migrate("owner")  # as the owner, at head
        assert ll.Artifact.filter().count() == 0
    finally:
        roles.admin_execute(f"ALTER DATABASE {database} OWNER TO CURRENT_USER")
        roles.admin_execute(*(f"DROP OWNED BY {r}" for r in roles.made))
        roles.admin_execute(*(f"DROP ROLE {r}" for r in roles.made))


def test_a_writers_operators_in_public_do_not_move_where_the_functions_are_found(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """`LOCATE` (grant, revoke, verify, the spaces check, DDL at head) compares a trigger's
    table, an oid, with a regclass: a writer who may CREATE in `public` defines `=(oid,
    regclass)` there, an exact match PostgreSQL picks over pg_catalog's oid = oid, true for
    every row: the lookup found every trigger's schema ("more than one row returned by a
    subquery"), grant and verify failed, and the writer's function ran in their sessions."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    writer_role, writer_url = login_roles.create("writer")
    other_role, _ = login_roles.create("other")
    grant(owner.engine, writer_role, "write")
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    writer = login_roles.connect_as(writer_url, "writer")
    with writer.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE public.ran (who text); GRANT INSERT ON public.ran TO PUBLIC; "
                "CREATE FUNCTION public.eq_or(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql "
                "AS $$ BEGIN INSERT INTO public.ran VALUES (session_user); RETURN true; END $$; "
                "CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, "
                "FUNCTION = public.eq_or)"
            )
        )
    owner = connect("owner")
    with owner.engine.connect() as conn:
        assert helpers(conn) == "lakeline_public"
    grant(owner.engine, other_role, "read")
    assert verify(owner).ok
    with owner.engine.connect() as conn:
        ran = conn.execute(text("SELECT DISTINCT who FROM public.ran")).scalars().all()
    assert ran == []
