"""A Recorder's insert of a run meets a run recorded under its engine id, which is deleted
before the look-up for it: the run is recorded anew (as if the deletion had come first). Before,
a role held to spaces was told the run was hidden by space rules (a PermissionDenied with a
false cause), another role got the raw IntegrityError, and a batch was refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline import checkpoints
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from sqlalchemy import text
from test_recorder_refusals import _held_to_a_space


def _refs(instance: Instance) -> list[str]:
    with instance.engine.connect() as conn:
        return sorted(conn.execute(text("SELECT engine_ref FROM runs")).scalars())


def test_a_workflow_run_deleted_after_the_clash_is_recorded_anew(
    instance: Instance, tmp_path: Path
) -> None:
    rec = Recorder("clash", root=tmp_path, instance=instance)
    first = rec.start_workflow(key="wf", engine_run_id="W1")

    def delete() -> None:
        with instance.engine.begin() as conn:
            conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": first.run.id})

    with checkpoints.at("recorder.clash", delete):
        again = rec.start_workflow(key="wf", engine_run_id="W1")
    assert again.run.id is not None and again.run.uid != first.run.uid  # SQLite: same id
    assert _refs(instance) == ["W1"]


@pytest.mark.postgres
@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
def test_a_role_held_to_spaces_is_not_told_a_deleted_run_is_hidden(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles, batch: bool
) -> None:
    """The role records W5 and its step W5/1; recording them again (a replay), the step's
    (plain: the workflow's) run is deleted by an admin between the clash and the look-up."""
    instance = _held_to_a_space(tmp_path, postgres_url, login_roles)
    rec = Recorder("clash", root=tmp_path)
    workflow = rec.start_workflow(key="wf", engine_run_id="W5")
    step = rec.start_step(workflow, key="s", kind="rule", engine_task_id="1")
    gone = step.run.id if batch else workflow.run.id
    if not batch:
        login_roles.admin_execute(f"DELETE FROM runs WHERE id = {step.run.id}")

    def delete() -> None:
        login_roles.admin_execute(f"DELETE FROM runs WHERE id = {gone}")

    replay = BatchRecorder("clash", root=tmp_path) if batch else Recorder("clash", root=tmp_path)
    if batch:
        again = replay.start_workflow(key="wf", engine_run_id="W5")
        replayed = replay.start_step(again, key="s", kind="rule", engine_task_id="1")
        replay.finish_step(replayed)
        with checkpoints.at("recorder.clash", delete):
            replay.flush()
        assert replayed.run.id is not None and replayed.run.id != gone
        assert replayed.run.status == "completed"
    else:
        with checkpoints.at("recorder.clash", delete):
            again = replay.start_workflow(key="wf", engine_run_id="W5")
        assert again.run.id is not None and again.run.id != gone
    assert _refs(instance) == (["W5", "W5/1"] if batch else ["W5"])
