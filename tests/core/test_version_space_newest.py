"""A new version lands in the space of its stem's newest other version (not `all`), on both
databases, when its versions were moved one by one. Before, PostgreSQL's trigger (0008) and
SQLite's (0023) took whichever version the plan met first: a new version of an artifact whose
latest was moved into `c` landed in `b`, an older version's space (seen by `b`'s members,
not by `c`'s). And on PostgreSQL a new version saved by a role held to several spaces landed in
the role's first space, not its previous version's."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.access import spaces
from lakeline.cli import cli
from lakeline.instance import Instance
from lakeline.testing import LoginRoles


def _file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(name)
    return path


def test_a_new_version_lands_in_the_newest_versions_space(
    instance: Instance, tmp_path: Path
) -> None:
    spaces.create(instance, "b")
    spaces.create(instance, "c")
    v1 = ll.Artifact(_file(tmp_path, "1.txt"), key="k.txt").save()
    other = ll.Artifact(_file(tmp_path, "o1.txt"), key="o.txt").save()
    spaces.move(instance, "b", keys=[v1.uid, other.uid])
    v2 = ll.Artifact(_file(tmp_path, "2.txt"), key="k.txt").save()
    assert spaces.space_of(instance, "artifacts", v2.uid) == "b"
    spaces.move(instance, "c", keys=[v2.uid])  # the latest alone
    v3 = ll.Artifact(_file(tmp_path, "3.txt"), key="k.txt").save()
    assert spaces.space_of(instance, "artifacts", v3.uid) == "c"
    # several in one save (one statement on PostgreSQL): each its own stem's newest
    spaces.move(instance, "b", keys=[v3.uid])
    both = ll.save(
        [
            ll.Artifact(_file(tmp_path, "4.txt"), key="k.txt"),
            ll.Artifact(_file(tmp_path, "o2.txt"), key="o.txt"),
        ]
    )
    assert [spaces.space_of(instance, "artifacts", a.uid) for a in both] == ["b", "b"]
    spaces.move(instance, "c", keys=[both[1].uid])
    spaces.move(instance, "all", keys=[both[0].uid])  # the newest in `all`: the next newest's
    more = ll.save(
        [
            ll.Artifact(_file(tmp_path, "5.txt"), key="k.txt"),
            ll.Artifact(_file(tmp_path, "o3.txt"), key="o.txt"),
        ]
    )
    assert [spaces.space_of(instance, "artifacts", a.uid) for a in more] == ["b", "c"]


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.mark.postgres
def test_a_member_of_two_spaces_saves_a_new_version_where_the_previous_is(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    v1 = ll.Artifact(_file(tmp_path, "1.txt"), key="k.txt").save()
    _run("space", "create", "b")
    _run("space", "create", "c")
    _run("space", "add", v1.uid, "--to", "c")
    role, url = login_roles.create("bc")
    _run("access", "grant", role, "write", "--space", "b", "--space", "c")
    login_roles.connect_as(url, "bc")
    v2 = ll.Artifact(_file(tmp_path, "2.txt"), key="k.txt").save()
    new = ll.Artifact(_file(tmp_path, "n.txt"), key="n.txt").save()
    assert v2.uid[:12] == v1.uid[:12]
    assert spaces.space_of(owner, "artifacts", v2.uid) == "c"
    assert spaces.space_of(owner, "artifacts", new.uid) == "b"  # a first version: its default


@pytest.mark.postgres
def test_the_trigger_calls_no_writers_function(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The trigger runs in every saver's session (the owner's too): a writer's
    `public.right(varchar, integer)`, an exact match for 0008's `right(n.uid, 4)`, ran there
    with the saver's rights at each new version; pg_catalog's is called by name now. (The ORM's
    own `varchar = varchar` queries stay open to operators: REVOKE CREATE ON SCHEMA public.)"""
    from lakeline.access.roles import grant
    from lakeline.instance import connect
    from sqlalchemy import text
    from test_helper_schema_ops import _spy

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    writer_role, writer_url = login_roles.create("writer")
    grant(owner.engine, writer_role, "write")
    login_roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL < 15
    writer = login_roles.connect_as(writer_url, "writer")
    with writer.engine.begin() as conn:
        conn.execute(text("CREATE TABLE public.ran (who text, what text)"))
        conn.execute(text("GRANT INSERT ON public.ran TO PUBLIC"))
        conn.execute(
            text(_spy("right", "a varchar, b integer", "text", "pg_catalog.right(a::text, b)"))
        )
    owner = connect("owner")
    spaces.create(owner, "b")
    v1 = ll.Artifact(_file(tmp_path, "1.txt"), key="k.txt").save()
    spaces.move(owner, "b", keys=[v1.uid])
    v2 = ll.Artifact(_file(tmp_path, "2.txt"), key="k.txt").save()
    assert spaces.space_of(owner, "artifacts", v2.uid) == "b"
    with owner.engine.connect() as conn:
        assert conn.execute(text("SELECT who, what FROM public.ran")).all() == []
