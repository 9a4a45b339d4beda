"""PostgreSQL: what any role may make without CREATE anywhere (temporary tables, and triggers
on them: PUBLIC's TEMP privilege) never reaches past lakeline's checks (migration 0020).

A writer's temporary tables never stand in for the catalog's inside the identity and delete
checks.
Those checks (0006/0007: a row created in another user's name, a change of another user's
`users` row, a delete of another user's record without the admin role) run with the caller's
rights, and before 0020 with the caller's search_path. Every role may create temporary tables
(PostgreSQL's default TEMP privilege), and pg_temp is searched first for relations unless listed
later: a writer's temporary `users` made `lakeline_user_id()` answer another user's id, and a
temporary `pg_roles` (with pg_temp listed before pg_catalog) made it a superuser to the checks.
Since 0020 they search `pg_catalog, pg_temp` and name the catalog's tables by schema.

No role but the owner may hang a SECURITY DEFINER trigger function on a table of its own:
PostgreSQL checks EXECUTE when a trigger is made, never when it fires, and 0019 left EXECUTE
to PUBLIC - 0009's `lakeline_audit('<keys>')` formats its argument into the SQL it EXECUTEs,
so a reader's temporary table ran any statement as the owner."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.roles import grant
from lakeline.db.pg_helpers import LOCATE
from lakeline.errors import PermissionDenied
from lakeline.instance import connect
from lakeline.testing import LoginRoles
from sqlalchemy import text

pytestmark = pytest.mark.postgres

# what the writer's session holds before its statement: a stand-in for the catalog's table
STAND_INS = {
    "users": (
        "CREATE TEMP TABLE users ON COMMIT DROP AS "
        "SELECT CAST(:victim AS integer) AS id, session_user::text AS handle",
    ),
    "pg_roles": (
        "SET LOCAL search_path = pg_temp, pg_catalog, public",
        "CREATE TEMP TABLE pg_roles ON COMMIT DROP AS "
        "SELECT session_user AS rolname, true AS rolsuper",
    ),
}
# (stand-in, what the writer tries, the statement): each refused (42501) as without it
ATTACKS = [
    ("users", "delete another user's artifact", "DELETE FROM public.artifacts WHERE id = :own"),
    (
        "users",
        "create a label in another user's name",
        "INSERT INTO public.ulabels (name, uid, is_type, created_at, created_by_id) "
        "VALUES ('forged', 'forgedlabel00000', false, now(), :victim)",
    ),
    ("pg_roles", "delete as an admin", "DELETE FROM public.artifacts WHERE id = :own"),
    (
        "pg_roles",
        "change another user's users row",
        "UPDATE public.users SET name = 'not alice' WHERE id = :victim",
    ),
]


def test_a_writers_temporary_tables_never_stand_in_for_the_catalogs_in_the_checks(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """Alice saves an artifact; Mallory, a writer with PostgreSQL 15's default privileges (no
    CREATE anywhere, TEMP on the database), makes a temporary `users` naming her id, or a
    temporary `pg_roles` calling her a superuser, and tries to delete Alice's artifact, to
    create a record in Alice's name, and to change Alice's `users` row: each is refused, as
    without the stand-in, and Alice's rows are as they were."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    alice_role, alice_url = login_roles.create("alice")
    mallory_role, mallory_url = login_roles.create("mallory")
    grant(owner.engine, alice_role, "write")
    grant(owner.engine, mallory_role, "write")
    login_roles.connect_as(alice_url, "alice")
    (tmp_path / "a.txt").write_text("alice's")
    saved = ll.Artifact(str(tmp_path / "a.txt"), key="alice.txt").save()
    victim = saved.created_by_id
    mallory = login_roles.connect_as(mallory_url, "mallory")

    done: list[str] = []
    for stand_in, what, statement in ATTACKS:
        values = {"victim": victim, "own": saved.id}
        try:
            with mallory.engine.begin() as conn:
                for setup in STAND_INS[stand_in]:
                    conn.execute(text(setup), values)
                conn.execute(text(statement), values)
        except PermissionDenied:  # 42501 from the check
            continue
        done.append(f"{what} (a temporary {stand_in})")
    assert not done, "a writer's temporary table got past the checks: " + "; ".join(done)

    connect("owner")
    with owner.engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM users WHERE id = :v"), {"v": victim})
        forged = conn.execute(text("SELECT count(*) FROM ulabels WHERE name = 'forged'"))
        assert name.scalar_one() != "not alice" and forged.scalar_one() == 0
    assert ll.Artifact.get(saved.uid).key == "alice.txt"


