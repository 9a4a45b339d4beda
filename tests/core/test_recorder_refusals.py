"""A Recorder's insert the database refused for another reason than a concurrent insert of
the same run: a run hidden by space rules (PostgreSQL row security: another space's run holds
the engine id), a parent run deleted since it was recorded. Each gets a clear error naming the
run; only a real clash with a run recorded before is taken as "use that run". Before, every
IntegrityError was taken for that: the raw driver error reached the caller, a flush said the
hidden run "was deleted", and a use by a deleted run hashed its file again to fail in a save."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.errors import MissingReference, PermissionDenied, StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from sqlalchemy import text
from statements import recorded


def _delete_run(instance: Instance, run_id: int) -> None:
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run_id})


def test_a_step_under_a_deleted_workflow_run_names_it(instance: Instance, tmp_path: Path) -> None:
    rec = Recorder("refusal", root=tmp_path, instance=instance)
    workflow = rec.start_workflow(key="wf", engine_run_id="gone-1")
    rec.start_workflow(key="wf", engine_run_id="kept-1")  # SQLite reuses the highest id
    _delete_run(instance, workflow.run.id)
    with pytest.raises(MissingReference, match=rf"run 'gone-1/7'.*parent run id {workflow.run.id}"):
        rec.start_step(workflow, key="step", kind="rule", engine_task_id="7")
    again = rec.start_workflow(key="wf", engine_run_id="gone-1")  # recorded anew: no clash
    assert again.run.id != workflow.run.id
    assert rec.start_step(again, key="step", kind="rule", engine_task_id="7").run.id is not None


def test_a_use_by_a_deleted_run_names_the_run_and_hashes_nothing(
    instance: Instance, tmp_path: Path
) -> None:
    """The file is known to the Recorder (another step produced it): the edge's refusal is the
    run's, not the artifact's; the file is not registered again."""
    rec = Recorder("refusal", root=tmp_path, instance=instance)
    workflow = rec.start_workflow(key="wf", engine_run_id="use-1")
    maker = rec.start_step(workflow, key="make", kind="rule", engine_task_id="1")
    user = rec.start_step(workflow, key="use", kind="rule", engine_task_id="2")
    (tmp_path / "made.txt").write_text("made")
    made = rec.produce(maker, "made.txt")
    assert made is not None
    _delete_run(instance, user.run.id)
    with recorded(instance.engine) as seen, pytest.raises(MissingReference) as caught:
        rec.use(user, "made.txt")
    assert "'use-1/2'" in str(caught.value) and f"id {user.run.id}" in str(caught.value)
    assert not [sql for sql, _ in seen if "INSERT INTO ARTIFACTS" in sql.upper()], seen
    assert rec.use(maker, "made.txt") == made  # the artifact is there: still linked


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)


def _held_to_a_space(tmp_path: Path, postgres_url: str, login_roles: LoginRoles) -> Instance:
    """An owner records workflow `R1` and its step `R1/1` in `all`; then a role held to space
    `onc` is connected (it sees neither)."""
    ll.init(tmp_path / "data", db=postgres_url, name="owner")
    rec = Recorder("refusal", root=tmp_path)
    rec.start_step(
        rec.start_workflow(key="wf", engine_run_id="R1"), key="s", kind="rule", engine_task_id="1"
    )
    _run("space", "create", "onc")
    role, url = login_roles.create("onc")
    _run("access", "grant", role, "write", "--space", "onc")
    return login_roles.connect_as(url, "onc")


@pytest.mark.postgres
def test_a_run_hidden_by_space_rules_is_named(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    _held_to_a_space(tmp_path, postgres_url, login_roles)
    rec = Recorder("refusal", root=tmp_path)
    with pytest.raises(PermissionDenied, match=r"run 'R1' of engine 'refusal'.*space"):
        rec.start_workflow(key="wf", engine_run_id="R1")
    assert rec.start_workflow(key="wf", engine_run_id="R2").run.id is not None


@pytest.mark.postgres
def test_a_flush_names_a_step_run_hidden_by_space_rules(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A batch's step whose engine id another space's run holds: a PermissionDenied naming it
    (was "deleted while this flush recorded it again"), the cause of the StepsNotRecorded
    that leaves it out (test_batch_left_out.py), after one transaction: its insert, and one
    more that would take the place of a run deleted since its insert clashed."""
    instance = _held_to_a_space(tmp_path, postgres_url, login_roles)
    rec = BatchRecorder("refusal", root=tmp_path, steps=10)
    workflow = rec.start_workflow(key="wf", engine_run_id="R3")
    step = rec.start_step(workflow, key="s", kind="rule", engine_task_id="R1/1", scoped=False)
    rec.finish_step(step)
    with recorded(instance.engine) as seen, pytest.raises(StepsNotRecorded, match="'R1/1'") as e:
        rec.flush()
    assert isinstance(e.value.__cause__, PermissionDenied)
    assert sum(sql.lstrip().upper().startswith("INSERT INTO RUNS") for sql, _ in seen) == 2
