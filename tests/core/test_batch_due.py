"""When a BatchRecorder's batch is due by age: `ms` after its first queued finish, use, produce
or link; a batch of started steps alone `started_ms` after its first start (issue 19 item 4:
a run started and finished within one batch is written once). Ages are made tiny or huge by
setting `ms` / `started_ms`; the tests assert on what was written, never on time."""

from __future__ import annotations

import time
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.audit import entries
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from statements import recorded

LONG = 600_000.0  # ms: never reached by a test


def _runs_written(rec: BatchRecorder) -> int:
    return ll.Run.filter(engine=rec.engine, parent_id__isnull=False).count()


def _batch(tmp_path: Path, **options: float) -> tuple[BatchRecorder, object]:
    rec = BatchRecorder("toy", root=tmp_path, steps=100, **options)  # type: ignore[arg-type]
    wf = rec.start_workflow(key="p", engine_run_id="r")
    return rec, wf


def test_started_ms_defaults_to_five_batch_ages_and_at_least_five_seconds(
    instance: Instance,
) -> None:
    from lakeline.errors import LakelineError

    assert BatchRecorder("toy", ms=2000).started_ms == 10_000
    assert BatchRecorder("toy", ms=500).started_ms == 5000
    assert BatchRecorder("toy", ms=100, started_ms=300).started_ms == 300
    with pytest.raises(LakelineError, match="started_ms > 0"):
        BatchRecorder("toy", started_ms=0)


def test_a_batch_of_started_steps_is_due_by_age_only_after_started_ms(
    instance: Instance, tmp_path: Path
) -> None:
    """Neither the timer (`flush_if_due`) nor the idle flush (`flush_idle`) writes started
    steps alone before `started_ms`, whatever `ms`; both do after it."""
    rec, wf = _batch(tmp_path, ms=1, started_ms=LONG)
    steps = [rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i)) for i in range(3)]
    time.sleep(0.005)  # older than ms
    rec.flush_if_due()
    rec.flush_idle()
    assert _runs_written(rec) == 0 and all(s.run.id is None for s in steps)
    rec.started_ms = 1  # now older than started_ms
    rec.flush_if_due()
    assert _runs_written(rec) == 3 and all(s.run.status == "started" for s in steps)
    late = rec.start_step(wf, key="s", kind="rule", engine_task_id="late")
    time.sleep(0.005)
    rec.flush_idle()  # the idle path: the same rule
    assert late.run.id is not None


@pytest.mark.parametrize("first", ["finish", "use", "produce"])
def test_a_batch_with_a_finished_step_or_a_file_is_due_at_ms(
    instance: Instance, tmp_path: Path, first: str
) -> None:
    (tmp_path / "a.txt").write_text("a")
    rec, wf = _batch(tmp_path, ms=LONG, started_ms=LONG)
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    other = rec.start_step(wf, key="s", kind="rule", engine_task_id="2")
    if first == "finish":
        rec.finish_step(step)
    elif first == "use":
        rec.use(step, "a.txt")
    else:
        rec.produce(step, "a.txt")
    rec.flush_if_due()
    assert _runs_written(rec) == 0  # younger than ms
    rec.ms = 1
    time.sleep(0.005)
    rec.flush_if_due()  # as before: ms since the first finish / use / produce
    assert _runs_written(rec) == 1 and step.run.id is not None
    assert other.run.id is None  # only started: kept for its finish


def test_an_idle_flush_writes_a_finished_step_at_once(instance: Instance, tmp_path: Path) -> None:
    rec, wf = _batch(tmp_path, ms=LONG, started_ms=LONG)
    waiting = rec.start_step(wf, key="s", kind="rule", engine_task_id="waiting")
    done = rec.start_step(wf, key="s", kind="rule", engine_task_id="done")
    rec.finish_step(done)
    rec.flush_idle()
    assert done.run.id is not None and waiting.run.id is None  # kept for its finish
    assert ll.Run.get(id=done.run.id).status == "completed"


def test_a_call_finding_a_finished_batch_due_writes_it(instance: Instance, tmp_path: Path) -> None:
    """With `flush_on_calls` (no timer): the call after `ms` since the first finish writes."""
    (tmp_path / "a.txt").write_text("a")
    rec, wf = _batch(tmp_path, ms=1, started_ms=LONG)
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    time.sleep(0.005)  # older than ms since its start: not due (a start is not the clock)
    rec.finish_step(step)
    nxt = rec.start_step(wf, key="s", kind="rule", engine_task_id="2")
    time.sleep(0.005)
    rec.use(nxt, "a.txt")  # ms since the first finish: written by this call
    assert ll.Run.get(id=step.run.id).status == "completed" and nxt.run.id is not None