# the argument closes 0009's `USING (%s)` and its statement, adds one of the reader's, and opens
# a query the rest of the statement completes
INJECTED = (
    "id) OFFSET 0) p, LATERAL (SELECT NULL::jsonb AS d) c WHERE false; "
    "INSERT INTO public.settings (key, value) VALUES ('taken', current_user); "
    "SELECT 1 FROM (SELECT NULL::jsonb AS o, NULL::jsonb AS n FROM (SELECT 1 AS id) o "
    "JOIN (SELECT 1 AS id) n USING (id"
)


def test_no_role_hangs_the_owners_trigger_functions_on_a_table_of_its_own(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A reader makes a temporary table and, on it, a trigger calling each SECURITY DEFINER
    trigger function (0009's generic audit with a crafted argument among them): each CREATE
    TRIGGER is refused, and the crafted statement never ran as the owner; the catalog's own
    triggers still fire for a writer (its save is audited and chained)."""
    from lakeline.access.audit import verify

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    with owner.engine.connect() as conn:
        functions = (
            conn.execute(
                text(
                    "SELECT p.oid::regprocedure::text FROM pg_proc p "
                    f"WHERE p.pronamespace = to_regnamespace(({LOCATE})) AND p.prosecdef "
                    "AND p.prorettype = 'trigger'::regtype ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
    assert {"lakeline_public.lakeline_audit()", "lakeline_public.lakeline_audit_chain()"} <= set(
        functions
    )
    reader_role, reader_url = login_roles.create("reader")
    writer_role, writer_url = login_roles.create("writer")
    grant(owner.engine, reader_role, "read")
    grant(owner.engine, writer_role, "write")
    reader = login_roles.connect_as(reader_url, "reader")

    hung: list[str] = []
    for function in functions:
        call = function  # the generic audit: with the crafted argument
        if function == "lakeline_public.lakeline_audit()":
            call = "lakeline_public.lakeline_audit('{}')".format(INJECTED.replace("'", "''"))
        try:
            with reader.engine.begin() as conn:
                conn.execute(text("CREATE TEMP TABLE t (id integer PRIMARY KEY, x integer)"))
                conn.execute(
                    text(
                        "CREATE TRIGGER t AFTER UPDATE ON t REFERENCING OLD TABLE AS old_rows "
                        f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {call}"
                    )
                )
                conn.execute(text("INSERT INTO t VALUES (1, 1)"))
                conn.execute(text("UPDATE t SET x = 2"))
                conn.execute(text("DROP TABLE t"))
        except PermissionDenied:
            continue
        except Exception as exc:  # any other failure: the trigger was made
            hung.append(f"{function}: {type(exc).__name__}")
            continue
        hung.append(function)
    assert not hung, f"a reader's trigger runs the owner's function: {hung}"

    login_roles.connect_as(writer_url, "writer")
    (tmp_path / "w.txt").write_text("w")
    ll.Artifact(str(tmp_path / "w.txt"), key="w.txt").save()
    connect("owner")
    with owner.engine.connect() as conn:
        taken = conn.execute(text("SELECT count(*) FROM settings WHERE key = 'taken'"))
        entries = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE actor = :w AND seq IS NOT NULL"),
            {"w": writer_role},
        )
        assert taken.scalar_one() == 0 and entries.scalar_one() > 0
    assert verify(owner).ok
