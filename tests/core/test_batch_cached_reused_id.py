"""A step started in an earlier batch, finished cached from a run deleted before the flush
writes that finish, when the deleted run had the highest id: on SQLite the flush's own new
run takes that id, and the finish (an UPDATE, no foreign key to refuse it) linked the step
to that unrelated run. The link is dropped instead, as when the database refuses it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lakeline.errors import StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from sqlalchemy import text
from test_batch_left_out import _delete_run


def test_a_finish_cached_from_a_deleted_run_never_links_the_run_that_took_its_id(
    instance: Instance, tmp_path: Path
) -> None:
    rec = BatchRecorder("cache", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    cached = rec.start_step(workflow, key="a", kind="rule", engine_task_id="cached")
    rec.flush()  # the cached step's run, written while it runs
    original = rec.start_step(workflow, key="a", kind="rule", engine_task_id="orig")
    rec.finish_step(original)
    rec.flush()  # the original: the highest id
    rec.finish_step(cached, "cached", cached_from="w/orig")  # found: its id queued
    _delete_run(instance, original.run.id)
    later = rec.start_step(workflow, key="a", kind="rule", engine_task_id="later")
    rec.finish_step(later)
    rec.flush()
    with instance.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.status, o.engine_ref FROM runs r "
                "LEFT JOIN runs o ON o.id = r.cached_from_id WHERE r.engine_ref = 'w/cached'"
            )
        ).all()
    assert rows == [("cached", None)]  # not 'w/later', which took the deleted run's id
    rec.finish_workflow(workflow)


def test_a_cached_step_left_out_is_not_said_to_be_recorded_without_its_link(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The original and the cached step's own run both deleted: the step is left out
    (StepsNotRecorded), and no warning says it was recorded without its cached-from link."""
    rec = BatchRecorder("cache", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    original = rec.start_step(workflow, key="a", kind="rule", engine_task_id="orig")
    rec.finish_step(original)
    cached = rec.start_step(workflow, key="a", kind="rule", engine_task_id="cached")
    rec.start_step(workflow, key="a", kind="rule", engine_task_id="last")  # the highest id
    rec.flush()
    rec.finish_step(cached, "cached", cached_from="w/orig")
    _delete_run(instance, original.run.id)
    _delete_run(instance, cached.run.id)
    with (
        caplog.at_level(logging.WARNING, logger="lakeline.recorder"),
        pytest.raises(StepsNotRecorded) as raised,
    ):
        rec.flush()
    assert list(raised.value.steps) == ["w/cached"]
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "recorded without its cached-from link" in m], said
    rec.finish_workflow(workflow)
