"""A BatchRecorder writes a workflow's finish with the rest of its batch: one transaction, the
same records as the plain Recorder's, and a finish whose flush failed is written by the next."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.access.audit import verify
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Handle, Recorder
from sqlalchemy import event


def _finished_step(rec: Recorder, root: Path) -> tuple[Handle, Handle]:
    """A workflow run (written) with one step that made `out.txt`: queued when batched."""
    wf = rec.start_workflow(key="p", engine_run_id="r")
    (root / "out.txt").write_text("out")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="0")
    rec.produce(step, "out.txt")
    rec.finish_step(step)
    return wf, step


@contextmanager
def _commits(instance: Instance) -> Iterator[list[int]]:
    """The commits made inside the block."""
    commits: list[int] = []

    def commit(conn: Any) -> None:
        commits.append(1)

    event.listen(instance.engine, "commit", commit)
    try:
        yield commits
    finally:
        event.remove(instance.engine, "commit", commit)


def _state(run: Any) -> tuple[Any, ...]:
    return (run.status, [e["status"] for e in run.status_log], run.finished_at is not None)


@pytest.mark.parametrize("batch", [False, True])
def test_the_workflow_finish_is_written_with_its_batch(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """Batched: the queued step and the workflow's finish in one commit (was two: the flush,
    then the finish); records as the plain Recorder writes them."""
    rec = BatchRecorder("toy", root=tmp_path, ms=600_000) if batch else Recorder("toy", tmp_path)
    wf, step = _finished_step(rec, tmp_path)
    with _commits(instance) as commits:
        record = rec.finish_workflow(wf, "errored", exit_code=2, error="boom")
    if batch:
        assert len(commits) == 1
    assert record is wf.run
    stored = ll.Run.get(wf.run.uid)
    assert _state(stored) == _state(wf.run) == ("errored", ["started", "errored"], True)
    assert (stored.exit_code, stored.error) == (wf.run.exit_code, wf.run.error) == (2, "boom")
    assert ll.Run.get(step.run.uid).status == "completed"
    assert ll.Artifact.get(key="out.txt").run_id == step.run.id
    assert verify(instance).ok


def test_a_finish_whose_flush_failed_is_written_by_the_next(
    instance: Instance, tmp_path: Path
) -> None:
    """The flush writing the workflow's finish fails inside its transaction: nothing of the
    batch is written, and the next flush writes the step and the finish once."""

    def fail() -> None:
        raise KeyboardInterrupt

    rec = BatchRecorder("toy", root=tmp_path, ms=600_000)
    wf, step = _finished_step(rec, tmp_path)
    with checkpoints.at("recorder.flush", fail), pytest.raises(KeyboardInterrupt):
        rec.finish_workflow(wf, "completed")
    assert ll.Run.get(wf.run.uid).status == "started"
    assert ll.Run.filter(engine="toy", engine_ref="r/0").count() == 0
    rec.flush()
    stored = ll.Run.get(wf.run.uid)
    assert _state(stored) == _state(wf.run) == ("completed", ["started", "completed"], True)
    assert ll.Run.get(step.run.uid).status == "completed"
    rec.finish_workflow(wf, "completed")  # again: a replay, no change
    assert [e["status"] for e in ll.Run.get(wf.run.uid).status_log] == ["started", "completed"]
    assert verify(instance).ok


def test_a_nul_in_the_workflow_error_is_refused_at_the_call_on_postgres(
    instance: Instance, tmp_path: Path
) -> None:
    """PostgreSQL cannot store it: refused at the call, nothing queued (a queued finish would
    fail every later flush); SQLite keeps the whole text, as the plain Recorder does."""
    rec = BatchRecorder("toy", root=tmp_path, ms=600_000)
    wf, _ = _finished_step(rec, tmp_path)
    if instance.engine.dialect.name == "postgresql":
        with pytest.raises(InvalidValue, match="NUL"):
            rec.finish_workflow(wf, "errored", error="a\x00b")
        assert ll.Run.get(wf.run.uid).status == "started"
        rec.finish_workflow(wf, "errored", error="ab")
        expected = "ab"
    else:
        rec.finish_workflow(wf, "errored", error="a\x00b")
        expected = "a\x00b"
    assert (ll.Run.get(wf.run.uid).status, ll.Run.get(wf.run.uid).error) == ("errored", expected)
