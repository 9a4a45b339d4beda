"""BatchRecorder.annotate: a step whose run is still queued is annotated in the queue."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.errors import LakelineError
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder
from sqlalchemy import event


def test_annotating_a_queued_run_does_not_write_the_batch(
    instance: Instance, tmp_path: Path
) -> None:
    """Prefect annotates every task run with a persisted result (its cache key) as it
    finishes: that flushed the batch, so such flows were written a task at a time."""
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    statements: Counter[str] = Counter()

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        statements[" ".join(sql.split()[:3])] += 1

    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        steps = []
        for i in range(3):
            step = rec.start_step(wf, key="t", kind="task", engine_task_id=str(i))
            rec.finish_step(step)
            rec.annotate(step, "@engine", cache_key=f"k{i}")
            rec.annotate(step, "@engine", other=i)  # merged with what is there
            steps.append(step)
        assert not [s for s in statements if " runs" in s]  # all of it still queued
        rec.flush()
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
    assert statements["INSERT INTO runs"] >= 1  # the flush wrote them
    for i, step in enumerate(steps):
        run = ll.Run.get(id=step.run.id)
        assert run.status == "completed"
        assert run.params == {"@engine": {"cache_key": f"k{i}", "other": i}}
    # a written run is annotated in the database, as the plain Recorder does
    again = rec.annotate(steps[0], "@engine", cache_key="new")
    assert again.id == steps[0].run.id
    assert ll.Run.get(id=again.id).params == {"@engine": {"cache_key": "new", "other": 0}}


@pytest.mark.parametrize("bad", [datetime(2026, 1, 1, tzinfo=UTC), {1, 2}, float("nan")])
@pytest.mark.parametrize("batched", [False, True])
def test_metadata_json_cannot_hold_is_refused_at_the_call(
    instance: Instance, tmp_path: Path, batched: bool, bad: Any
) -> None:
    """A queued run annotated with a value its JSON params cannot hold made its insert fail
    at every flush (the runs stay queued): every step of the batch was lost, and every one
    after it. It is refused at the call, as the plain Recorder refuses it, the run as it
    was; NaN too (PostgreSQL's JSON refuses it)."""
    rec = (
        BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
        if batched
        else Recorder("toy", root=tmp_path)
    )
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="t", kind="task", engine_task_id="1")
    rec.annotate(step, "@engine", cache_key="k")
    with pytest.raises(LakelineError, match=r"annotate\('@engine'\): .*JSON"):
        rec.annotate(step, "@engine", bad=bad, other=1)
    rec.finish_step(step)
    later = rec.start_step(wf, key="t", kind="task", engine_task_id="2")
    rec.finish_step(later)
    rec.finish_workflow(wf)
    runs = {run.engine_ref: run for run in ll.Run.filter(engine="toy")}
    assert {ref: run.status for ref, run in runs.items()} == {
        "r": "completed",
        "r/1": "completed",
        "r/2": "completed",
    }
    assert runs["r/1"].params == {"@engine": {"cache_key": "k"}}


@pytest.mark.parametrize("batched", [False, True])
def test_annotating_a_replayed_step_reaches_the_run_recorded_before(
    instance: Instance, tmp_path: Path, batched: bool
) -> None:
    """A step started again after its run was written (a replay, a re-import) is queued
    until the flush finds that run: metadata given meanwhile went into the queued run, which
    the flush then dropped for the one found, so the annotation was lost."""
    rec = (
        BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
        if batched
        else Recorder("toy", root=tmp_path)
    )
    wf = rec.start_workflow(key="p", engine_run_id="r")
    first = rec.start_step(wf, key="t", kind="task", engine_task_id="1", params={"n": 1})
    rec.annotate(first, "@engine", cache_key="k", kept=1)
    rec.finish_step(first)
    if isinstance(rec, BatchRecorder):
        rec.flush()
    again = rec.start_step(wf, key="t", kind="task", engine_task_id="1", params={"n": 1})
    rec.annotate(again, "@engine", cache_key="k2", other=2)
    rec.annotate(again, "@more", x=1)
    rec.finish_step(again)
    rec.finish_workflow(wf)
    (run,) = ll.Run.filter(engine="toy", engine_ref="r/1")
    assert run.params == {
        "n": 1,
        "@engine": {"cache_key": "k2", "kept": 1, "other": 2},
        "@more": {"x": 1},
    }
    assert run.status == "completed"
