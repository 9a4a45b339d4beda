"""PostgreSQL: the schema of lakeline's functions (0022) belongs to the catalog's owner, whoever
runs the migration (a superuser upgrading an owner's catalog, as a DBA may)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
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
