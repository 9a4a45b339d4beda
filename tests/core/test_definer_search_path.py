"""PostgreSQL: the functions that run with the owner's rights (SECURITY DEFINER: the audit,
its chaining at commit, spaces, grant/revoke) search pg_catalog first and the session's
temporary schema last (migration 0018), and since 0020 pg_catalog only, so a role that may
create functions in `public` cannot have its own `sha256` run inside the owner's audit
chaining (tests/core/test_definer_overloads.py: nor any more specific overload)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import psycopg
import pytest
from alembic import command
from lakeline.access.audit import verify
from lakeline.access.roles import grant
from lakeline.db.migrate import alembic_config, migrating, upgrade
from lakeline.db.pg_helpers import LOCATE
from lakeline.instance import Instance
from lakeline.testing import LoginRoles
from sqlalchemy import text
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres

SAFE = "search_path=pg_catalog, pg_temp"


def _paths(instance: Instance) -> dict[str, str]:
    """Each SECURITY DEFINER function of the catalog's schema: its search_path setting."""
    with instance.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', "
                "(SELECT c FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%') "
                "FROM pg_proc p WHERE p.pronamespace IN (current_schema()::regnamespace, "
                f"to_regnamespace(({LOCATE}))) AND p.prosecdef"
            )
        ).all()
    return {str(name).replace(", ", ","): str(path) for name, path in rows}


def test_every_definer_function_searches_pg_catalog_first_and_pg_temp_last(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    at_head = _paths(instance)
    # the chaining, the grant functions, spaces and one audit function per audited table
    assert {"lakeline_audit_chain()", "lakeline_grant(text,text)", "lakeline_spaces()"} <= set(
        at_head
    )
    assert "lakeline_audited_artifacts()" in at_head
    assert set(at_head.values()) == {SAFE}

    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0017")
    assert set(_paths(instance).values()) == {"search_path=public, pg_catalog"}
    upgrade(instance.engine)
    assert _paths(instance) == at_head


def test_a_function_a_writer_defines_in_public_does_not_run_in_the_owners_chaining(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    role, url = login_roles.create("writer")
    grant(owner.engine, role, "write")
    # a catalog where anyone may create in public (PostgreSQL < 15's default)
    login_roles.admin_execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'hijacked as %', current_user; END $$"
        )
        # it is what an unqualified sha256 finds with `public` first in the path
        conn.execute("SET search_path = public, pg_catalog")
        with pytest.raises(psycopg.errors.RaiseException, match="hijacked"):
            conn.execute("SELECT sha256('x'::bytea)")

    login_roles.connect_as(url, "writer")
    source = tmp_path / "w.txt"
    source.write_text("written by the writer\n")
    saved = ll.Artifact(source, key="w.txt").save()  # chained at commit by the owner's function
    assert ll.Artifact.get(saved.uid).hash == saved.hash
    assert verify(ll.connect("owner")).ok
