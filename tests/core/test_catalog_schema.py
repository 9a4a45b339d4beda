"""PostgreSQL: a catalog in a schema other than `public` (the URL's
`options=-csearch_path=<schema>`, or a search_path set for the role or database).

It could not be made: the engine replaced the URL's `options` with its own (`-c jit=off`, so
the tables went to `public` whatever the URL said), 0008's SQL function named `public` in its
setting (its body was checked there: "relation space_members does not exist"), and
`setup_roles` granted on `public`."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.audit import verify
from lakeline.access.roles import grant, grants
from lakeline.errors import DatabaseError
from lakeline.testing import LoginRoles
from sqlalchemy import text
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres


def _in(url: str, schema: str) -> str:
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def _file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(name)
    return path


def test_a_catalog_in_another_schema_works_end_to_end(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    """`lab`, made by the database's owner, named in the URL: init makes every table there
    (none in `public`), its functions in `lakeline_lab`; the owner saves, edits, searches,
    deletes; a writer granted through lakeline's groups saves and may not delete the owner's
    records; the audit chain verifies."""
    url = _in(empty_postgres_url, "lab")
    roles = LoginRoles(url, [])  # their URLs name the schema too
    roles.admin_execute("CREATE SCHEMA lab")
    try:
        owner = ll.init(tmp_path / "data", db=url, name="owner")
        saved = ll.save(
            [
                ll.Artifact(str(_file(tmp_path / "o", f"{i}.txt")), key=f"o/{i}.txt")
                for i in range(4)
            ]
        )
        saved[0].description = "an edited sample"
        saved[0].save()
        saved[1].delete()
        assert ll.Artifact.search("edited").count() == 1
        writer, writer_url = roles.create("writer")
        grant(owner.engine, writer, "write")
        assert [(g.role, g.level) for g in grants(owner.engine)] == [(writer, "write")]
        as_writer = roles.connect_as(writer_url, "writer")
        mine = ll.Artifact(str(_file(tmp_path / "w", "w.txt")), key="w/w.txt").save()
        with pytest.raises(Exception, match="needs the admin role"):
            ll.Artifact.get(saved[2].uid).delete()
        mine.delete()
        with as_writer.engine.connect() as conn:
            where = conn.execute(
                text(
                    "SELECT schemaname, count(*) FROM pg_tables WHERE schemaname IN "
                    "('public', 'lab') GROUP BY 1"
                )
            ).all()
            functions = conn.execute(
                text(
                    "SELECT DISTINCT pronamespace::regnamespace::text FROM pg_proc "
                    "WHERE proname LIKE 'lakeline%'"
                )
            ).all()
        assert [str(schema) for schema, _ in where] == ["lab"]
        assert [str(f) for (f,) in functions] == ["lakeline_lab"]
        owner = ll.connect("owner")
        verdict = verify(owner)
        assert verdict.ok and verdict.checked > 5
        assert ll.Artifact.filter(key__startswith="o/").count() == 3
    finally:
        ll.disconnect()
        for role in roles.made:
            roles.admin_execute(f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_a_search_path_naming_no_schema_that_exists_is_refused(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    """A schema not made yet: init says so (the tables had nowhere to go), nothing made."""
    with pytest.raises(DatabaseError, match="names no schema that exists"):
        ll.init(tmp_path / "data", db=_in(empty_postgres_url, "nowhere"), name="owner")
    roles = LoginRoles(empty_postgres_url, [])
    roles.admin_execute("CREATE SCHEMA nowhere")
    owner = ll.init(tmp_path / "data2", db=_in(empty_postgres_url, "nowhere"), name="owner")
    assert ll.Artifact.filter().count() == 0 and owner.dialect == "postgresql"
