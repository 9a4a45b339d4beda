"""A step recorded under a workflow run deleted since its handle was made. SQLite gives a new
row the highest id + 1: when the deleted run had the highest id, the step's run got that id
itself, named itself as its parent and the foreign key held (a run its own parent: a cycle in
the lineage, recorded as a success); in a batch the next step became a child of the first.
Otherwise the batch's insert failed with the raw driver error. Each is a MissingReference
naming the step and the missing parent, on both databases, nothing recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.errors import MissingReference, StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from sqlalchemy import text


def _delete_run(instance: Instance, run_id: int) -> None:
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run_id})


def _runs(instance: Instance) -> list[tuple[int, str, int | None]]:
    with instance.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, engine_ref, parent_id FROM runs ORDER BY id"))
        return [(int(i), str(ref), None if p is None else int(p)) for i, ref, p in rows]


def test_a_step_under_a_deleted_workflow_run_of_the_highest_id(
    instance: Instance, tmp_path: Path
) -> None:
    rec = Recorder("gone", root=tmp_path, instance=instance)
    workflow = rec.start_workflow(key="wf", engine_run_id="top-1")  # the highest id
    _delete_run(instance, workflow.run.id)
    with pytest.raises(MissingReference, match=rf"'top-1/7'.*parent run id {workflow.run.id}"):
        rec.start_step(workflow, key="step", kind="rule", engine_task_id="7")
    assert [ref for _, ref, _ in _runs(instance)] == []


@pytest.mark.parametrize("highest", [True, False], ids=["highest", "lower"])
def test_a_flush_of_steps_under_a_deleted_workflow_run(
    instance: Instance, tmp_path: Path, highest: bool
) -> None:
    rec = BatchRecorder("gone", root=tmp_path, steps=100, ms=600_000)
    if not highest:
        rec.start_workflow(key="wf", engine_run_id="kept-1")
    workflow = rec.start_workflow(key="wf", engine_run_id="top-2")
    rec.flush()
    if not highest:
        rec.start_workflow(key="wf", engine_run_id="kept-2")
        rec.flush()
    before = _runs(instance)
    _delete_run(instance, workflow.run.id)
    for task in ("1", "2"):
        rec.finish_step(rec.start_step(workflow, key="s", kind="rule", engine_task_id=task))
    with pytest.raises(StepsNotRecorded, match=rf"'top-2/1'.*parent run id {workflow.run.id}") as e:
        rec.flush()  # left out, named (test_batch_left_out.py)
    assert isinstance(e.value.__cause__, MissingReference) and set(e.value.steps) == {
        "top-2/1",
        "top-2/2",
    }
    assert _runs(instance) == [row for row in before if row[0] != workflow.run.id]
