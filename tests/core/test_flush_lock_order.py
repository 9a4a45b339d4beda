"""PostgreSQL: two processes' BatchRecorders flush the same steps of one workflow (replays:
the same engine ids), queued in opposite orders. Each flush's INSERT ... ON CONFLICT takes the
runs' unique index entries in its queue's order: each holds some the other waits for."""

from __future__ import annotations

import threading
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.lineage.batching import BatchRecorder
from test_save_lock_order import _deadlocks

pytestmark = pytest.mark.postgres

STEPS = 400


def test_two_flushes_of_the_same_steps_in_opposite_orders_do_not_deadlock(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    first = BatchRecorder("toy", root=tmp_path, steps=10_000, ms=600_000)
    first.start_workflow(key="wf", engine_run_id="R")
    first.flush()
    before = _deadlocks(instance)
    both = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def record(order: list[int]) -> None:
        try:
            rec = BatchRecorder("toy", root=tmp_path, steps=10_000, ms=600_000)
            wf = rec.start_workflow(key="wf", engine_run_id="R")
            for i in order:
                rec.start_step(wf, key="s", kind="rule", engine_task_id=f"{i:04d}")
            both.wait()
            rec.flush()
        except BaseException as exc:  # reported below
            errors.append(exc)

    ups = list(range(STEPS))
    threads = [threading.Thread(target=record, args=(o,)) for o in (ups, ups[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert ll.Run.filter(engine="toy").count() == STEPS + 1
    assert _deadlocks(instance, closed=True) == before