def test_a_step_started_and_finished_in_one_batch_is_written_once(
    instance: Instance, tmp_path: Path
) -> None:
    """Its start alone is no longer due by `ms` (the old rule wrote it, then its finish):
    one insert, one audit entry, and fewer statements than the two batches took."""
    rec, wf = _batch(tmp_path, ms=1, started_ms=LONG)
    rec.flush()  # the workflow's run written: only the step's below
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    time.sleep(0.005)  # as long as the old rule's ms
    with recorded(instance.engine) as seen:
        rec.flush_if_due()  # the timer's look while the step runs
        rec.finish_step(step)
        rec.flush()
    assert [e.action for e in entries(instance, uids=[step.run.uid])] == ["insert"]
    run = ll.Run.get(id=step.run.id)
    assert run.status == "completed"
    assert [s["status"] for s in run.status_log] == ["started", "completed"]
    once = len(seen)

    twice = tmp_path / "twice"  # the old rule's two batches: the start, then the finish
    rec2 = BatchRecorder("toy2", root=twice, steps=100, ms=LONG, started_ms=LONG)
    wf2 = rec2.start_workflow(key="p", engine_run_id="r")
    rec2.flush()
    step2 = rec2.start_step(wf2, key="s", kind="rule", engine_task_id="1")
    with recorded(instance.engine) as seen:
        rec2.flush()
        rec2.finish_step(step2)
        rec2.flush()
    assert [e.action for e in entries(instance, uids=[step2.run.uid])] == ["insert", "update"]
    assert once < len(seen)


def test_a_due_batch_keeps_its_steps_that_only_started_for_their_finish(
    instance: Instance, tmp_path: Path
) -> None:
    """A batch due by age (or steps, or an idle timer) writes what finished and what its files
    and edges name; a step that only started, younger than `started_ms`, stays queued and is
    inserted finished by a later batch: one audit entry. Older than `started_ms`, or at an
    explicit flush, it is written as started."""
    (tmp_path / "in.txt").write_text("in")
    (tmp_path / "out.txt").write_text("out")
    rec, wf = _batch(tmp_path, ms=1, started_ms=LONG)
    rec.flush()
    done = rec.start_step(wf, key="s", kind="rule", engine_task_id="done")
    running = rec.start_step(wf, key="s", kind="rule", engine_task_id="running")
    reading = rec.start_step(wf, key="s", kind="rule", engine_task_id="reading")
    writing = rec.start_step(wf, key="s", kind="rule", engine_task_id="writing")
    outer = rec.start_step(wf, key="s", kind="rule", engine_task_id="outer")
    inner = rec.start_step(wf, key="s", kind="rule", engine_task_id="inner", parent=outer)
    rec.use(reading, "in.txt")
    rec.produce(writing, "out.txt")
    rec.finish_step(inner)
    rec.finish_step(done)
    time.sleep(0.005)
    rec.flush_if_due()  # due by ms since the first queued call
    assert running.run.id is None  # kept queued: it only started
    written = [done, reading, writing, outer, inner]
    assert all(step.run.id is not None for step in written)
    assert ll.Run.get(id=outer.run.id).status == "started"  # the parent of a run written
    assert ll.Artifact.get(key="out.txt").run_id == writing.run.id
    assert [a.key for a in ll.Run.get(id=reading.run.id).inputs.all()] == ["in.txt"]
    again = rec.start_step(wf, key="s", kind="rule", engine_task_id="running")
    assert again is running  # still the queued step
    rec.annotate(running, "engine", attempt=1)  # annotated in the queue
    rec.finish_step(running)
    rec.flush_idle()
    assert [e.action for e in entries(instance, uids=[running.run.uid])] == ["insert"]
    run = ll.Run.get(id=running.run.id)
    assert run.status == "completed" and run.params == {"engine": {"attempt": 1}}

    old = rec.start_step(wf, key="s", kind="rule", engine_task_id="old")
    young = rec.start_step(wf, key="s", kind="rule", engine_task_id="young")
    rec.finish_step(rec.start_step(wf, key="s", kind="rule", engine_task_id="other"))
    rec.started_ms = 1  # both older than started_ms: written as started
    time.sleep(0.005)
    rec.flush_idle()
    assert old.run.id is not None and young.run.id is not None
    rec.started_ms = LONG
    last = rec.start_step(wf, key="s", kind="rule", engine_task_id="last")
    rec.finish_step(rec.start_step(wf, key="s", kind="rule", engine_task_id="another"))
    rec.flush()  # explicit (a read, finish_workflow, exit): everything
    assert last.run.id is not None and ll.Run.get(id=last.run.id).status == "started"


def test_steps_kept_queued_stay_queued_when_the_flush_fails(
    instance: Instance, tmp_path: Path
) -> None:
    from faults import raise_once_at
    from sqlalchemy.exc import OperationalError

    rec, wf = _batch(tmp_path, ms=LONG, started_ms=LONG)
    rec.flush()
    running = rec.start_step(wf, key="s", kind="rule", engine_task_id="running")
    done = rec.start_step(wf, key="s", kind="rule", engine_task_id="done")
    rec.finish_step(done)
    lost = OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))
    with raise_once_at("recorder.flush", lost), pytest.raises(OperationalError):
        rec.flush_idle()
    assert done.run.id is None and running.run.id is None  # both queued
    rec.flush_idle()
    assert done.run.id is not None and running.run.id is None  # the finished one written
    rec.finish_step(running)
    rec.flush()
    for step in (running, done):
        assert [e.action for e in entries(instance, uids=[step.run.uid])] == ["insert"]
        assert ll.Run.get(id=step.run.id).status == "completed"
