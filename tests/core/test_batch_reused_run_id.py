"""A step whose run was written by an earlier flush and deleted since, when it had the
highest id: on SQLite the next flush's new run takes that id, and the step's later output and
finish, named by that id, landed on the unrelated new run (recorded as its producer, and
finished "errored" in its place) with no foreign key to refuse them. The step is left out
instead (StepsNotRecorded), as on PostgreSQL, whose sequences never give an id twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.errors import StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from sqlalchemy import text
from test_batch_left_out import _delete_run


def test_a_deleted_steps_output_and_finish_never_land_on_the_run_that_took_its_id(
    instance: Instance, tmp_path: Path
) -> None:
    rec = BatchRecorder("reuse", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    gone = rec.start_step(workflow, key="a", kind="rule", engine_task_id="gone")
    rec.flush()  # its run written while it runs: the highest id
    _delete_run(instance, gone.run.id)
    (tmp_path / "out.txt").write_text("x")
    other = rec.start_step(workflow, key="a", kind="rule", engine_task_id="other")
    rec.produce(gone, tmp_path / "out.txt")
    rec.finish_step(gone, "errored", error="boom")
    with pytest.raises(StepsNotRecorded) as caught:
        rec.flush()  # other's run is new in this flush
    assert set(caught.value.steps) == {"w/gone"}, caught.value.steps
    rec.finish_step(other)
    rec.finish_workflow(workflow)
    with instance.engine.connect() as conn:
        runs = dict(conn.execute(text("SELECT engine_ref, status FROM runs")).all())
        made = conn.execute(
            text("SELECT r.engine_ref FROM artifacts a JOIN runs r ON r.id = a.run_id")
        ).all()
    assert runs == {"w": "completed", "w/other": "completed"}, runs
    assert made == [], made  # out.txt is not other's
