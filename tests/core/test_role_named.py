"""PostgreSQL: the role named in a refusal's text is the one connected, as the server says,
also when the database URL names none (the role from PGUSER, the OS user or a service file).
Before, it was the URL's user: "role None"."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.errors import PermissionDenied, StepsNotRecorded
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from test_batch_left_out_hidden import _move
from test_recorder_refusals import _run

pytestmark = pytest.mark.postgres


def _held_by_pguser(
    tmp_path: Path, postgres_url: str, login_roles: LoginRoles, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A writer held to space `onc`, connected by a URL without a user (PGUSER names it)."""
    import lakeline as ll
    from sqlalchemy.engine import URL, make_url

    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    (tmp_path / "one.txt").write_text("one")
    ll.Artifact(tmp_path / "one.txt", key="shared.txt").save()  # in space `all`
    _run("space", "create", "onc")
    _run("space", "create", "far")
    role, url = login_roles.create("onc")
    _run("access", "grant", role, "write", "--space", "onc")
    monkeypatch.setenv("PGUSER", role)
    given = make_url(url)
    bare = URL.create(
        given.drivername, host=given.host, port=given.port, database=given.database
    ).render_as_string(False)
    assert make_url(bare).username is None
    login_roles.connect_as(bare, "onc")
    return role


def test_a_step_left_out_as_hidden_names_the_connected_role(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role = _held_by_pguser(tmp_path, postgres_url, login_roles, monkeypatch)
    rec = BatchRecorder("hid", root=tmp_path, steps=100, ms=600_000)
    moved = rec.start_workflow(key="wf", engine_run_id="moved")
    rec.flush()
    _move(login_roles, moved.run.id)
    step = rec.start_step(moved, key="s", kind="rule", engine_task_id="s")
    rec.finish_step(step)
    with pytest.raises(StepsNotRecorded) as caught:
        rec.finish_workflow(moved)
    for why in caught.value.steps.values():
        assert f"role {role!r}" in why and "None" not in why, why


def test_a_recorder_refused_a_moved_run_names_the_connected_role(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role = _held_by_pguser(tmp_path, postgres_url, login_roles, monkeypatch)
    rec = Recorder("hid", root=tmp_path)
    moved = rec.start_workflow(key="wf", engine_run_id="moved")
    _move(login_roles, moved.run.id)
    with pytest.raises(PermissionDenied) as caught:
        rec.finish_workflow(moved)
    assert f"role {role!r}" in str(caught.value), caught.value
    with pytest.raises(PermissionDenied) as again:  # a run id held in another space
        Recorder("hid", root=tmp_path).start_workflow(key="wf", engine_run_id="moved")
    assert f"role {role!r}" in str(again.value), again.value


def test_a_save_under_a_key_held_in_another_space_names_the_connected_role(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lakeline as ll

    role = _held_by_pguser(tmp_path, postgres_url, login_roles, monkeypatch)
    (tmp_path / "two.txt").write_text("two")
    with pytest.raises(PermissionDenied, match=r"key 'shared\.txt' names an artifact") as caught:
        ll.Artifact(tmp_path / "two.txt", key="shared.txt").save()
    assert f"role {role!r}" in str(caught.value), caught.value
