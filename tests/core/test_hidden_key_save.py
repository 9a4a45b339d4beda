"""A role held to spaces saving under a key whose latest version is in a space it does not
see: PostgreSQL's unique index refuses every attempt (row security hides the holder, so the
save never finds it and makes a new first version). Before, the save ran five times and the
raw UniqueViolation reached the caller; now a PermissionDenied names the key, nothing is
written, and the other keys save once it is left out."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.access.spaces import space_of
from lakeline.cli import cli
from lakeline.errors import PermissionDenied
from lakeline.testing import LoginRoles
from sqlalchemy import text
from test_bulk_pipeline import Batches, files, small_batches  # noqa: F401  (a fixture)


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)


def _count(instance: ll.Instance) -> int:
    with instance.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM artifacts")).scalar_one())


@pytest.mark.postgres
def test_a_key_held_in_a_space_the_role_does_not_see_is_named(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    small_batches: Batches,  # noqa: F811  (PostgreSQL's two-thread save for the bulk one)
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    (tmp_path / "one.txt").write_text("one")
    ll.Artifact(tmp_path / "one.txt", key="shared.txt").save()  # in `all`
    _run("space", "create", "onc")
    role, url = login_roles.create("onc")
    _run("access", "grant", role, "write", "--space", "onc")
    before = _count(owner)
    login_roles.connect_as(url, "onc")
    (tmp_path / "two.txt").write_text("two")
    with pytest.raises(PermissionDenied, match=r"key 'shared\.txt' names an artifact"):
        ll.Artifact(tmp_path / "two.txt", key="shared.txt").save()
    # a bulk save: one such key among 30 new ones (which, row security does not tell)
    artifacts = [ll.Artifact(p, key=f"onc/{p.name}") for p in files(tmp_path / "src", 30)]
    artifacts[17] = ll.Artifact(tmp_path / "two.txt", key="shared.txt")
    with pytest.raises(PermissionDenied, match=r"one of the 30 keys it makes new"):
        ll.save(artifacts)
    assert _count(owner) == before
    del artifacts[17]
    saved = ll.save(artifacts)
    assert {space_of(owner, "artifacts", a.uid) for a in saved} == {"onc"}
