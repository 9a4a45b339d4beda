"""PostgreSQL: who may delete a record (0007's check, 0022's rule for records without a
recorded creator, module tables as the core's)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import psycopg
import pytest
from lakeline.access.roles import grant
from lakeline.testing import LoginRoles
from modules_lab import lab, lab_site  # noqa: F401  (fixtures)
from sqlalchemy import text
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres


def _raw(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A plain connection as the role of `url` (no lakeline: no `users` row made for it)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    return psycopg.connect(dsn)


def _delete(url: str, statement: str) -> str:
    """Run `statement` as `url`'s role: 'deleted' (rows gone), 'refused' (insufficient
    privilege, the check's error) or 'nothing'."""
    with _raw(url) as conn:
        try:
            done = conn.execute(statement.encode()).rowcount
        except psycopg.errors.InsufficientPrivilege as exc:
            assert "needs the admin role" in str(exc), exc
            return "refused"
        conn.commit()
    return "deleted" if done else "nothing"


def test_a_record_without_a_creator_is_deleted_by_admins_only(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A record whose creator is NULL (written by SQL, or before users were recorded) is the
    owner's: a writer may not delete it, whether or not it has a `users` row (one without a
    row was `NULL IS DISTINCT FROM NULL`: allowed); an admin may."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    writer, writer_url = login_roles.create("writer")
    admin, admin_url = login_roles.create("admin")
    grant(owner.engine, writer, "write")
    grant(owner.engine, admin, "admin")
    with owner.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ulabels (uid, name, is_type, created_at) VALUES "
                "('nocreator000001', 'one', false, now()), ('nocreator000002', 'two', false, now())"
            )
        )
    one = "DELETE FROM ulabels WHERE uid = 'nocreator000001'"
    assert _delete(writer_url, one) == "refused"
    assert _delete(admin_url, one) == "deleted"
    login_roles.connect_as(writer_url, "writer")  # lakeline records the writer's user
    assert _delete(writer_url, "DELETE FROM ulabels WHERE uid = 'nocreator000002'") == "refused"


def test_a_module_tables_records_are_deleted_as_the_cores_are(
    lab: Path,  # noqa: F811
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
) -> None:
    """A schema module's table with a creator gets the core's delete check too: a writer may
    not delete a row another user created (it got the creator check only), an admin may, the
    writer deletes its own."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner", modules=["lab"])
    writer, writer_url = login_roles.create("writer")
    admin, admin_url = login_roles.create("admin")
    grant(owner.engine, writer, "write")
    grant(owner.engine, admin, "admin")
    with owner.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO lab_biosamples (uid, name, created_at, created_by_id) "
                "VALUES ('ownersample00001', 'O1', now(), :me), "
                "('ownersample00002', 'O2', now(), :me)"
            ),
            {"me": owner.user.id},
        )
    first = "DELETE FROM lab_biosamples WHERE uid = 'ownersample00001'"
    assert _delete(writer_url, first) == "refused"
    assert _delete(admin_url, first) == "deleted"
    writing = login_roles.connect_as(writer_url, "writer")
    with writing.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO lab_biosamples (uid, name, created_at, created_by_id) "
                "VALUES ('writersample0001', 'W1', now(), :me)"
            ),
            {"me": writing.user.id},
        )
    assert _delete(writer_url, "DELETE FROM lab_biosamples WHERE uid = 'writersample0001'") == (
        "deleted"
    )
    assert _delete(writer_url, "DELETE FROM lab_biosamples WHERE uid = 'ownersample00002'") == (
        "refused"
    )
