"""PostgreSQL: nothing a writer defines in `public` runs inside the functions that run with the
owner's rights (SECURITY DEFINER: the audit and its chaining at commit, spaces, grant/revoke,
the artifacts' reference checks) - migration 0020.

A role that may CREATE in `public` (every role before PostgreSQL 15, or in a database
pg_upgrade'd from one, unless revoked) can define there a function, aggregate or operator more
specific than pg_catalog's polymorphic, variadic or implicitly-cast candidate
(`array_agg(integer)` over `array_agg(anynonarray)`, `jsonb_build_array(varchar, varchar)` over
`jsonb_build_array(VARIADIC "any")`, `=` on varchar over text's): PostgreSQL picks the best
argument match across the whole search_path, so with `public` in a definer's path it ran as the
owner. Since 0020 the definers search `pg_catalog, pg_temp` only and name the catalog's own
tables and functions by schema (with their exact argument types)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import lakeline as ll
import pytest
from alembic import command
from lakeline.access import spaces
from lakeline.access.audit import verify
from lakeline.access.audit_pg import audited_tables, function_name
from lakeline.access.roles import grant, revoke
from lakeline.db.engine import make_engine
from lakeline.db.migrate import HEAD_REVISION, alembic_config, migrating, upgrade
from lakeline.db.pg_helpers import LOCATE, helpers
from lakeline.instance import Instance, connect
from lakeline.testing import LoginRoles
from lakeline.testing_servers import PostgresServer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.postgres

# every SECURITY DEFINER function of the catalog, by what fires it (a new one fails the test
# by name until it is listed here and its work below fires it)
DEFINERS = {
    "lakeline_grant(text,text)": "grant",
    "lakeline_revoke(text)": "revoke",
    "lakeline_spaces()": "every statement of a role held to spaces",
    "lakeline_audit()": "a table audited by the generic function",
    "lakeline_audit_chain()": "every commit that wrote",
    "lakeline_artifact_refs()": "insert of artifacts, update of a reference",
    "lakeline_artifact_refs_kept()": "delete of a storage",
    "lakeline_own_runs(integer[])": "a flush's look-up after it failed (hidden_runs)",
}
# the overloads note, in the writer's table, each call made with the owner's rights
# (current_user is then the owner, session_user the writer)
MARK = """
CREATE TABLE public.hijacked (fn text, ran_as text, context text);
GRANT INSERT ON public.hijacked TO PUBLIC;
CREATE FUNCTION public.mark(fn text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE stack text;
BEGIN
    IF current_user OPERATOR(pg_catalog.<>) session_user THEN
        GET DIAGNOSTICS stack = PG_CONTEXT;
        INSERT INTO public.hijacked VALUES (fn, current_user, stack);
    END IF;
END $$
"""
# (signature, return type, body): each as the built-in it shadows, more specific than it
FUNCTIONS = [
    ("push(s integer[], v integer)", "integer[]", "RETURN pg_catalog.array_append(s, v);"),
    (
        "put(s jsonb, k text, v jsonb)",
        "jsonb",
        "RETURN COALESCE(s, '{}'::jsonb) OPERATOR(pg_catalog.||) "
        "pg_catalog.jsonb_build_object(k, v);",
    ),
    *(
        (f"jsonb_build_array(a {t}, b {t})", "jsonb", "RETURN pg_catalog.jsonb_build_array(a, b);")
        for t in ("varchar", "text", "integer", "bigint", "boolean", "timestamptz", "jsonb")
    ),
    *(
        (f"jsonb_build_object(k text, v {t})", "jsonb",
         "RETURN pg_catalog.jsonb_build_object(k, v);")
        for t in ("varchar", "text", "integer", "jsonb")
    ),
    *(
        (f"to_jsonb(v {t})", "jsonb", "RETURN pg_catalog.to_jsonb(v);")
        for t in ("varchar", "text", "integer")
    ),
    ("convert_to(s text, e text)", "bytea", "RETURN pg_catalog.convert_to(s, e::name);"),
    ("encode(b bytea, f varchar)", "text", "RETURN pg_catalog.encode(b, f::text);"),
    ("format(f text, a text)", "text", "RETURN pg_catalog.format(f, a);"),
    ("format(f text, a name)", "text", "RETURN pg_catalog.format(f, a);"),
    ("format(f text, a text, b text)", "text", "RETURN pg_catalog.format(f, a, b);"),
    (
        "lakeline_audit_digest(s bigint, a timestamptz, r text, t text, u text, x varchar, "
        "c jsonb)",
        "text",
        "RETURN public.lakeline_audit_digest(s, a, r, t, u, x::text, c);",
    ),
    ("eq_vv(a varchar, b varchar)", "boolean", "RETURN a::text OPERATOR(pg_catalog.=) b::text;"),
    ("eq_vn(a varchar, b name)", "boolean", "RETURN a::text OPERATOR(pg_catalog.=) b::text;"),
    ("cat_vv(a varchar, b varchar)", "text", "RETURN a::text OPERATOR(pg_catalog.||) b::text;"),
]  # fmt: skip
AGGREGATES = [
    "CREATE AGGREGATE public.array_agg(integer) (SFUNC = public.push, STYPE = integer[])",
    "CREATE AGGREGATE public.jsonb_object_agg(text, jsonb) (SFUNC = public.put, STYPE = jsonb)",
]
OPERATORS = [
    "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.eq_vv)",
    "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = name, FUNCTION = public.eq_vn)",
    "CREATE OPERATOR public.|| (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.cat_vv)",
]


def _file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(name)
    return path


def _caller(context: str) -> str:
    """The lakeline function a PG_CONTEXT stack names (the definer the overload ran in)."""
    lines = [line for line in context.splitlines() if "lakeline_" in line and "mark(" not in line]
    return lines[0] if lines else context


def _definers(instance: Instance) -> dict[str, str]:
    """Each SECURITY DEFINER function of the catalog's schema and of lakeline's functions'
    (0022): its settings, by its signature without the schema."""
    with instance.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', "
                "array_to_string(p.proconfig, '; ') FROM pg_proc p "
                "WHERE p.pronamespace IN (current_schema()::regnamespace, "
                f"to_regnamespace(({LOCATE}))) AND p.prosecdef"
            )
        ).all()
    assert len(rows) > len(DEFINERS)
    return {str(name).replace(", ", ","): str(settings) for name, settings in rows}


def test_every_definer_function_is_known_and_searches_pg_catalog_only(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Every SECURITY DEFINER function is one the test below fires (or an audited table's), and
    none searches `public`: nothing unqualified can resolve outside pg_catalog."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    found = _definers(owner)
    with owner.engine.connect() as conn:
        audits = {f"{function_name(t)}()" for t in audited_tables(conn)}
    unknown = sorted(set(found) - set(DEFINERS) - audits)
    assert not unknown, f"SECURITY DEFINER functions no test covers: {unknown}"
    assert set(DEFINERS) <= set(found)
    searching = {name: s for name, s in found.items() if "search_path=pg_catalog, pg_temp" not in s}
    assert not searching, f"definers searching more than pg_catalog: {sorted(searching)}"


def test_a_writers_overloads_in_public_never_run_with_the_owners_rights(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A writer who may CREATE in `public` defines more specific overloads of the built-ins the
    definers use, then does its ordinary work (held to a space: saves, an update, a reference
    change, deletes, a storage delete refused and one allowed), an admin grants and revokes, a
    table audited by the generic function is written: all of it works as without them and none
    of the writer's functions ran as the owner."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    spaces.create(owner, "lab")
    writer_role, writer_url = login_roles.create("writer")
    admin_role, admin_url = login_roles.create("admin")
    other_role, _ = login_roles.create("other")
    grant(owner.engine, writer_role, "write")
    grant(owner.engine, admin_role, "admin")
    spaces.set_membership(owner.engine, writer_role, ["lab"])
    with owner.engine.begin() as conn:  # a table audited by 0009's generic function
        conn.execute(text("CREATE TABLE keyed (id integer PRIMARY KEY, note varchar(20))"))
        schema = helpers(conn)
        for event, refs in (
            ("insert", "NEW TABLE AS new_rows"),
            ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("delete", "OLD TABLE AS old_rows"),
        ):
            conn.execute(
                text(
                    f"CREATE TRIGGER lakeline_audit_{event} AFTER {event} ON keyed "
                    f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION "
                    f"{schema}.lakeline_audit('id')"
                )
            )
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON keyed TO {writer_role}"))
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    writer = login_roles.connect_as(writer_url, "writer")
    with writer.engine.begin() as conn:
        conn.execute(text(MARK))
        for signature, returns, body in FUNCTIONS:
            name = signature.split("(")[0]
            conn.execute(
                text(
                    f"CREATE FUNCTION public.{signature} RETURNS {returns} LANGUAGE plpgsql "
                    f"AS $$ BEGIN PERFORM public.mark('{name}'); {body} END $$"
                )
            )
        for statement in (*AGGREGATES, *OPERATORS):
            conn.execute(text(statement))

    failed: list[str] = []

    def work(what: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as exc:  # collected: every step runs, the report names each
            failed.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0]}")

    root = tmp_path / "other"
    _file(root, "x")
    storage = writer.register_storage(root)
    spare = tmp_path / "spare"
    _file(spare, "x")
    saved: list[ll.Artifact] = []
    work("save", lambda: saved.extend(ll.save(
        [ll.Artifact(str(_file(root, f"{i}.txt")), key=f"w/{i}.txt") for i in range(6)]
    )))  # fmt: skip

    def edit() -> None:
        saved[0].description = "edited"
        saved[0].save()

    def move_storage() -> None:
        with writer.engine.begin() as conn:  # the row check: its storage changed
            conn.execute(
                text("UPDATE artifacts SET storage_id = :s WHERE id = :id"),
                {"s": other.id, "id": saved[1].id},
            )

    def refused_storage_delete() -> None:
        with pytest.raises(IntegrityError), writer.engine.begin() as conn:
            conn.execute(text("DELETE FROM storages WHERE id = :s"), {"s": storage.id})

    def storage_delete() -> None:
        with admin.engine.begin() as conn:
            conn.execute(text("DELETE FROM storages WHERE id = :s"), {"s": unused.id})

    def generic() -> None:
        with writer.engine.begin() as conn:
            conn.execute(text("INSERT INTO keyed VALUES (1, 'one'), (2, 'two')"))
            conn.execute(text("UPDATE keyed SET note = 'uno' WHERE id = 1"))
            conn.execute(text("DELETE FROM keyed WHERE id = 2"))

    _file(tmp_path / "elsewhere", "x")
    other = writer.register_storage(tmp_path / "elsewhere")
    unused = writer.register_storage(spare)
    work("update", edit)
    work("reference change", move_storage)
    work("delete", lambda: saved[2].delete())
    work("refused storage delete", refused_storage_delete)
    work("generic audit", generic)
    work("count", lambda: ll.Artifact.filter(key__startswith="w/").count())

    def own_runs() -> None:
        from lakeline.lineage.hidden_runs import hidden_runs

        with writer.sessions.read() as session:
            hidden_runs(session, {1, 2, 3})

    work("own runs", own_runs)
    admin = login_roles.connect_as(admin_url, "admin")
    work("storage delete", storage_delete)
    work("grant", lambda: grant(admin.engine, other_role, "read"))
    work("revoke", lambda: revoke(admin.engine, other_role))

    owner = connect("owner")
    with owner.engine.connect() as conn:
        marks = conn.execute(text("SELECT fn, ran_as, context FROM public.hijacked")).all()
        count = conn.execute(text("SELECT count(*) FROM artifacts WHERE key LIKE 'w/%'")).scalar()
        edited = conn.execute(
            text("SELECT description FROM artifacts WHERE id = :id"), {"id": saved[0].id}
        ).scalar()
    ran = sorted({f"{fn} as {who} in {_caller(ctx)}" for fn, who, ctx in marks})
    assert not ran and not failed, (
        "a writer's overload ran with the owner's rights:\n"
        + "\n".join(ran)
        + "\nthe work failed:\n"
        + "\n".join(failed)
    )
    assert count == 5 and edited == "edited"
    assert verify(owner).ok


def _dump(server: PostgresServer, database: str) -> str:
    """`pg_dump -s` of `database`, without owners, privileges (the group roles are named after
    the database) and the random `\\restrict` key lines."""
    out = subprocess.run(
        [str(server.bindir / "pg_dump"), "-s", "-x", "-O", "-h", "127.0.0.1",
         "-p", str(server.port), "-U", "postgres", database],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    return "\n".join(line for line in lines if not line.startswith(("\\restrict", "\\unrestrict")))


def _fresh(server: PostgresServer, revision: str) -> str:
    """The schema dump of a new database migrated to `revision` (dropped after)."""
    name = f"f{revision}_{uuid.uuid4().hex[:12]}"
    engine = make_engine(server.create_database(name))
    try:
        upgrade(engine, revision)
        engine.dispose()
        return _dump(server, name)
    finally:
        engine.dispose()
        server.drop_database(name)
        server.drop_roles(name)


def _migrate(instance: Instance, revision: str) -> None:
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        move = command.downgrade if revision < HEAD_REVISION else command.upgrade
        move(cfg, revision)
    instance.engine.dispose()  # pooled connections cache defaults (a migration changes them)
    if revision == HEAD_REVISION:
        upgrade(instance.engine)  # as `lakeline migrate` does (the audit functions again)


def test_a_populated_catalog_upgrades_to_0020_and_back_with_its_chain_verifying(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    """Saves, an edit and a delete at head; down to 0019 (the schema is then a fresh 0019's,
    `pg_dump -s`), an edit and a delete there; up again (a fresh head's schema), more saves:
    the audit chain verifies at every step, over entries chained by both forms."""
    down_and_up(tmp_path, postgres_url, postgres_server, "0019")


def down_and_up(
    tmp_path: Path,
    postgres_url: str,
    server: PostgresServer,
    revision: str,
    unchanged: Callable[[Instance], object] | None = None,
) -> None:
    """A populated catalog at head (saves, an edit, a delete) down to `revision` (then a fresh
    `revision`'s schema, `pg_dump -s`), an edit and a delete there, up again (a fresh head's
    schema; `unchanged(instance)` equal before and after), more saves: the audit chain verifies
    at every step, over entries chained by both forms."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    database = make_url(postgres_url).database
    assert database is not None

    def work(name: str) -> None:
        folder = tmp_path / name
        saved = ll.save(
            [ll.Artifact(str(_file(folder, f"{i}.txt")), key=f"{name}/{i}.txt") for i in range(5)]
        )
        with instance.engine.begin() as conn:  # SQL: the models expect the head's schema
            conn.execute(
                text("UPDATE artifacts SET description = :d WHERE id = :id"),
                {"d": f"about {name}", "id": saved[0].id},
            )
            conn.execute(text("DELETE FROM artifacts WHERE id = :id"), {"id": saved[1].id})

    work("head")
    _migrate(instance, revision)
    assert _dump(server, database) == _fresh(server, revision)
    with instance.engine.begin() as conn:
        conn.execute(
            text("UPDATE artifacts SET description = :d WHERE key = 'head/2.txt'"),
            {"d": f"at {revision}"},
        )
        conn.execute(text("DELETE FROM artifacts WHERE key = 'head/3.txt'"))
    assert verify(instance).ok
    before = unchanged(instance) if unchanged is not None else None
    _migrate(instance, HEAD_REVISION)
    if unchanged is not None:
        assert unchanged(instance) == before
    assert _dump(server, database) == _fresh(server, HEAD_REVISION)
    work("again")
    verdict = verify(instance)
    assert verdict.ok and verdict.checked > 20


BUMP = """
CREATE FUNCTION public.bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'artifacts' THEN
        NEW.storage_id := 987654;
    ELSE
        NEW.id := NEW.id + 1000;
    END IF;
    RETURN NEW;
END $$
"""


@pytest.mark.parametrize("table", ["artifacts", "storages"])
def test_a_reference_a_before_trigger_changes_is_still_checked(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, table: str
) -> None:
    """0019's checks of an UPDATE fired only when the SET list named the column (`UPDATE OF`): a
    BEFORE UPDATE trigger changing an artifact's storage, or a storage's id, got past them
    (a foreign key checks the row as written). Since 0020 they fire WHEN it changed."""
    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    saved = ll.Artifact(str(_file(tmp_path, "a.txt")), key="a.txt").save()
    instance = connect("owner")
    statement = {
        "artifacts": f"UPDATE artifacts SET description = 'moved' WHERE id = {saved.id}",
        "storages": f"UPDATE storages SET region = 'moved' WHERE id = {saved.storage_id}",
    }[table]
    with instance.engine.begin() as conn:
        conn.execute(text(BUMP))
        conn.execute(
            text(
                f"CREATE TRIGGER bump BEFORE UPDATE ON {table} FOR EACH ROW "
                "EXECUTE FUNCTION public.bump()"
            )
        )
    with pytest.raises(IntegrityError) as caught, instance.engine.begin() as conn:
        conn.execute(text(statement))
    assert caught.value.orig.diag.constraint_name == "fk_artifacts_storage_id_storages"  # type: ignore[union-attr]
    assert ll.Artifact.get(saved.uid).storage_id == saved.storage_id


def test_access_list_and_migrate_say_who_else_may_create_in_the_schema(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """lakeline leaves the schema's privileges alone (it may hold more than the catalog), but
    `access list` and `migrate` warn when PUBLIC, or a role holding a level, may CREATE there
    (PostgreSQL 15's default: neither)."""
    from click.testing import CliRunner
    from lakeline.access.roles import schema_creators
    from lakeline.cli import cli

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    writer, _ = login_roles.create("writer")
    grant(owner.engine, writer, "write")

    def warnings(*args: str) -> list[str]:
        result = CliRunner().invoke(cli, ["-i", "owner", *args])
        assert result.exit_code == 0, (result.output, result.exception)
        return [line for line in result.stderr.splitlines() if line.startswith("warning:")]

    assert schema_creators(owner.engine) == []
    assert warnings("access", "list") == [] and warnings("migrate") == []
    login_roles.admin_execute(f"GRANT CREATE ON SCHEMA public TO {writer}")
    assert schema_creators(owner.engine) == [writer]
    (line,) = warnings("access", "list")
    assert f"warning: {writer} may create objects in schema public" in line
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    assert schema_creators(owner.engine) == ["PUBLIC", writer]
    (line,) = warnings("migrate")
    assert "every role (PUBLIC) may create" in line and "FROM PUBLIC" in line
