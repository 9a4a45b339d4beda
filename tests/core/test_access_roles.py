"""PostgreSQL roles read / write / admin: real login roles, refused through the API, the CLI and
raw SQL with one line naming the action and the role needed; nothing left half-written."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline.access.roles import AccessError, grant, grants, setup_roles
from lakeline.cli import cli
from lakeline.errors import PermissionDenied
from lakeline.instance import Instance, connect
from lakeline.testing import LoginRoles
from sqlalchemy import text

pytestmark = pytest.mark.postgres


def _file(tmp_path: Path, name: str, body: str | None = None) -> Path:
    path = tmp_path / name
    path.write_text(body if body is not None else f"{name}\n")
    return path


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    else:
        assert result.exit_code == 1, (result.output, result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return result


def _objects(instance: Instance) -> set[Path]:
    folder = Path(instance.config.storage) / ".lakeline" / "objects"
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _raw_denied(instance: Instance, statement: str, match: str) -> None:
    with instance.engine.connect() as conn, pytest.raises(PermissionDenied, match=match) as raised:
        conn.execute(text(statement))
    assert "\n" not in str(raised.value)


@pytest.fixture
def team(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> dict[str, str]:
    """An instance made by the owner, and login roles reader, writer, writer2, admin."""
    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    urls = {}
    for level, name in (("read", "reader"), ("write", "writer"), ("write", "writer2")):
        role, urls[name] = login_roles.create(name)
        run("access", "grant", role, level)
    role, urls["admin"] = login_roles.create("admin")
    run("access", "grant", role, "admin")
    return urls


def test_roles_are_set_up_idempotently_and_listed(
    team: dict[str, str], postgres_url: str, login_roles: LoginRoles
) -> None:
    engine = connect("owner").engine
    names = setup_roles(engine)
    assert names is not None and setup_roles(engine) == names  # again: nothing changes
    assert set(names) == {"read", "write", "admin"}
    listed = {g.role.rsplit("_", 1)[0]: g.level for g in grants(engine)}
    assert listed == {"reader": "read", "writer": "write", "writer2": "write", "admin": "admin"}
    output = run("access", "list").output
    assert "reader_" in output and "admin" in output
    writer = next(g.role for g in grants(engine) if g.role.startswith("writer_"))
    run("access", "revoke", writer)
    assert writer not in {g.role for g in grants(engine)}


def test_a_reader_reads_and_cannot_write(
    team: dict[str, str], tmp_path: Path, login_roles: LoginRoles
) -> None:
    owner_art = ll.Artifact(_file(tmp_path, "a.txt"), key="a.txt").save()
    before = _objects(connect("owner"))
    reader = login_roles.connect_as(team["reader"], "reader")
    assert ll.Artifact.filter().count() == 1
    with pytest.raises(
        PermissionDenied, match=r"may not write to table .*needs the lakeline 'write'"
    ):
        ll.Artifact(_file(tmp_path, "b.txt"), key="b.txt").save()
    assert _objects(reader) == before  # the bytes uploaded before the refusal are gone
    run("-i", "reader", "save", str(_file(tmp_path, "c.txt")), "--key", "c.txt", ok=False)
    run("-i", "reader", "delete", "a.txt", "-y", ok=False)
    assert _objects(reader) == before and ll.Artifact.filter().count() == 1
    for statement, match in (
        (
            "INSERT INTO ulabels (uid, name, is_type, created_at) VALUES ('x', 'x', false, now())",
            "may not write to table ulabels",
        ),
        (
            f"UPDATE artifacts SET description = 'x' WHERE uid = '{owner_art.uid}'",
            "may not update table artifacts",
        ),
        (f"DELETE FROM artifacts WHERE uid = '{owner_art.uid}'", "may not delete from table"),
        ("CREATE TABLE sneaky (id int)", "needs the owner"),
    ):
        _raw_denied(reader, statement, match)


def test_a_writer_deletes_only_its_own_records(
    team: dict[str, str], tmp_path: Path, login_roles: LoginRoles
) -> None:
    owner_art = ll.Artifact(_file(tmp_path, "a.txt"), key="a.txt").save()
    login_roles.connect_as(team["writer"], "writer")
    mine = ll.Artifact(_file(tmp_path, "mine.txt"), key="mine.txt").save()
    ll.Artifact.get(owner_art.uid).description  # noqa: B018 - reading is fine
    with pytest.raises(PermissionDenied, match="deleting artifacts another user created needs"):
        ll.Artifact.get(owner_art.uid).delete()
    assert ll.Artifact.filter(uid=owner_art.uid).count() == 1
    assert Path(ll.Artifact.get(owner_art.uid).path).exists()  # its bytes stay too
    writer = connect("writer")
    for statement, match in (
        (f"DELETE FROM artifacts WHERE uid = '{owner_art.uid}'", "needs the admin role"),
        ("ALTER TABLE artifacts ADD COLUMN sneaky int", "needs the owner"),
        ("DELETE FROM settings", "needs the lakeline 'admin'"),
    ):
        _raw_denied(writer, statement, match)
    with pytest.raises(PermissionDenied, match="granting and revoking access needs the admin"):
        grant(writer.engine, "postgres", "read")
    ll.Artifact.get(mine.uid).delete()  # its own: allowed
    assert ll.Artifact.filter(uid=mine.uid).count() == 0

    # the other writer cannot delete it either; the admin (not the owner) can, and grants
    login_roles.connect_as(team["writer2"], "writer2")
    theirs = ll.Artifact(_file(tmp_path, "w2.txt"), key="w2.txt").save()
    login_roles.connect_as(team["writer"], "writer")
    with pytest.raises(PermissionDenied, match="admin role"):
        ll.Artifact.get(theirs.uid).delete()
    admin = login_roles.connect_as(team["admin"], "admin")
    ll.Artifact.get(theirs.uid).delete()
    ll.Artifact.get(owner_art.uid).delete()
    assert ll.Artifact.filter().count() == 0
    reader_role = next(g.role for g in grants(admin.engine) if g.level == "read")
    run("-i", "admin", "access", "grant", reader_role, "write")
    assert {g.role: g.level for g in grants(admin.engine)}[reader_role] == "write"


def test_bad_access_input_is_one_line(
    team: dict[str, str], lakeline_home: Path, tmp_path: Path
) -> None:
    out = run("-i", "owner", "access", "grant", "nobody_at_all", "write", ok=False)
    assert "no login role 'nobody_at_all'" in out.stderr
    bad = CliRunner().invoke(cli, ["-i", "owner", "access", "grant", "x", "superuser"])
    assert bad.exit_code == 2 and "superuser" in bad.output
    ll.init(tmp_path / "lite", name="lite")
    with pytest.raises(AccessError, match="needs a PostgreSQL instance"):
        grants(connect("lite").engine)
    run("-i", "lite", "access", "list", ok=False)


@pytest.mark.parametrize("named", ["owner", "other level"])
def test_an_admin_cannot_grant_a_role_it_names_in_settings(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles, named: str
) -> None:
    """An admin may write `settings`, where the levels' group roles are named, and grant runs
    `GRANT <group> TO <grantee>` with the owner's rights: an admin naming the catalog's owner
    (here a superuser) for `read`, or the write group, and granting itself read is refused
    (0020: the group must hold the level's privilege by the owner's own grant); it is no
    member of either after, and grants work again once the owner deletes the setting and
    migrates, as the message says."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    role, url = login_roles.create("admin")
    grant(owner.engine, role, "admin")
    with owner.engine.connect() as conn:
        owner_role = str(conn.execute(text("SELECT current_user")).scalar_one())
        names = dict(conn.execute(text("SELECT key, value FROM settings")).tuples().all())
    target = owner_role if named == "owner" else names["role_write"]
    admin = login_roles.connect_as(url, "admin")
    with admin.engine.begin() as conn:
        conn.execute(text("UPDATE settings SET value = :v WHERE key = 'role_read'"), {"v": target})
    with pytest.raises(PermissionDenied, match="deletes setting role_read and runs"):
        grant(admin.engine, role, "read")
    with admin.engine.connect() as conn:
        member = conn.execute(
            text("SELECT pg_has_role(session_user, :t, 'MEMBER')"), {"t": target}
        ).scalar_one()
    assert member is (named == "other level")  # an admin is a writer: in the write group
    connect("owner")
    with owner.engine.begin() as conn:  # as the message says
        conn.execute(text("DELETE FROM settings WHERE key = 'role_read'"))
    assert run("-i", "owner", "migrate").exit_code == 0
    grant(owner.engine, role, "read")
    assert [g.level for g in grants(owner.engine) if g.role == role] == ["read"]
