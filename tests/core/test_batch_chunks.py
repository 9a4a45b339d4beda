"""A BatchRecorder flush of more runs than one INSERT ... ON CONFLICT statement takes (500):
the chunk edges, replays in the middle of a chunk, steps nested under steps of the same
flush, on both databases (SQLite's conflict path, PostgreSQL's COPY)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.access.audit import entries, verify
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder


def _recorder(root: Path) -> BatchRecorder:
    return BatchRecorder("toy", root=root, steps=100_000, ms=600_000)


@pytest.mark.parametrize("n", [499, 500, 501, 1000])
def test_a_large_resumed_flush_keeps_replays_nested_runs_and_times_exact(
    instance: Instance, tmp_path: Path, n: int
) -> None:
    """A resumed workflow's flush of `n` steps, some recorded before (at the chunk edges and
    in the middle of one), each of a few with a child step nested under it: the recorded
    ones are found (same id, unchanged), the others inserted once with their parent, status,
    exit code, error, params and the engine's times (a non-UTC offset stored as UTC)."""
    east = timezone(timedelta(hours=5, minutes=30))
    t0 = datetime(2026, 3, 4, 10, 0, 1, 250, tzinfo=east)
    t1 = datetime(2026, 3, 4, 11, 2, 3, tzinfo=east)
    old = sorted({0, 250, 498, 499, 500, n - 1} & set(range(n)))
    first = _recorder(tmp_path)
    wf = first.start_workflow(key="p", engine_run_id="r")
    before = {}
    for i in old:
        step = first.start_step(wf, key="s", kind="rule", engine_task_id=str(i))
        first.finish_step(step, "errored", exit_code=7, error="old")
        before[i] = step
    first.flush()
    recorded = {i: s.run.id for i, s in before.items()}

    again = _recorder(tmp_path)
    wf2 = again.start_workflow(key="p", engine_run_id="r")
    steps = [
        again.start_step(
            wf2,
            key="s",
            kind="rule",
            engine_task_id=str(i),
            params={"i": i, "name": f"é{i}", "none": None},
            started_at=t0,
        )
        for i in range(n)
    ]
    parents = [i for i in (1, 250, 499, 500, n - 1) if i < n]  # 250, 499, 500: replays
    children = {
        i: again.start_step(
            wf2, key="c", kind="rule", engine_task_id=f"c{i}", parent=steps[i], started_at=t0
        )
        for i in parents
    }
    for i, step in enumerate(steps):
        if i % 3 == 0:
            again.finish_step(step, "errored", finished_at=t1, exit_code=i % 256, error=f"e{i}")
        else:
            again.finish_step(step, finished_at=t1, exit_code=0)
    again.flush()

    runs = {r.engine_ref: r for r in ll.Run.filter(engine="toy")}
    assert len(runs) == 1 + n + len(children)
    for i, step in enumerate(steps):
        run = runs[f"r/{i}"]
        assert step.run.id == run.id
        if i in recorded:  # found, not duplicated; finished again only in another status
            assert run.id == recorded[i]
            log = [e["status"] for e in run.status_log]
            if i % 3 == 0:
                assert (run.status, run.exit_code, run.error) == ("errored", 7, "old")
                assert log == ["started", "errored"]
            else:
                assert (run.status, run.exit_code, run.error) == ("completed", 0, None)
                assert log == ["started", "errored", "completed"]
                assert run.finished_at == t1
            continue
        assert run.parent_id == wf.run.id
        assert run.params is not None and run.params["i"] == i and run.params["name"] == f"é{i}"
        assert run.params["none"] is None
        assert run.started_at == t0 and run.finished_at == t1
        assert run.started_at.utcoffset() == timedelta(0)
        if i % 3 == 0:
            assert (run.status, run.exit_code, run.error) == ("errored", i % 256, f"e{i}")
        else:
            assert (run.status, run.exit_code, run.error) == ("completed", 0, None)
        assert [e.action for e in entries(instance, uids=[run.uid])] == ["insert"]
    for i, child in children.items():
        run = runs[f"r/c{i}"]
        assert child.run.id == run.id
        assert run.parent_id == steps[i].run.id == runs[f"r/{i}"].id
        assert run.status == "started" and run.started_at == t0
    assert verify(instance).ok


