"""A BatchRecorder batch holding a step the database refuses (its workflow run deleted since, its
own run deleted since it was recorded, a run hidden by space rules): the step, and what only
it names (its finish, the files only it used or produced, its child steps), is left out and
named in a StepsNotRecorded; the rest of the batch is written by the same flush, and later
flushes write as usual. Before, the batch stayed queued whole and every later flush, the exit
one included, failed with the same error: the workflow's later steps were all lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.errors import MissingReference, PermissionDenied, StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.testing import LoginRoles
from sqlalchemy import text
from test_recorder_refusals import _held_to_a_space


def _delete_run(instance: Instance, run_id: int) -> None:
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run_id})


def _catalog(instance: Instance) -> dict[str, object]:
    """Runs (engine ref: parent's engine ref, status), artifacts (key: producer's engine ref)
    and used-by edges (engine ref, key)."""
    with instance.engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT r.engine_ref, p.engine_ref, r.status FROM runs r "
                "LEFT JOIN runs p ON p.id = r.parent_id"
            )
        ).all()
        files = conn.execute(
            text("SELECT a.key, r.engine_ref FROM artifacts a LEFT JOIN runs r ON r.id = a.run_id")
        ).all()
        edges = conn.execute(
            text(
                "SELECT r.engine_ref, a.key FROM run_inputs i JOIN runs r ON r.id = i.run_id "
                "JOIN artifacts a ON a.id = i.artifact_id"
            )
        ).all()
    return {
        "runs": {ref: (parent, status) for ref, parent, status in runs},
        "files": {str(key).rsplit("/", 1)[-1]: ref for key, ref in files},
        "edges": sorted((ref, str(key).rsplit("/", 1)[-1]) for ref, key in edges),
    }


def _write(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / name).write_text(name)


@pytest.mark.parametrize("highest", [True, False], ids=["highest", "lower"])
def test_steps_under_a_deleted_workflow_run_are_left_out(
    instance: Instance, tmp_path: Path, highest: bool
) -> None:
    """`gone`'s steps b and c (a child of b) are refused; a, its files and edges are written,
    a file b made that a used is written without a producer, the files only b and c touched
    are not; the next flush writes the next steps."""
    rec = BatchRecorder("left", root=tmp_path, steps=100, ms=600_000)
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    if not highest:  # SQLite: the deleted run's id is not the one given out next
        rec.start_workflow(key="wf", engine_run_id="other")
    a = rec.start_step(kept, key="a", kind="rule", engine_task_id="a")
    b = rec.start_step(gone, key="b", kind="rule", engine_task_id="b")
    c = rec.start_step(gone, key="c", kind="rule", engine_task_id="c", parent=b)
    _write(tmp_path, "a_in.txt", "b_in.txt", "a.txt", "b_only.txt", "b_for_a.txt")
    rec.use(a, "a_in.txt")
    rec.use(b, "b_in.txt")
    rec.produce(a, "a.txt")
    rec.produce(b, "b_only.txt")
    rec.produce(b, "b_for_a.txt")
    rec.use(c, "b_only.txt")
    rec.use(a, "b_for_a.txt")
    for step in (a, b, c):
        rec.finish_step(step)
    _delete_run(instance, gone.run.id)
    with pytest.raises(StepsNotRecorded) as caught:
        rec.flush()
    assert set(caught.value.steps) == {"gone/b", "gone/c"}
    assert f"parent run id {gone.run.id}" in caught.value.steps["gone/b"]
    assert "'gone/b'" in caught.value.steps["gone/c"]
    assert isinstance(caught.value.__cause__, MissingReference)
    assert "'gone/b'" in str(caught.value) and "rest of the batch was written" in str(caught.value)
    seen = _catalog(instance)
    assert seen["runs"] == {
        "kept": (None, "started"),
        "kept/a": ("kept", "completed"),
        **({} if highest else {"other": (None, "started")}),
    }
    assert seen["files"] == {"a_in.txt": None, "a.txt": "kept/a", "b_for_a.txt": None}
    assert seen["edges"] == [("kept/a", "a_in.txt"), ("kept/a", "b_for_a.txt")]
    d = rec.start_step(kept, key="d", kind="rule", engine_task_id="d")
    rec.use(d, "a.txt")
    rec.finish_step(d)
    rec.flush()  # not stuck: the next batch is written
    rec.finish_workflow(kept)
    seen = _catalog(instance)
    assert seen["runs"]["kept/d"] == ("kept", "completed")
    assert seen["runs"]["kept"] == (None, "completed")
    assert ("kept/d", "a.txt") in seen["edges"]


def test_a_step_deleted_since_it_was_recorded_is_left_out(
    instance: Instance, tmp_path: Path
) -> None:
    """Step s was written by an earlier flush, then deleted: its finish and use queued since
    are left out and named; step t's are written."""
    rec = BatchRecorder("left", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    s = rec.start_step(workflow, key="s", kind="rule", engine_task_id="s")
    t = rec.start_step(workflow, key="t", kind="rule", engine_task_id="t")
    rec.flush()
    _delete_run(instance, s.run.id)
    _write(tmp_path, "s_in.txt", "t_in.txt", "out.txt")
    rec.use(s, "s_in.txt")
    rec.use(t, "t_in.txt")
    rec.produce(t, "out.txt")
    rec.finish_step(s)
    rec.finish_step(t)
    with pytest.raises(StepsNotRecorded, match=r"'w/s'.*does not exist") as caught:
        rec.flush()
    assert set(caught.value.steps) == {"w/s"}
    seen = _catalog(instance)
    assert seen["runs"] == {"w": (None, "started"), "w/t": ("w", "completed")}
    assert seen["edges"] == [("w/t", "t_in.txt")]
    assert seen["files"] == {"t_in.txt": None, "out.txt": "w/t"}
    rec.finish_workflow(workflow)  # nothing left queued: no error
    assert _catalog(instance)["runs"]["w"] == (None, "completed")


def test_a_step_left_out_is_named_again_when_it_is_used_later(
    instance: Instance, tmp_path: Path
) -> None:
    """The engine finishes a step left out of an earlier batch: that finish is left out and
    named too (it cannot be written), the rest written."""
    rec = BatchRecorder("left", root=tmp_path, steps=100, ms=600_000)
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    b = rec.start_step(gone, key="b", kind="rule", engine_task_id="b")
    _delete_run(instance, gone.run.id)
    with pytest.raises(StepsNotRecorded, match="'gone/b'"):
        rec.flush()
    a = rec.start_step(kept, key="a", kind="rule", engine_task_id="a")
    rec.finish_step(b)
    rec.finish_step(a)
    with pytest.raises(StepsNotRecorded, match=r"'gone/b'.*not recorded") as caught:
        rec.flush()
    assert set(caught.value.steps) == {"gone/b"}
    assert _catalog(instance)["runs"]["kept/a"] == ("kept", "completed")


def test_a_step_left_out_by_a_flush_inside_a_call_is_named_at_the_next_flush(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch due at a finish is written by that call, which does not raise for the steps
    left out (its own work is done): they are logged at once and raised by the next flush."""
    rec = BatchRecorder("left", root=tmp_path, steps=2, ms=600_000)
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    b = rec.start_step(gone, key="b", kind="rule", engine_task_id="b")
    a = rec.start_step(kept, key="a", kind="rule", engine_task_id="a")
    _delete_run(instance, gone.run.id)
    rec.finish_step(b)
    with caplog.at_level("WARNING", logger="lakeline.recorder"):
        rec.finish_step(a)  # the second finish: the batch is due
    assert "'gone/b'" in caplog.text
    assert _catalog(instance)["runs"]["kept/a"] == ("kept", "completed")
    with pytest.raises(StepsNotRecorded, match="'gone/b'"):
        rec.finish_workflow(kept)
    assert _catalog(instance)["runs"]["kept"] == (None, "completed")
    rec.flush()  # said once


@pytest.mark.postgres
def test_a_step_hidden_by_space_rules_is_left_out(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A role held to a space records a batch whose step's engine id another space's run
    holds: that step is left out (PermissionDenied its cause), its sibling written."""
    instance = _held_to_a_space(tmp_path, postgres_url, login_roles)
    rec = BatchRecorder("refusal", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="R4")
    hidden = rec.start_step(workflow, key="s", kind="rule", engine_task_id="R1/1", scoped=False)
    mine = rec.start_step(workflow, key="s", kind="rule", engine_task_id="2")
    _write(tmp_path, "h_in.txt", "in.txt")
    rec.use(hidden, "h_in.txt")
    rec.use(mine, "in.txt")
    rec.finish_step(hidden)
    rec.finish_step(mine)
    with pytest.raises(StepsNotRecorded, match="'R1/1'") as caught:
        rec.flush()
    assert set(caught.value.steps) == {"R1/1"}
    assert isinstance(caught.value.__cause__, PermissionDenied)
    seen = _catalog(instance)
    assert seen["runs"] == {"R4": (None, "started"), "R4/2": ("R4", "completed")}
    assert seen["edges"] == [("R4/2", "in.txt")]
    rec.finish_workflow(workflow)
    assert _catalog(instance)["runs"]["R4"] == (None, "completed")
