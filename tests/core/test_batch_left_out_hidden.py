"""PostgreSQL: a role held to spaces records a batch naming a run an admin moved since to a
space the role is not in (it no longer sees it) and a run deleted since. The look-up after the
failed flush tells them apart: the moved run is named hidden by space rules, the deleted one
deleted. Before, both were "does not exist (deleted since)": a false fact about the catalog."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import PermissionDenied, StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from lakeline.testing_servers import PostgresServer
from test_definer_overloads import down_and_up
from test_recorder_refusals import _run

pytestmark = pytest.mark.postgres


def _held_to_onc(tmp_path: Path, postgres_url: str, login_roles: LoginRoles) -> Instance:
    """A writer held to space `onc` (spaces `onc` and `far` made by the owner), connected."""
    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _run("space", "create", "onc")
    _run("space", "create", "far")
    role, url = login_roles.create("onc")
    _run("access", "grant", role, "write", "--space", "onc")
    return login_roles.connect_as(url, "onc")


def _runs(login_roles: LoginRoles) -> dict[str, tuple[str | None, str, str]]:
    """Every run as the superuser sees it: engine ref -> (parent's engine ref, status, space)."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(login_roles.url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT r.engine_ref, p.engine_ref, r.status, s.name FROM runs r "
            "LEFT JOIN runs p ON p.id = r.parent_id JOIN spaces s ON s.id = r.space_id"
        ).fetchall()
    return {ref: (parent, status, space) for ref, parent, status, space in rows}


def test_a_run_moved_to_another_space_is_named_hidden_not_deleted(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """Workflow `moved` goes to space `far`, workflow `gone` is deleted, `kept` stays: the
    finish of `moved` and the steps under it are left out as hidden by space rules, the step
    under `gone` as deleted; `kept`'s step is written."""
    _held_to_onc(tmp_path, postgres_url, login_roles)
    rec = BatchRecorder("hid", root=tmp_path, steps=100, ms=600_000)
    moved = rec.start_workflow(key="wf", engine_run_id="moved")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    rec.flush()
    login_roles.admin_execute(
        f"UPDATE runs SET space_id = (SELECT id FROM spaces WHERE name = 'far') "
        f"WHERE id = {moved.run.id}",
        f"DELETE FROM runs WHERE id = {gone.run.id}",
    )
    m = rec.start_step(moved, key="s", kind="rule", engine_task_id="m")
    g = rec.start_step(gone, key="s", kind="rule", engine_task_id="g")
    k = rec.start_step(kept, key="s", kind="rule", engine_task_id="k")
    for step in (m, g, k):
        rec.finish_step(step)
    with pytest.raises(StepsNotRecorded) as caught:
        rec.flush()
    steps = caught.value.steps
    assert set(steps) == {"moved/m", "gone/g"}, steps
    assert "hidden by space rules" in steps["moved/m"], steps
    assert "deleted" not in steps["moved/m"], steps
    assert "does not exist (deleted since)" in steps["gone/g"], steps
    seen = _runs(login_roles)
    assert seen["kept/k"] == ("kept", "completed", "onc")
    assert "moved/m" not in seen and "gone/g" not in seen
    assert seen["moved"] == (None, "started", "far")


def _move(login_roles: LoginRoles, run_id: int) -> None:
    login_roles.admin_execute(
        f"UPDATE runs SET space_id = (SELECT id FROM spaces WHERE name = 'far') WHERE id = {run_id}"
    )


def test_a_batch_finishing_a_moved_workflow_names_it_hidden(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The batch's only failure is the finish of the moved workflow: left out as hidden by
    space rules (PermissionDenied its cause; was "no longer exists", then "deleted since"), and
    so is its step (its parent run unseen), for that reason too."""
    _held_to_onc(tmp_path, postgres_url, login_roles)
    rec = BatchRecorder("hid", root=tmp_path, steps=100, ms=600_000)
    moved = rec.start_workflow(key="wf", engine_run_id="moved")
    rec.flush()
    _move(login_roles, moved.run.id)
    step = rec.start_step(moved, key="s", kind="rule", engine_task_id="s")
    rec.finish_step(step)
    with pytest.raises(StepsNotRecorded) as caught:
        rec.finish_workflow(moved)
    assert set(caught.value.steps) == {"moved", "moved/s"}
    for why in caught.value.steps.values():
        assert "hidden by space rules" in why and "deleted" not in why
    assert isinstance(caught.value.__cause__, PermissionDenied)
    seen = _runs(login_roles)
    assert seen["moved"] == (None, "started", "far")


def test_a_recorder_finishing_a_moved_workflow_names_it_hidden(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The plain Recorder: PermissionDenied naming the space rules (was "no longer exists")."""
    _held_to_onc(tmp_path, postgres_url, login_roles)
    rec = Recorder("hid", root=tmp_path)
    moved = rec.start_workflow(key="wf", engine_run_id="moved")
    _move(login_roles, moved.run.id)
    with pytest.raises(PermissionDenied, match="space"):
        rec.finish_workflow(moved)
    assert _runs(login_roles)["moved"] == (None, "started", "far")


def test_a_populated_catalog_goes_down_to_0025_and_back(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    """0026's downgrade gives a fresh 0025's schema back (`pg_dump -s`), its upgrade a fresh
    head's; the audit chain verifies throughout."""
    down_and_up(tmp_path, postgres_url, postgres_server, "0025")
