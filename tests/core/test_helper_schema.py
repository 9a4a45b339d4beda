"""PostgreSQL: lakeline's functions live in a schema only the owner may CREATE in (migration
0022), so an overload a role defines in the catalog's schema makes no call of theirs ambiguous.

Before 0022 they lived in the catalog's schema and named each other by it
(`public.lakeline_user_id()`): a role that may CREATE there could define
`public.lakeline_user_id(extra integer DEFAULT 0)` and every call became "function ... is not
unique" (every write, grant, revoke, verify failed: a denial of service, no privilege gained).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access import spaces
from lakeline.access.audit import verify
from lakeline.access.roles import grant, revoke
from lakeline.instance import Instance, connect
from lakeline.testing import LoginRoles
from lakeline.testing_servers import PostgresServer
from sqlalchemy import text
from test_definer_overloads import down_and_up

pytestmark = pytest.mark.postgres

# lakeline's functions wherever they are: each one the catalog's owner owns named lakeline_*
# (not a trigger function: those are called by oid only, and take no declared arguments)
LAKELINE_FUNCTIONS = """
SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid)
FROM pg_proc p WHERE p.proname LIKE 'lakeline\\_%' AND p.prokind = 'f'
  AND p.prorettype <> 'pg_catalog.trigger'::regtype
  AND p.proowner = (SELECT relowner FROM pg_class WHERE oid = 'artifacts'::regclass)
ORDER BY 1
"""


def _file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(name)
    return path


def _overloads(owner: Instance) -> list[str]:
    """For each lakeline function, `public.<name>(<its arguments>, extra integer DEFAULT 0)`:
    a call naming the function the way lakeline does matches it as well as the real one."""
    with owner.engine.connect() as conn:
        rows = conn.execute(text(LAKELINE_FUNCTIONS)).all()
    statements = []
    for name, arguments, result in rows:
        arguments = f"{arguments}, " if arguments else ""
        statements.append(
            f"CREATE FUNCTION public.{name}({arguments}lakeline_extra integer DEFAULT 0) "
            f"RETURNS {result} LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'a writer''s overload ran'; END $$"
        )
    assert len(statements) > 15, statements
    return statements


def test_a_writers_overloads_in_the_catalogs_schema_stop_nothing(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A writer who may CREATE in `public` defines an overload of every lakeline function
    there; then the writer (held to a space) saves one by one and in bulk, edits, deletes;
    an admin grants and revokes and lists spaces; the owner verifies the audit chain: all of
    it works, and no overload ran."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    spaces.create(owner, "lab")
    writer_role, writer_url = login_roles.create("writer")
    admin_role, admin_url = login_roles.create("admin")
    other_role, _ = login_roles.create("other")
    grant(owner.engine, writer_role, "write")
    grant(owner.engine, admin_role, "admin")
    spaces.set_membership(owner.engine, writer_role, ["lab"])
    statements = _overloads(owner)
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    writer = login_roles.connect_as(writer_url, "writer")
    with writer.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))

    failed: list[str] = []

    def work(what: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as exc:  # collected: every step runs, the report names each
            failed.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0]}")

    root = tmp_path / "root"
    writer.register_storage(root)
    saved: list[ll.Artifact] = []
    work("save", lambda: saved.append(ll.Artifact(str(_file(root, "one.txt")), key="w/one.txt")
                                      .save()))  # fmt: skip
    work("bulk save", lambda: saved.extend(ll.save(
        [ll.Artifact(str(_file(root, f"{i}.txt")), key=f"w/{i}.txt") for i in range(40)]
    )))  # fmt: skip

    def edit() -> None:
        saved[0].description = "edited"
        saved[0].save()

    work("update", edit)
    work("delete", lambda: saved[1].delete())
    work("search", lambda: ll.Artifact.search("one").count())
    admin = login_roles.connect_as(admin_url, "admin")
    work("grant", lambda: grant(admin.engine, other_role, "read"))
    work("revoke", lambda: revoke(admin.engine, other_role))
    work("spaces", lambda: spaces.listing(admin))
    owner = connect("owner")
    work("verify", lambda: verify(owner))
    assert not failed, "the work failed:\n" + "\n".join(failed)
    with owner.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM artifacts WHERE key LIKE 'w/%'")).scalar()
    assert count == 40
    assert verify(owner).ok


def _relfilenodes(instance: Instance) -> dict[str, int]:
    with instance.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, relfilenode FROM pg_class "
                "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
            )
        ).all()
    return {str(n): int(f) for n, f in rows}


def test_a_populated_catalog_upgrades_to_0022_and_back_with_its_chain_verifying(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    """Saves, an edit and a delete at head; down to 0021 (a fresh 0021's schema, `pg_dump
    -s`), more work there; up again (a fresh head's schema) without rewriting any table (the
    search columns' functions moved, their oids kept), more saves: the chain verifies at every
    step."""
    down_and_up(tmp_path, postgres_url, postgres_server, "0021", _relfilenodes)


def test_only_the_owner_may_create_in_the_functions_schema(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The functions' schema: the owner's, USAGE for the read group (writers and admins hold
    it through it), nothing for PUBLIC; an admin may not CREATE there."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    admin_role, _ = login_roles.create("admin")
    reader_role, _ = login_roles.create("reader")
    grant(owner.engine, admin_role, "admin")
    grant(owner.engine, reader_role, "read")
    with owner.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT n.nspname, p.proname FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname LIKE 'lakeline%'"
            )
        ).all()
        assert {str(n) for n, _ in found} == {"lakeline_public"}
        may = conn.execute(
            text(
                "SELECT has_schema_privilege(r, 'lakeline_public', 'CREATE'), "
                "has_schema_privilege(r, 'lakeline_public', 'USAGE') FROM unnest(CAST(:roles "
                "AS text[])) AS r ORDER BY array_position(CAST(:roles AS text[]), r)"
            ),
            {"roles": [admin_role, reader_role]},
        ).all()
        public = conn.execute(
            text(
                "SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a "
                "WHERE n.nspname = 'lakeline_public' AND a.grantee = 0"
            )
        ).scalar()
    assert [tuple(r) for r in may] == [(False, True), (False, True)]
    assert public == 0
