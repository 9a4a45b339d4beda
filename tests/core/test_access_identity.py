"""Identity comes from the database, not the environment: on PostgreSQL the connected role is
the user and `created_by` cannot be forged (through the API or raw SQL); on SQLite the OS user."""

from __future__ import annotations

import getpass
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import PermissionDenied
from lakeline.testing import LoginRoles
from sqlalchemy import text


def _file(tmp_path: Path, name: str, body: str = "x\n") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_sqlite_identity_is_the_os_user(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKELINE_USER", "alice")
    ll.init(tmp_path / "data")
    artifact = ll.Artifact(_file(tmp_path, "a.txt"), key="a.txt").save()
    creator = ll.User.get(id=artifact.created_by_id)
    assert creator.handle == getpass.getuser() != "alice"


@pytest.mark.postgres
def test_postgres_identity_is_the_login_role(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    owner_art = ll.Artifact(_file(tmp_path, "owned.txt"), key="owned.txt").save()
    assert ll.User.get(id=owner_art.created_by_id).handle == "postgres"
    role, url = login_roles.create("mallory")
    login_roles.admin_execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"GRANT USAGE ON SCHEMA lakeline_public TO {role}",  # lakeline's functions (0022)
    )
    monkeypatch.setenv("LAKELINE_USER", "postgres")  # pretends to be the owner: ignored
    instance = login_roles.connect_as(url, "mallory")
    assert instance.user.handle == role
    mine = ll.Artifact(_file(tmp_path, "m.txt"), key="m.txt").save()
    assert ll.User.get(id=mine.created_by_id).handle == role
    owner_id = owner_art.created_by_id

    # raw SQL as the role: a row in the owner's name, or rewriting a creator, is refused
    with instance.engine.connect() as conn:
        storage_id = conn.execute(text("SELECT min(id) FROM storages")).scalar_one()
        with pytest.raises(PermissionDenied, match="in the name of another user") as raised:
            conn.execute(
                text(
                    "INSERT INTO artifacts (uid, stem, key, suffix, hash_type, storage_id, "
                    "store_key, in_place, is_latest, available, created_at, created_by_id) "
                    "VALUES ('forgedforged0000', 'forgedforged', 'f.txt', '.txt', 'sha256', "
                    ":s, 'f.txt', true, true, true, now(), :owner)"
                ),
                {"s": storage_id, "owner": owner_id},
            )
        assert "\n" not in str(raised.value) and role in str(raised.value)
        conn.rollback()
        with pytest.raises(PermissionDenied, match="may not change who created"):
            conn.execute(
                text("UPDATE artifacts SET created_by_id = :owner WHERE uid = :uid"),
                {"owner": owner_id, "uid": mine.uid},
            )
        conn.rollback()
        with pytest.raises(PermissionDenied, match="only record or change its own user"):
            conn.execute(text("UPDATE users SET handle = 'someone' WHERE handle = :r"), {"r": role})
        conn.rollback()
    # through the API, setting created_by_id by hand changes nothing either
    assert ll.Artifact.filter(created_by_id=owner_id).count() == 1


@pytest.mark.postgres
def test_a_role_cannot_take_another_users_row_by_its_handle(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A writer with no `users` row yet sets the owner's row's handle to its own (the new row
    then names it): refused (0020; 0006 checked the new rows only), so it never becomes the
    owner's user to the creator and delete checks."""
    from lakeline.access.roles import grant

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    owned = ll.Artifact(_file(tmp_path, "owned.txt"), key="owned.txt").save()
    role, url = login_roles.create("mallory")
    grant(owner.engine, role, "write")
    instance = login_roles.connect_as(url, "mallory")
    refused = pytest.raises(PermissionDenied, match="only record or change its own user")
    with refused, instance.engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET handle = session_user WHERE id = :i"),
            {"i": owned.created_by_id},
        )
    assert ll.User.get(id=owned.created_by_id).handle == "postgres"
