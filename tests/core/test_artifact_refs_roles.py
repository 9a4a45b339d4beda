"""PostgreSQL: migration 0019's reference checks run with the owner's rights (SECURITY DEFINER),
as the foreign keys' checks did: with an owner that is no superuser, artifacts row-level
security hides from a writer still keep the storage and the space they name; and a writer's
overloads of built-ins in `public` never run inside the checks. (A role that may CREATE in
`public` - every role before PostgreSQL 15, or in a database pg_upgrade'd from one, unless
revoked - can define there an overload more specific than pg_catalog's polymorphic or variadic
built-in, `cardinality(integer[])` over `cardinality(anyarray)`, and PostgreSQL would call it,
as the owner, whatever the search_path's order: the checks name every built-in they call by
`pg_catalog.`, and their helper with exact argument types.)"""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access import spaces
from lakeline.access.roles import grant
from lakeline.instance import connect
from lakeline.testing import LoginRoles
from sqlalchemy import text
from sqlalchemy.engine import make_url
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


def test_artifacts_hidden_by_row_security_still_keep_their_storage_and_space(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    """The catalog made by an owner that is no superuser (row-level security applies to all but
    it): a writer held to space `lab` bulk-saves into a storage it registered (its rows staged,
    then one INSERT ... SELECT); the owner moves them to `atlas`. An admin held to `lab` sees
    none of them, and its deletes of the storage and of `atlas` are refused as the foreign
    keys refused them: the checks see every row, whoever runs the statement."""
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
        spaces.create(owner, "lab")
        spaces.create(owner, "atlas")
        held = {}
        for level in ("write", "admin"):
            role, held[level] = roles.create(level)
            grant(owner.engine, role, level)
            spaces.set_membership(owner.engine, role, ["lab"])
        roles.connect_as(held["write"], "writer")
        root = tmp_path / "other"
        root.mkdir()
        storage = connect("writer").register_storage(root)
        keys = [f"w/{i}.txt" for i in range(20)]
        files = [_file(root, f"{i}.txt") for i in range(20)]
        saved = ll.save([ll.Artifact(str(f), key=k) for f, k in zip(files, keys, strict=True)])
        assert {a.storage_id for a in saved} == {storage.id}
        assert spaces.move(connect("owner"), "atlas", keys=keys) == 20
        admin = roles.connect_as(held["admin"], "admin")
        assert ll.Artifact.filter(key__startswith="w/").count() == 0  # hidden from it
        for statement, constraint in (
            (f"DELETE FROM storages WHERE id = {storage.id}", "fk_artifacts_storage_id_storages"),
            ("DELETE FROM spaces WHERE name = 'atlas'", "artifacts_space_id_fkey"),
        ):
            with pytest.raises(IntegrityError) as caught, admin.engine.begin() as conn:
                conn.execute(text(statement))
            assert caught.value.orig.diag.constraint_name == constraint  # type: ignore[union-attr]
        assert connect("owner") and ll.Artifact.filter(key__startswith="w/").count() == 20
    finally:
        roles.admin_execute(f"ALTER DATABASE {database} OWNER TO CURRENT_USER")
        roles.admin_execute(*(f"DROP OWNED BY {r}" for r in roles.made))
        roles.admin_execute(*(f"DROP ROLE {r}" for r in roles.made))
