"""A BatchRecorder driven by random mixes of what engines do (steps started under others,
finished, files made and used, annotations, a step started again, flushes due by age, steps
or an idle timer, flushes failing before their commit or interrupted after it, a plugin
registered mid-run): whatever it kept queued and whenever it wrote, the catalog ends with
each step once (one insert), its status, start and end times, parent, inputs, outputs and
metadata as reported, and each run told started once. Ages are made tiny (`ms`,
`started_ms` of a few ms) so that steps are kept back and written back and forth; the
assertions are on what was written, never on time."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from faults import raise_once_at
from lakeline.access.audit import entries
from lakeline.hookspecs import hookimpl
from lakeline.instance import Instance
from lakeline.lineage.handles import Handle
from lakeline.lineage.recorder import BatchRecorder
from lakeline.plugins import get_plugin_manager
from sqlalchemy.exc import OperationalError
from test_save_interrupt import interrupted_after_commit

BASE = datetime(2026, 1, 1, tzinfo=UTC)


class Told:
    """Records the run_started calls."""

    def __init__(self) -> None:
        self.started: list[str | None] = []

    @hookimpl
    def run_started(self, run: ll.Run) -> None:
        self.started.append(run.engine_ref)


class Engine:
    """What was reported to the Recorder, to compare the catalog with."""

    def __init__(self, rec: BatchRecorder, wf: Handle, root: Path) -> None:
        self.rec, self.wf, self.root = rec, wf, root
        self.handles: dict[str, Handle] = {}
        self.parent: dict[str, str | None] = {}
        self.status: dict[str, str] = {}
        self.times: dict[str, list[datetime | None]] = {}
        self.used: dict[str, set[str]] = {}
        self.made: dict[str, str] = {}
        self.notes: dict[str, dict[str, int]] = {}

    def running(self) -> list[str]:
        return [ref for ref, status in self.status.items() if status == "started"]

    def start(self, i: int, parent: str | None) -> None:
        ref = f"s{len(self.handles)}"
        at = BASE + timedelta(seconds=i)
        above = None if parent is None else self.handles[parent]
        self.handles[ref] = self.rec.start_step(
            self.wf, key="s", kind="rule", engine_task_id=ref, parent=above, started_at=at
        )
        self.parent[ref], self.status[ref], self.times[ref] = parent, "started", [at, None]
        self.used[ref] = set()

    def finish(self, i: int, ref: str, status: str) -> None:
        at = BASE + timedelta(seconds=i, microseconds=5)
        self.rec.finish_step(self.handles[ref], status, finished_at=at)
        self.status[ref], self.times[ref][1] = status, at

    def produce(self, i: int, ref: str) -> None:
        name = f"o{i}.txt"
        (self.root / name).write_text(name)
        self.rec.produce(self.handles[ref], name)
        self.made[name] = ref

    def use(self, ref: str, name: str) -> None:
        self.rec.use(self.handles[ref], name)
        self.used[ref].add(name)

    def annotate(self, i: int, ref: str) -> None:
        self.rec.annotate(self.handles[ref], "x", a=i)
        self.notes.setdefault(ref, {})["a"] = i


def _flush(rnd: random.Random, rec: BatchRecorder, instance: Instance) -> None:
    how = rnd.choice([rec.flush_idle, rec.flush_if_due, rec.flush])
    fault = rnd.random()
    if fault < 0.7:
        how()
    elif fault < 0.85:  # the connection lost before the commit: the batch stays queued
        lost = OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))
        point = rnd.choice(["recorder.flush", "recorder.flush.finished"])
        with raise_once_at(point, lost), pytest.raises(OperationalError):
            how()
            raise lost  # nothing reached the point (nothing but runs to write)
    else:  # Ctrl-C just after a commit: written, not queued again
        try:
            with interrupted_after_commit(instance.engine):
                how()
        except KeyboardInterrupt:
            pass


@pytest.mark.parametrize("seed", range(8))
def test_random_mixes_of_engine_calls_leave_each_step_recorded_once_as_reported(
    instance: Instance, tmp_path: Path, seed: int
) -> None:
    rnd = random.Random(seed)
    rec = BatchRecorder(
        "toy",
        root=tmp_path,
        steps=rnd.choice([2, 5, 100]),
        ms=rnd.choice([1, 3]),
        started_ms=rnd.choice([2, 20, 300]),
    )
    wf = rec.start_workflow(key="p", engine_run_id="r")
    engine = Engine(rec, wf, tmp_path)
    told = Told()
    try:
        for i in range(100):
            if i == 20:
                get_plugin_manager().register(told, name="told")
            op, running = rnd.random(), engine.running()
            if op < 0.3 or not running:
                parent = rnd.choice(running) if running and rnd.random() < 0.3 else None
                engine.start(i, parent)
            elif op < 0.45:
                engine.finish(i, rnd.choice(running), rnd.choice(["completed", "errored"]))
            elif op < 0.55:
                engine.produce(i, rnd.choice(running))
            elif op < 0.65 and engine.made:
                engine.use(rnd.choice(running), rnd.choice(sorted(engine.made)))
            elif op < 0.72:
                engine.annotate(i, rnd.choice(running))
            elif op < 0.88:
                _flush(rnd, rec, instance)
            elif op < 0.9:  # started again (a replay, or the queued step itself)
                again = rnd.choice(sorted(engine.handles))
                rec.start_step(wf, key="s", kind="rule", engine_task_id=again)
            else:
                time.sleep(rnd.choice([0.001, 0.004, 0.01]))
        rec.finish_workflow(wf)
    finally:
        get_plugin_manager().unregister(name="told")
    _check(engine, instance)
    assert all(n == 1 for n in Counter(told.started).values()), told.started


def _check(engine: Engine, instance: Instance) -> None:
    for ref, handle in engine.handles.items():
        (run,) = ll.Run.filter(engine="toy", engine_ref=f"r/{ref}").all()
        parent = engine.parent[ref]
        above = engine.wf if parent is None else engine.handles[parent]
        facts: dict[str, Any] = {
            "status": run.status,
            "times": [run.started_at, run.finished_at],
            "parent": run.parent_id,
            "inputs": {a.key for a in run.inputs.all()},
            "notes": (run.params or {}).get("x", {}),
        }
        assert facts == {
            "status": engine.status[ref],
            "times": engine.times[ref],
            "parent": above.run.id,
            "inputs": engine.used[ref],
            "notes": engine.notes.get(ref, {}),
        }, ref
        assert handle.run.id == run.id
        assert [e.action for e in entries(instance, uids=[run.uid])].count("insert") == 1
    for name, ref in engine.made.items():
        (artifact,) = ll.Artifact.filter(key=name).all()
        assert artifact.run_id == engine.handles[ref].run.id, name
