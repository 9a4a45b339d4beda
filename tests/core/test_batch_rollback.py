"""A BatchRecorder flush rolled back: the queued steps stay usable records as they were
before it (replays of runs recorded by an earlier process included), and the next flush
writes them once."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder


def _fail() -> None:
    raise KeyboardInterrupt


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
