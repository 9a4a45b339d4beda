"""Review of the steps a BatchRecorder's flush leaves out (test_batch_left_out.py): what a
left-out step named must not reach the catalog under another record. On SQLite a deleted run's
id is given again to the next run inserted (the highest id + 1), so a handle that still holds
the deleted id names that new run: a step started under it, or the workflow's finish, would be
recorded under (or onto) an unrelated run. And a file the left-out step produced, used by a
step that is written, must be written without that producer (not with its stale id)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.errors import StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.handles import Handle
from test_batch_left_out import _catalog, _delete_run, _write


def _gone_workflow(instance: Instance, tmp_path: Path) -> tuple[BatchRecorder, Handle, Handle]:
    """kept and gone (the highest id) recorded, gone deleted, a flush leaving out gone/b: the
    next run inserted (kept/a) takes gone's id on SQLite."""
    rec = BatchRecorder("stale", root=tmp_path, steps=100, ms=600_000)
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    _delete_run(instance, gone.run.id)
    rec.finish_step(rec.start_step(gone, key="b", kind="rule", engine_task_id="b"))
    rec.finish_step(rec.start_step(kept, key="a", kind="rule", engine_task_id="a"))
    with pytest.raises(StepsNotRecorded, match="'gone/b'"):
        rec.flush()
    return rec, kept, gone


def test_a_later_step_of_a_deleted_workflow_run_is_not_recorded_under_another_run(
    instance: Instance, tmp_path: Path
) -> None:
    rec, _, gone = _gone_workflow(instance, tmp_path)
    rec.finish_step(rec.start_step(gone, key="c", kind="rule", engine_task_id="c"))
    with pytest.raises(StepsNotRecorded, match="'gone/c'"):
        rec.flush()
    runs = _catalog(instance)["runs"]
    assert runs == {"kept": (None, "started"), "kept/a": ("kept", "completed")}


def test_the_finish_of_a_deleted_workflow_run_does_not_finish_another_run(
    instance: Instance, tmp_path: Path
) -> None:
    rec, _, gone = _gone_workflow(instance, tmp_path)
    with pytest.raises(StepsNotRecorded, match="'gone'"):
        rec.finish_workflow(gone, "errored", error="boom")
    runs = _catalog(instance)["runs"]
    assert runs == {"kept": (None, "started"), "kept/a": ("kept", "completed")}


def test_a_file_a_deleted_step_produced_is_written_without_that_producer(
    instance: Instance, tmp_path: Path
) -> None:
    """s was written by an earlier flush, then deleted; s produces out.txt, which t uses: s is
    left out, t and out.txt (no producer) written."""
    rec = BatchRecorder("stale", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    s = rec.start_step(workflow, key="s", kind="rule", engine_task_id="s")
    t = rec.start_step(workflow, key="t", kind="rule", engine_task_id="t")
    rec.flush()
    _delete_run(instance, s.run.id)
    _write(tmp_path, "out.txt")
    rec.produce(s, "out.txt")
    rec.use(t, "out.txt")
    rec.finish_step(s)
    rec.finish_step(t)
    with pytest.raises(StepsNotRecorded, match="'w/s'") as caught:
        rec.flush()
    assert set(caught.value.steps) == {"w/s"}
    seen = _catalog(instance)
    assert seen["runs"] == {"w": (None, "started"), "w/t": ("w", "completed")}
    assert seen["files"] == {"out.txt": None}
    assert seen["edges"] == [("w/t", "out.txt")]


def test_the_exit_flush_says_the_batch_was_written_but_the_steps_left_out(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At interpreter exit a flush that leaves steps out wrote the rest: said so, not "the
    last batch could not be written" (a false report of lost records)."""
    import weakref

    from lakeline.lineage.batching import _flush_at_exit

    rec = BatchRecorder("stale", root=tmp_path, steps=100, ms=600_000)
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    rec.finish_step(rec.start_step(kept, key="a", kind="rule", engine_task_id="a"))
    rec.finish_step(rec.start_step(gone, key="b", kind="rule", engine_task_id="b"))
    _delete_run(instance, gone.run.id)
    with caplog.at_level("WARNING", logger="lakeline.recorder"):
        _flush_at_exit(weakref.ref(rec))
    assert "'gone/b'" in caplog.text
    assert "could not be written" not in caplog.text
    assert _catalog(instance)["runs"]["kept/a"] == ("kept", "completed")


def test_steps_not_recorded_survives_pickling() -> None:
    """An engine's worker process hands its exceptions back pickled (Dask, multiprocessing):
    StepsNotRecorded comes back whole, its steps too (it could not be unpickled: TypeError)."""
    import pickle

    error = StepsNotRecorded("1 step(s) not recorded", {"w/s": "its run does not exist"})
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.steps == error.steps
