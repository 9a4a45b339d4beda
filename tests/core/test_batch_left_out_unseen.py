"""PostgreSQL: a role held to spaces records a step cached from a run another role recorded,
which an admin then moves to a space the role is not in. The batch's flush fails for another
reason (a run deleted since), and its look-up no longer sees the original run: it cannot tell
a run hidden by space rules from a deleted one (`lakeline_own_runs` answers for the role's own
runs only), so the reason given must not say "deleted since" (a false fact: the run is there);
it says the run is not visible to the role, deleted or in another space. The step itself is
recorded, without its cached-from link (a link it cannot see: a fact missing, none wrong)."""

from __future__ import annotations

import logging
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import StepsNotRecorded
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from test_batch_left_out_hidden import _runs
from test_recorder_refusals import _run

pytestmark = pytest.mark.postgres

FAR = "UPDATE runs SET space_id = (SELECT id FROM spaces WHERE name = '{space}') WHERE id = {id}"


def test_a_step_cached_from_another_roles_moved_run_is_not_called_deleted(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _run("space", "create", "onc")
    _run("space", "create", "far")
    owners = Recorder("hid", root=tmp_path)
    original = owners.start_workflow(key="wf", engine_run_id="orig")
    owners.finish_workflow(original)
    login_roles.admin_execute(FAR.format(space="onc", id=original.run.id))  # the role sees it
    role, url = login_roles.create("onc")
    _run("access", "grant", role, "write", "--space", "onc")
    login_roles.connect_as(url, "onc")
    rec = BatchRecorder("hid", root=tmp_path, steps=100, ms=600_000)
    mine = rec.start_workflow(key="wf", engine_run_id="mine")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    rec.flush()
    cached = rec.start_step(mine, key="s", kind="rule", engine_task_id="c")
    rec.finish_step(cached, cached_from="orig")  # found: in space onc
    lost = rec.start_step(gone, key="s", kind="rule", engine_task_id="g")
    rec.finish_step(lost)
    login_roles.admin_execute(
        FAR.format(space="far", id=original.run.id), f"DELETE FROM runs WHERE id = {gone.run.id}"
    )
    with (
        caplog.at_level(logging.WARNING, logger="lakeline.recorder"),
        pytest.raises(StepsNotRecorded) as caught,
    ):
        rec.flush()
    steps = caught.value.steps
    assert "does not exist (deleted since)" in steps["gone/g"], steps
    assert "mine/c" not in steps, steps  # recorded, without the link it cannot see
    said = [r.getMessage() for r in caplog.records if "'mine/c'" in r.getMessage()]
    assert said and "recorded without its cached-from link" in said[0], said
    why = said[0]
    assert "deleted since" not in why and "not visible" in why and "space" in why, said
    runs = _runs(login_roles)
    assert runs["orig"] == (None, "completed", "far")
    assert runs["mine/c"][1] == "completed", runs  # as finished, from no run
