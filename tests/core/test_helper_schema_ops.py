"""PostgreSQL: what lakeline's own queries of the catalog compare, they compare with
pg_catalog's operators and functions, so a writer's in `public` never runs in a migration's
or a save's session (as the owner). A role that may CREATE in `public` can define there an
operator that is an exact match for a comparison whose sides are of two types pg_catalog has
no operator for (`oid = regclass`, `name LIKE name`, ...), or a function matching a call's
argument type exactly (`pg_get_functiondef(integer)`): PostgreSQL picks it over pg_catalog's.
Not covered: SQLAlchemy's own reflection queries (`name <> varchar`) and lakeline's ORM
queries (`varchar = varchar`): only `REVOKE CREATE ON SCHEMA public FROM PUBLIC` closes those
(`lakeline migrate` and `access list` warn)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.roles import grant
from lakeline.db.migrate import HEAD_REVISION
from lakeline.instance import Instance, connect
from lakeline.testing import LoginRoles
from sqlalchemy import text
from test_definer_overloads import _migrate

pytestmark = pytest.mark.postgres


def _spy(name: str, arguments: str, result: str, body: str) -> str:
    """A writer's function that notes who ran it, then answers as pg_catalog's would."""
    return (
        f"CREATE FUNCTION public.{name}({arguments}) RETURNS {result} LANGUAGE plpgsql AS $$ "
        f"BEGIN INSERT INTO public.ran VALUES (session_user, '{name}'); RETURN {body}; END $$"
    )


PLANTED = [
    "CREATE TABLE public.ran (who text, what text, q text DEFAULT pg_catalog.current_query())",
    "GRANT INSERT ON public.ran TO PUBLIC",
    _spy("eq_oc", "a oid, b regclass", "boolean", "a OPERATOR(pg_catalog.=) b::oid"),
    _spy("eq_on", "a oid, b regnamespace", "boolean", "a OPERATOR(pg_catalog.=) b::oid"),
    _spy("like_nn", "a name, b name", "boolean", "a::text OPERATOR(pg_catalog.~~) b::text"),
    _spy("pg_get_functiondef", "a integer", "text", "pg_catalog.pg_get_functiondef(a::oid)"),
    "CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.eq_oc)",
    "CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regnamespace, FUNCTION = public.eq_on)",
    "CREATE OPERATOR public.~~ (LEFTARG = name, RIGHTARG = name, FUNCTION = public.like_nn)",
]


def writer_may_create(owner: Instance, login_roles: LoginRoles) -> tuple[str, Instance]:
    """A writer role of `owner`'s catalog that may CREATE in `public` (where it can plant
    functions and operators): its role and its instance (now the current one)."""
    writer_role, writer_url = login_roles.create("writer")
    grant(owner.engine, writer_role, "write")
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    return writer_role, login_roles.connect_as(writer_url, "writer")


def planted_writer(owner: Instance, login_roles: LoginRoles) -> tuple[str, Instance]:
    """A writer role of `owner`'s catalog that may CREATE in `public`, where it made
    `public.ran` (who ran what: `_spy`'s log): its role and its instance."""
    writer_role, writer = writer_may_create(owner, login_roles)
    with writer.engine.begin() as conn:
        for statement in PLANTED[:2]:  # public.ran (who, what, the query) and its grant
            conn.execute(text(statement))
    return writer_role, writer


def test_a_writers_operators_in_public_run_in_no_migration_nor_save(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The writer plants its operators; the owner migrates down to 0021 and up to head (0022's
    own queries: its functions found by schema and owner, USAGE for the read group, each
    function's text read back) and saves 40 files (a COPY: the table's defaults read): all of
    it works and none of the writer's functions ran. Before, 0022 compared `oid = regclass`
    and friends with whatever operator the search_path offered: the writer's code ran as the
    owner in every migration (or stopped it, had it raised)."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    writer_role, writer_url = login_roles.create("writer")
    reader_role, _ = login_roles.create("reader")
    grant(owner.engine, writer_role, "write")
    grant(owner.engine, reader_role, "read")  # the read group exists: 0022 grants it USAGE
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    writer = login_roles.connect_as(writer_url, "writer")
    with writer.engine.begin() as conn:
        for statement in PLANTED:
            conn.execute(text(statement))
    owner = connect("owner")
    _migrate(owner, "0021")
    _migrate(owner, HEAD_REVISION)
    owner = connect("owner")
    folder = tmp_path / "files"
    folder.mkdir()
    paths = []
    for i in range(40):
        paths.append(folder / f"{i}.txt")
        paths[-1].write_text(f"file {i}")
    assert len(ll.save([ll.Artifact(p, key=f"f/{p.name}") for p in paths])) == 40
    with owner.engine.connect() as conn:
        ran = conn.execute(text("SELECT DISTINCT who, what, q FROM public.ran ORDER BY 2")).all()
    assert ran == [], "\n".join(map(str, ran))


def test_a_missing_delete_check_trigger_is_a_clear_error_not_the_catalogs_schema(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """lakeline finds its functions' schema by the artifacts' `lakeline_delete_own` trigger
    (0007 on). The owner renames it: grant, verify and a search column's DDL say so and what
    to do. Before, they fell back to the catalog's schema (`public.lakeline_grant(...)`: "does
    not exist", or a function of that name a role that may CREATE there defined, run)."""
    from lakeline.access.audit import verify
    from lakeline.db.pg_helpers import helpers
    from lakeline.errors import LakelineError
    from lakeline.search import drop_search_index_ddl

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    reader_role, _ = login_roles.create("reader")
    with owner.engine.begin() as conn:
        conn.execute(text("ALTER TRIGGER lakeline_delete_own ON artifacts RENAME TO renamed"))
    missing = "no trigger lakeline_delete_own"
    with pytest.raises(LakelineError, match=missing):
        grant(owner.engine, reader_role, "read")
    with pytest.raises(LakelineError, match=missing):
        verify(owner)
    with owner.engine.connect() as conn:
        with pytest.raises(LakelineError, match=missing):
            helpers(conn)
        with pytest.raises(Exception, match=missing):
            for statement in drop_search_index_ddl("ulabels", "postgresql")[2:]:
                conn.execute(text(statement))
    with owner.engine.begin() as conn:
        conn.execute(text("ALTER TRIGGER renamed ON artifacts RENAME TO lakeline_delete_own"))
    grant(owner.engine, reader_role, "read")
    assert verify(owner).ok


def test_a_functions_schema_another_role_made_first_is_named_with_what_to_do(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A role that may CREATE in the database makes `lakeline_public` while the catalog is at
    0021: the upgrade to 0022 refuses, naming the schema, its owner and what to do, nothing
    changed; once dropped, the upgrade goes through. Before: a bare "schema ... already
    exists"."""
    import psycopg
    from lakeline.db.migrate import revisions
    from lakeline.errors import LakelineError
    from sqlalchemy.engine import make_url

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _migrate(owner, "0021")
    squatter, squatter_url = login_roles.create("squatter")
    login_roles.admin_execute(
        f"GRANT CREATE ON DATABASE {make_url(postgres_url).database} TO {squatter}"
    )
    dsn = make_url(squatter_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA lakeline_public")
    with pytest.raises(LakelineError) as refused:
        _migrate(owner, HEAD_REVISION)
    message = str(refused.value)
    assert "lakeline_public" in message and squatter in message and "DROP SCHEMA" in message
    with owner.engine.connect() as conn:
        assert revisions(conn) == ["0021"]
    login_roles.admin_execute("DROP SCHEMA lakeline_public")
    _migrate(owner, HEAD_REVISION)
    with owner.engine.connect() as conn:
        assert revisions(conn) == [HEAD_REVISION]


def test_a_search_function_a_writer_made_first_in_public_stops_no_module_table(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A writer who may CREATE in `public` makes `public.lakeline_search_<table>(text)`, the
    exact signature of the function a module table's search column calls, before the module
    is mounted: the owner's DDL (`search_index_ddl`, as a module's migration runs it) makes
    the column all the same, calling the function in lakeline's schema, never the writer's.
    Before: the DDL made it in the catalog's schema first ("function ... already exists")."""
    from lakeline.search import pg_search_function, search_index_ddl

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    writer_role, writer_url = login_roles.create("writer")
    grant(owner.engine, writer_role, "write")
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    table = "labmod_samples"
    function = pg_search_function(table)
    writer = login_roles.connect_as(writer_url, "writer")
    with writer.engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE FUNCTION public.{function}(a text) RETURNS tsvector LANGUAGE sql "
                "AS $$ SELECT 'taken'::tsvector $$"
            )
        )
    owner = connect("owner")
    with owner.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, title text)")
        conn.execute(text(f"INSERT INTO {table} (title) VALUES ('a tumour sample')"))
        for statement in search_index_ddl(table, ("title",), "postgresql"):
            conn.exec_driver_sql(statement)
    with owner.engine.connect() as conn:
        vector = conn.execute(text(f"SELECT search_vector::text FROM {table}")).scalar()
        expression = conn.execute(
            text(
                "SELECT generation_expression FROM information_schema.columns "
                "WHERE column_name = 'search_vector' AND table_name = :t"
            ),
            {"t": table},
        ).scalar_one()
    assert "tumour" in str(vector) and "taken" not in str(vector)
    assert f"lakeline_public.{function}(" in str(expression)
