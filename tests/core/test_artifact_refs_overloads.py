"""PostgreSQL: migration 0019's reference checks run with the owner's rights (SECURITY DEFINER)
and search `pg_catalog, public, pg_temp`; a role that may CREATE in `public` (every role before
PostgreSQL 15, or in a database pg_upgrade'd from one, unless revoked) can define there an
overload of a built-in more specific than pg_catalog's polymorphic or variadic one
(`cardinality(integer[])` beats `cardinality(anyarray)`), and PostgreSQL would call it, as the
owner. The checks name every built-in they call by `pg_catalog.` (and their helper with exact
argument types): a writer's overloads never run inside them."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.roles import grant
from lakeline.testing import LoginRoles
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.postgres

# raises when called from inside 0019's functions (their names in the call stack), else no-op:
# lakeline's other functions are not what this test is about
CAUGHT = """
CREATE FUNCTION public.caught() RETURNS void LANGUAGE plpgsql AS $$
DECLARE stack text;
BEGIN
    GET DIAGNOSTICS stack = PG_CONTEXT;
    IF stack LIKE '%lakeline_artifact_ref%' THEN
        RAISE EXCEPTION 'a writer''s overload ran as %', current_user;
    END IF;
END $$
"""
# (signature, return type, body): each more specific than the pg_catalog function 0019 calls
OVERLOADS = [
    ("cardinality(a integer[])", "integer", "RETURN pg_catalog.cardinality(a);"),
    ("array_remove(a integer[], e integer)", "integer[]", "RETURN pg_catalog.array_remove(a, e);"),
    ("unnest(a integer[])", "SETOF integer", "RETURN QUERY SELECT pg_catalog.unnest(a);"),
    ("format(f text, a text)", "text", "RETURN pg_catalog.format(f, a);"),
    ("format(f text, a name)", "text", "RETURN pg_catalog.format(f, a);"),
    ("format(f text, a name, b text)", "text", "RETURN pg_catalog.format(f, a, b);"),
    ("format(f text, a integer)", "text", "RETURN pg_catalog.format(f, a);"),
    (
        "format(f text, a text, b integer, c text)",
        "text",
        "RETURN pg_catalog.format(f, a, b, c);",
    ),
    ("push(s integer[], v integer)", "integer[]", "RETURN pg_catalog.array_append(s, v);"),
    (
        "lakeline_artifact_ref_missing(s name, c text, t text, n text, i integer)",
        "void",
        "RETURN;",
    ),
]
AGGREGATE = "CREATE AGGREGATE public.array_agg(integer) (SFUNC = public.push, STYPE = integer[])"


def _file(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text(name)
    return path


def test_a_writers_overloads_in_public_never_run_inside_the_reference_checks(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A writer who may CREATE in `public` defines overloads of the built-ins 0019's checks call:
    its saves (the statement check), an update of a reference (the row check), a row naming a
    missing storage (the helper's error) and the delete of a storage artifacts name (the kept
    check) all behave as without them: nothing of the writer's runs as the owner."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    role, url = login_roles.create("writer")
    grant(owner.engine, role, "write")
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    writer = login_roles.connect_as(url, "writer")
    with writer.engine.begin() as conn:
        conn.execute(text(CAUGHT))
        for signature, returns, body in OVERLOADS:
            conn.execute(
                text(
                    f"CREATE FUNCTION public.{signature} RETURNS {returns} LANGUAGE plpgsql "
                    f"AS $$ BEGIN PERFORM public.caught(); {body} END $$"
                )
            )
        conn.execute(text(AGGREGATE))

    root = tmp_path / "other"
    root.mkdir()
    storage = writer.register_storage(root)
    saved = ll.save(
        [ll.Artifact(str(_file(root, f"{i}.txt")), key=f"w/{i}.txt") for i in range(20)]
    )
    assert {a.storage_id for a in saved} == {storage.id}
    with writer.engine.begin() as conn:  # the row check: its storage changed
        conn.execute(
            text("UPDATE artifacts SET storage_id = (SELECT min(id) FROM storages) WHERE id = :id"),
            {"id": saved[1].id},
        )
    with pytest.raises(IntegrityError) as caught, writer.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO artifacts (suffix, storage_id, store_key, in_place, uid, stem, "
                "created_at, is_latest, created_by_id) SELECT suffix, 987654, store_key, "
                "in_place, 'refsmissing00000', 'refsmissing0', created_at, true, created_by_id "
                "FROM artifacts WHERE id = :id"
            ),
            {"id": saved[0].id},
        )
    assert caught.value.orig.diag.constraint_name == "fk_artifacts_storage_id_storages"  # type: ignore[union-attr]
    with pytest.raises(IntegrityError) as caught, writer.engine.begin() as conn:
        conn.execute(text("DELETE FROM storages WHERE id = :s"), {"s": storage.id})
    assert "is still referenced" in str(caught.value.orig.diag.message_detail)  # type: ignore[union-attr]
    assert ll.Artifact.filter(key__startswith="w/").count() == 20
