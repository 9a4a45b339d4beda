"""A step finished as cached from a run that is deleted before the flush writes the finish:
the step is recorded (its run, files and used-by edges) without the cached-from link, and a
warning names the step and the link dropped. Before, the whole step was left out
(StepsNotRecorded): a missing link cost the step, its files and its edges. The plain Recorder
records it the same way (before: the foreign key's IntegrityError from finish_step, the step
left `started`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from sqlalchemy import text
from test_batch_left_out import _catalog, _delete_run, _write


def _cached_from(instance: Instance, ref: str) -> tuple[str, object]:
    with instance.engine.connect() as conn:
        status, cached = conn.execute(
            text("SELECT status, cached_from_id FROM runs WHERE engine_ref = :ref"), {"ref": ref}
        ).one()
    return status, cached


@pytest.mark.parametrize("highest", [True, False], ids=["highest", "lower"])
def test_a_cached_step_whose_original_was_deleted_is_recorded_without_the_link(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture, highest: bool
) -> None:
    """`highest`: the original is the last run inserted, and a step started in the same
    batch is inserted first (on SQLite it takes the deleted run's id: the link must not
    point at it)."""
    rec = BatchRecorder("cache", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    if not highest:
        original = rec.start_step(workflow, key="a", kind="rule", engine_task_id="orig")
        rec.start_step(workflow, key="a", kind="rule", engine_task_id="other")
    else:
        rec.start_step(workflow, key="a", kind="rule", engine_task_id="other")
        original = rec.start_step(workflow, key="a", kind="rule", engine_task_id="orig")
    rec.finish_step(original)
    rec.flush()
    _write(tmp_path, "in.txt", "out.txt")
    later = rec.start_step(workflow, key="a", kind="rule", engine_task_id="later")
    cached = rec.start_step(workflow, key="a", kind="rule", engine_task_id="cached")
    rec.use(cached, "in.txt")
    rec.produce(cached, "out.txt")
    rec.finish_step(cached, "cached", cached_from="w/orig")  # found: its id is queued
    _delete_run(instance, original.run.id)
    rec.finish_step(later)
    with caplog.at_level(logging.WARNING, logger="lakeline.recorder"):
        rec.flush()  # no StepsNotRecorded: nothing is left out
    seen = _catalog(instance)
    assert seen["runs"]["w/cached"] == ("w", "cached")
    assert seen["runs"]["w/later"] == ("w", "completed")
    assert "w/orig" not in seen["runs"]
    assert seen["edges"] == [("w/cached", "in.txt")]
    assert seen["files"]["out.txt"] == "w/cached"
    assert _cached_from(instance, "w/cached") == ("cached", None)
    warned = [r.getMessage() for r in caplog.records if "w/cached" in r.getMessage()]
    assert warned and "cached-from" in warned[0] and "recorded without" in warned[0]
    rec.finish_workflow(workflow)


@pytest.mark.parametrize("outputs", [False, True], ids=["alone", "outputs"])
def test_the_plain_recorder_records_a_cached_step_whose_original_was_deleted(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture, outputs: bool
) -> None:
    """The original deleted between finish_step's look-up and its write (another process)."""
    rec = Recorder("cache", root=tmp_path)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    original = rec.start_step(workflow, key="a", kind="rule", engine_task_id="orig")
    rec.finish_step(original)
    cached = rec.start_step(workflow, key="a", kind="rule", engine_task_id="cached")
    found = rec._find

    def find_then_delete(ref: str) -> object:
        run = found(ref)
        _delete_run(instance, original.run.id)
        return run

    rec._find = find_then_delete  # type: ignore[method-assign,assignment]
    _write(tmp_path, "out.txt")
    with caplog.at_level(logging.WARNING, logger="lakeline.recorder"):
        made = ["out.txt"] if outputs else []
        rec.finish_step(cached, "cached", cached_from="w/orig", outputs=made)
    assert _cached_from(instance, "w/cached") == ("cached", None)
    if outputs:
        assert _catalog(instance)["files"] == {"out.txt": "w/cached"}
    assert any("w/cached" in r.getMessage() for r in caplog.records)
