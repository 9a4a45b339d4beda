"""BatchRecorders alive at once in one process (a Prefect flow's concurrent subflows, one
recorder each, until their flows finish): the connections they keep between flushes must
not take the pool's every connection, so that the others, and the process's own reads and
writes, still get one (the pool's 5 + 10 overflow, then a 30 s wait and a TimeoutError)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder

LONG = 600_000.0  # ms: never due by age in a test
MANY = 16  # recorders: more than the pool's 15 connections


def test_many_recorders_between_their_flushes_leave_the_pool_its_connections(
    instance: Instance, tmp_path: Path
) -> None:
    recorders = []
    for n in range(MANY):
        root = tmp_path / f"wf{n}"
        root.mkdir()
        (root / "out.txt").write_text(f"out {n}")
        rec = BatchRecorder(f"toy{n}", root=root, steps=1000, ms=LONG, started_ms=LONG)
        wf = rec.start_workflow(key="p", engine_run_id=f"r{n}")
        step = rec.start_step(wf, key="s", kind="rule", engine_task_id="0")
        rec.produce(step, "out.txt")
        rec.finish_step(step)
        rec.flush()  # its workflow goes on: the recorder stays alive
        recorders.append((rec, wf))
    assert ll.Run.filter(status="completed").count() == MANY  # a read: a pooled connection
    for rec, wf in recorders:
        rec.finish_workflow(wf)
    assert ll.Run.filter(status="completed").count() == 2 * MANY