def test_a_retried_large_flush_inserts_each_run_once_under_its_parent(
    instance: Instance, tmp_path: Path
) -> None:
    """A flush of 501 steps (two statements on SQLite), with replays at the chunk edge, a
    chain of steps nested under steps of the flush and files, retried after a conflict: the
    runs rolled back go in again once each, their parents and the files' producers the ids
    of the attempt that committed (PostgreSQL's ids are not reused)."""
    from faults import conflict, raise_once_at

    n = 501
    first = _recorder(tmp_path)
    wf = first.start_workflow(key="p", engine_run_id="r")
    for i in (3, 499, 500):
        first.finish_step(first.start_step(wf, key="s", kind="rule", engine_task_id=str(i)))
    first.flush()
    old = {i: ll.Run.get(engine="toy", engine_ref=f"r/{i}").id for i in (3, 499, 500)}
    rec = _recorder(tmp_path)
    wf2 = rec.start_workflow(key="p", engine_run_id="r")
    steps = [rec.start_step(wf2, key="s", kind="rule", engine_task_id=str(i)) for i in range(n)]
    kids = {
        i: rec.start_step(wf2, key="c", kind="rule", engine_task_id=f"c{i}", parent=steps[i])
        for i in (2, 3, 499, 500)
    }
    rec.start_step(wf2, key="g", kind="rule", engine_task_id="g", parent=kids[500])
    for i in (1, 3, 500):
        (tmp_path / f"out{i}.txt").write_text(f"out {i}")
        rec.produce(steps[i], f"out{i}.txt")
    for step in steps:
        rec.finish_step(step, exit_code=0)
    with raise_once_at("recorder.flush", conflict(instance)) as calls:
        rec.flush()
    assert len(calls) == 2
    runs = {r.engine_ref: r for r in ll.Run.filter(engine="toy")}
    assert len(runs) == 1 + n + len(kids) + 1
    for i, step in enumerate(steps):
        assert step.run.id == runs[f"r/{i}"].id == old.get(i, step.run.id)
        if i not in old:
            assert [e.action for e in entries(instance, uids=[step.run.uid])] == ["insert"]
            assert [e["status"] for e in runs[f"r/{i}"].status_log] == ["started", "completed"]
    for i, kid in kids.items():
        assert kid.run.id == runs[f"r/c{i}"].id
        assert runs[f"r/c{i}"].parent_id == steps[i].run.id
    assert runs["r/g"].parent_id == runs["r/c500"].id
    for i in (1, 3, 500):
        assert ll.Artifact.get(key=f"out{i}.txt").run_id == steps[i].run.id
    assert verify(instance).ok


N = 600


def _queue_600(rec: BatchRecorder, tag: str) -> list[Any]:
    """Workflow `r` written, 600 steps queued finished (a child of one; files `tag`5, 555)."""
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    steps = []
    for i in range(N):
        s = rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i))
        steps.append(s)
    kid = rec.start_step(wf, key="c", kind="rule", engine_task_id="c", parent=steps[550])
    for i, s in enumerate(steps):
        if i in (5, 555):
            rec.produce(s, f"{tag}{i}.txt")
        rec.finish_step(s, exit_code=0)
    rec.finish_step(kid)
    return steps


def _flush_600_held(pause: Any, root: str) -> None:
    """In a child process: the 600 steps flushed, held before the commit."""
    from lakeline import checkpoints

    ll.connect()
    rec = BatchRecorder("toy", root=root, steps=100_000, ms=600_000)
    _queue_600(rec, "a")
    with checkpoints.at("recorder.flush", pause.hold):
        rec.flush()


def test_two_processes_flushing_the_same_600_steps_share_their_runs(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes of one workflow flush the same 600 steps (one nested, two with a file
    each); the first holds its uncommitted runs: the second waits (PostgreSQL: its COPY on
    the unique index, then retried; SQLite: the write lock, then every run left out by its
    INSERT ... ON CONFLICT) and takes the first's runs — each run once, finished once, both
    processes' files on it."""
    from faults import second_while_held

    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    for t in "ab":
        for i in (5, 555):
            (tmp_path / f"{t}{i}.txt").write_text(f"{t}{i}")
    second = BatchRecorder("toy", root=tmp_path, steps=100_000, ms=600_000)

    def flush_second() -> list[int]:
        steps = _queue_600(second, "b")
        second.flush()
        return [int(s.run.id) for s in steps]

    exitcode, outcome = second_while_held(
        _flush_600_held,
        (str(tmp_path),),
        flush_second,
        instance.engine,
        "the second flush",
        waits=instance.dialect == "postgresql",
    )
    assert exitcode == 0
    runs = {r.engine_ref: r for r in ll.Run.filter(engine="toy")}
    assert len(runs) == 1 + N + 1, len(runs)
    assert outcome == [[runs[f"r/{i}"].id for i in range(N)]], outcome[:1]
    assert runs["r/c"].parent_id == runs["r/550"].id
    for i in (5, 555):
        assert sorted(a.key for a in runs[f"r/{i}"].outputs.all()) == [f"a{i}.txt", f"b{i}.txt"]
    for r in runs.values():
        if r.engine_ref != "r":
            assert [e["status"] for e in r.status_log] == ["started", "completed"], r.status_log
            assert [e.action for e in entries(instance, uids=[r.uid])] == ["insert"]
    assert verify(instance).ok
