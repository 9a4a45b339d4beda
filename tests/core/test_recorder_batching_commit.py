"""A BatchRecorder's flush is one transaction: its new runs with its files, edges and
finishes (one commit), also when the save retries it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.access.audit import entries, verify
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from sqlalchemy import event


def _queue_steps(rec: BatchRecorder, root: Path, n: int) -> list[Any]:
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    steps = []
    for i in range(n):
        (root / f"in{i}.txt").write_text(f"in {i}")
        (root / f"out{i}.txt").write_text(f"out {i}")
        step = rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i))
        rec.use(step, f"in{i}.txt")
        rec.produce(step, f"out{i}.txt")
        rec.finish_step(step)
        steps.append(step)
    return steps


def test_a_flush_commits_once(instance: Instance, tmp_path: Path) -> None:
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    steps = _queue_steps(rec, tmp_path, 3)
    commits: list[int] = []

    def count(conn: Any) -> None:
        commits.append(1)

    event.listen(instance.engine, "commit", count)
    try:
        rec.flush()
    finally:
        event.remove(instance.engine, "commit", count)
    assert len(commits) == 1
    for i, step in enumerate(steps):
        run = ll.Run.get(id=step.run.id)
        assert run.status == "completed"
        assert [a.key for a in run.inputs.all()] == [f"in{i}.txt"]
        assert [a.key for a in run.outputs.all()] == [f"out{i}.txt"]


def test_a_retried_flush_inserts_its_runs_again(instance: Instance, tmp_path: Path) -> None:
    """A conflict the save retries (a concurrent writer's) rolls the runs back with the rest: the
    retry inserts them again, each once, and their files name them."""
    from faults import conflict, raise_once_at

    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    steps = _queue_steps(rec, tmp_path, 2)
    with raise_once_at("recorder.flush", conflict(instance)) as calls:
        rec.flush()
    assert len(calls) == 2
    runs = ll.Run.filter(engine="toy", parent_id__isnull=False)
    assert sorted(r.engine_ref for r in runs) == ["r/0", "r/1"]
    for i, step in enumerate(steps):
        assert step.run.id is not None
        (made,) = ll.Run.get(id=step.run.id).outputs.all()
        assert made.key == f"out{i}.txt" and made.run_id == step.run.id
        # the run went in finished once, as the first attempt would have written it (the
        # rolled-back attempt's finish did not stay on the record inserted again: one move)
        assert [e.action for e in entries(instance, uids=[step.run.uid])] == ["insert"]
        run = ll.Run.get(id=step.run.id)
        assert [s["status"] for s in run.status_log] == ["started", "completed"]
    assert verify(instance).ok


def test_a_failed_flush_writes_its_runs_as_queued_at_the_next(
    instance: Instance, tmp_path: Path
) -> None:
    """A flush failing after its runs went in finished: the next one inserts them as they
    were queued, finished once (not a second move in their logs)."""
    from faults import raise_once_at
    from sqlalchemy.exc import OperationalError

    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    steps = _queue_steps(rec, tmp_path, 2)
    lost = OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))
    with raise_once_at("recorder.flush.finished", lost):
        with pytest.raises(OperationalError, match="server closed"):
            rec.flush()
        assert not ll.Run.filter(engine="toy", parent_id__isnull=False).count()
        rec.flush()
    for step in steps:
        assert [e.action for e in entries(instance, uids=[step.run.uid])] == ["insert"]
        run = ll.Run.get(id=step.run.id)
        assert [s["status"] for s in run.status_log] == ["started", "completed"]
    assert verify(instance).ok
