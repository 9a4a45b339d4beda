"""PostgreSQL: a GRANT-level refusal (`db.errors`) names the role connected, also when the
database URL names none (the role from PGUSER). Before, it was the URL's user: "role None may
not write to table ...", and the grant it suggested was `lakeline access grant None write`."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import PermissionDenied
from lakeline.testing import LoginRoles
from test_recorder_refusals import _run

pytestmark = pytest.mark.postgres


def test_a_reader_connected_by_pguser_is_named_in_the_refusal(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.engine import URL, make_url

    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    role, url = login_roles.create("reader")
    _run("access", "grant", role, "read")
    monkeypatch.setenv("PGUSER", role)
    given = make_url(url)
    bare = URL.create(given.drivername, host=given.host, port=given.port, database=given.database)
    login_roles.connect_as(bare.render_as_string(False), "reader")
    (tmp_path / "b.txt").write_text("b")
    with pytest.raises(PermissionDenied, match="may not write to table") as caught:
        ll.Artifact(tmp_path / "b.txt", key="b.txt").save()
    said = str(caught.value)
    assert f"role {role!r} may not" in said, said
    assert f"access grant {role} write" in said, said
