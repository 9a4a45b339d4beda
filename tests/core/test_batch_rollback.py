"""A BatchRecorder flush rolled back: the queued steps stay usable records as they were
before it (replays of runs recorded by an earlier process included), and the next flush
writes them once."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Handle


def _fail() -> None:
    raise KeyboardInterrupt


def _one_finished_step(tmp_path: Path) -> tuple[BatchRecorder, Handle, Handle]:
    """A recorder whose workflow run is written and whose queued step made `out.txt`."""
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    (tmp_path / "out.txt").write_text("out")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="0")
    rec.produce(step, "out.txt")
    rec.finish_step(step)
    return rec, wf, step


def test_a_replayed_step_of_a_rolled_back_flush_keeps_its_record(
    instance: Instance, tmp_path: Path
) -> None:
    """A step recorded by an earlier process, replayed: a flush that fails inside its
    transaction leaves the step's run readable (it was the rolled-back session's record) and
    the next flush finishes it once."""
    first = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = first.start_workflow(key="p", engine_run_id="r")
    step = first.start_step(wf, key="s", kind="rule", engine_task_id="0")
    first.flush()
    recorded = step.run.id
    assert recorded is not None

    (tmp_path / "in.txt").write_text("in")
    (tmp_path / "out.txt").write_text("out")
    again = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf2 = again.start_workflow(key="p", engine_run_id="r")
    again.flush()
    replay = again.start_step(wf2, key="s", kind="rule", engine_task_id="0")
    again.annotate(replay, "toy", attempt=2)
    again.use(replay, "in.txt")
    again.produce(replay, "out.txt")
    again.finish_step(replay)
    with checkpoints.at("recorder.flush", _fail), pytest.raises(KeyboardInterrupt):
        again.flush()
    # the handle is usable as before the flush: its run and transform readable
    assert replay.run.id in (None, recorded)
    assert replay.run.engine_ref == "r/0"
    assert replay.transform.key == "s"
    again.annotate(replay, "toy", more=1)
    again.flush()
    assert replay.run.id == recorded
    run = ll.Run.get(id=recorded)
    assert run.status == "completed"
    assert run.params["toy"] == {"attempt": 2, "more": 1}
    assert [a.key for a in run.outputs.all()] == ["out.txt"]
    assert ll.Run.filter(engine="toy", engine_ref="r/0").count() == 1


@pytest.mark.parametrize("queued", ["files", "finish", "start"])
def test_two_processes_flushing_the_same_workflow_share_its_runs(
    instance: Instance, tmp_path: Path, queued: str
) -> None:
    """Two Recorders of one workflow (same engine run id) flushing the same step at once:
    the first commits just before the second inserts its runs; the second's insert leaves out
    the runs the first wrote (ON CONFLICT DO NOTHING) and its flush takes them (replays) —
    one run, finished once, nothing raised."""
    from sqlalchemy import event

    if instance.dialect != "postgresql":
        pytest.skip("SQLite: the flush looks for the runs holding the write lock (no race)")
    first = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    second = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = first.start_workflow(key="p", engine_run_id="r")
    wf2 = second.start_workflow(key="p", engine_run_id="r")
    steps = []
    for rec, w, name in ((first, wf, "a"), (second, wf2, "b")):
        step = rec.start_step(w, key="s", kind="rule", engine_task_id="0")
        if queued == "files":
            (tmp_path / f"{name}.txt").write_text(name)
            rec.produce(step, f"{name}.txt")
        if queued != "start":  # else the flush inserts runs only (_insert_runs)
            rec.finish_step(step)
        steps.append(step)
    state = {"armed": True}

    def meanwhile(conn: object, cursor: object, statement: str, *args: object) -> None:
        if state["armed"] and statement.lstrip().upper().startswith("INSERT INTO RUNS"):
            state["armed"] = False  # the second is about to insert: the first commits
            first.flush()

    event.listen(instance.engine, "before_cursor_execute", meanwhile)
    try:
        second.flush()
    finally:
        event.remove(instance.engine, "before_cursor_execute", meanwhile)
    assert not state["armed"]
    (run,) = ll.Run.filter(engine="toy", engine_ref="r/0")
    assert steps[0].run.id == steps[1].run.id == run.id
    statuses = ["started"] if queued == "start" else ["started", "completed"]
    assert [s["status"] for s in run.status_log] == statuses
    if queued == "files":
        assert sorted(a.key for a in run.outputs.all()) == ["a.txt", "b.txt"]


def test_an_interrupt_after_the_flush_committed_keeps_what_it_wrote(
    instance: Instance, tmp_path: Path
) -> None:
    """Ctrl-C landing after a flush's commit (in a plugin's hook, as the flush tells the
    plugins): the committed runs keep their ids and are not queued again; the next flush
    writes nothing twice."""
    from lakeline.access.audit import entries
    from lakeline.hookspecs import hookimpl
    from lakeline.plugins import get_plugin_manager

    class Interrupted:
        @hookimpl
        def run_finished(self, run: object) -> None:
            raise KeyboardInterrupt

    rec, _, step = _one_finished_step(tmp_path)
    plugin = Interrupted()
    get_plugin_manager().register(plugin, name="interrupted")
    try:
        with pytest.raises(KeyboardInterrupt):
            rec.flush()
    finally:
        get_plugin_manager().unregister(plugin)
    assert step.run.id is not None
    rec.flush()
    (run,) = ll.Run.filter(engine="toy", engine_ref="r/0")
    assert run.id == step.run.id and run.status == "completed"
    assert [e.action for e in entries(instance, uids=[run.uid])] == ["insert"]  # finished
    assert [a.key for a in run.outputs.all()] == ["out.txt"]


def test_an_interrupt_inside_the_save_after_its_commit_queues_nothing_again(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C inside the flush's save after its transaction committed (while it drops the
    copies it did not need): the batch is written, not queued again — the next flushes work
    (they failed on the saved files queued again: AssertionError in every later flush)."""
    from lakeline.access.audit import entries
    from lakeline.artifacts import save

    rec, wf, step = _one_finished_step(tmp_path)
    real, calls = save.drop_unused, []

    def interrupted_once(*args: object) -> None:
        calls.append(1)
        if len(calls) == 1:  # the save's first step after its commit
            raise KeyboardInterrupt
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(save, "drop_unused", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        rec.flush()
    (tmp_path / "next.txt").write_text("next")
    later = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    rec.produce(later, "next.txt")
    rec.finish_step(later)
    rec.flush()
    (run,) = ll.Run.filter(engine="toy", engine_ref="r/0")
    assert step.run.id == run.id and run.status == "completed"
    assert [e.action for e in entries(instance, uids=[run.uid])] == ["insert"]  # finished
    assert [a.key for a in run.outputs.all()] == ["out.txt"]
    assert ll.Artifact.filter(key="out.txt").count() == 1
    assert [a.key for a in ll.Run.get(id=later.run.id).outputs.all()] == ["next.txt"]


def test_an_interrupt_after_a_statement_of_the_flush_leaves_no_lock_held(
    instance: Instance, tmp_path: Path
) -> None:
    """Ctrl-C landing just after a statement that hands rows back ran (the runs' INSERT ...
    RETURNING): the flush's transaction is gone at once — on SQLite no connection is left
    holding the write lock until the garbage collector finds its cursor (the next write, an
    at-exit flush, waited busy_timeout, then failed) — and the next flush writes the batch."""
    import gc
    import sqlite3

    from sqlalchemy import event

    rec, _, step = _one_finished_step(tmp_path)
    armed = [True]

    def interrupt(conn: object, cursor: object, statement: str, *args: object) -> None:
        if armed[0] and statement.startswith("INSERT INTO runs"):
            armed[0] = False
            raise KeyboardInterrupt

    event.listen(instance.engine, "after_cursor_execute", interrupt)
    gc.disable()  # as between two collections: only the close may release the lock
    try:
        with pytest.raises(KeyboardInterrupt):
            rec.flush()
        if instance.dialect == "sqlite":
            other = sqlite3.connect(str(instance.engine.url.database), timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" while one holds it
                other.rollback()
            finally:
                other.close()
    finally:
        gc.enable()
        event.remove(instance.engine, "after_cursor_execute", interrupt)
    assert not armed[0] and step.run.id is None
    rec.flush()
    (run,) = ll.Run.filter(engine="toy", engine_ref="r/0")
    assert run.id == step.run.id and run.status == "completed"
    assert [a.key for a in run.outputs.all()] == ["out.txt"]
