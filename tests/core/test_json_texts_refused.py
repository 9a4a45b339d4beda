"""A queued run's params and status log texts (`records.PARAMS_TEXT`, `LOG_TEXT`) through a
flush rolled back by a refused step and made again without it: the first attempt finished the
run in the queue (`finish_queued`: a new log and its text) and the rollback gave the run its
log back, not the text; the second attempt must log the finish once, from the log it holds
(the stale text bound instead logged it twice)."""

from __future__ import annotations

import json
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from sqlalchemy import text


def _stored(instance: Instance, ref: str) -> tuple[object, object]:
    with instance.engine.connect() as conn:
        params, log = conn.execute(
            text("SELECT params, status_log FROM runs WHERE engine_ref = :r"), {"r": ref}
        ).one()
    return (
        json.loads(params) if isinstance(params, str) else params,
        json.loads(log) if isinstance(log, str) else log,
    )


def test_a_step_written_again_after_a_refusal_logs_each_move_once(
    instance: Instance, tmp_path: Path
) -> None:
    rec = BatchRecorder("r51", root=tmp_path, steps=100, ms=600_000)
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    rec.start_workflow(key="wf", engine_run_id="other")
    rec.flush()
    params = {"n": 1, "name": "café 🙂", "w": {"i": "3"}}
    a = rec.start_step(kept, key="a", kind="rule", engine_task_id="a", params=params)
    b = rec.start_step(gone, key="b", kind="rule", engine_task_id="b", params={"x": 1})
    rec.finish_step(a, exit_code=0)
    rec.finish_step(b)
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": gone.run.id})
    with pytest.raises(StepsNotRecorded):
        rec.flush()
    stored_params, log = _stored(instance, "kept/a")
    assert stored_params == json.loads(json.dumps(params))
    assert [e["status"] for e in log] == ["started", "completed"]  # type: ignore[union-attr]
    assert ll.Run.get(engine="r51", engine_ref="kept/a").status_log == log
