"""Prefect's idle flusher and a batch holding a task run the database refuses (its flow run
deleted since): the rest of the batch is written, the task run left out is a warning naming
it (not "kept": it is not queued again), and later batches are written. Before, the batch
stayed queued and every look of the flusher failed alike: the flow's later task runs were
lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from lakeline_prefect.flusher import Flusher  # imports prefect, which sets up its logging
from sqlalchemy import text


def test_the_flusher_warns_of_a_task_run_left_out_and_writes_the_rest(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    kept = rec.start_workflow(key="p", engine_run_id="kept")
    gone = rec.start_workflow(key="p", engine_run_id="gone")
    rec.finish_step(rec.start_step(gone, key="s", kind="task", engine_task_id="1"))
    good = rec.start_step(kept, key="s", kind="task", engine_task_id="1")
    rec.finish_step(good)
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": gone.run.id})
    running = [(rec, 0.0)]
    lock = threading.RLock()
    flusher = Flusher(lambda: list(running), lock)
    with caplog.at_level("WARNING", logger="lakeline.prefect"):
        flusher.start()
        deadline = time.monotonic() + 120
        while good.run.id is None and time.monotonic() < deadline:  # a wait, not a timing assert
            time.sleep(0.05)
        time.sleep(1)  # more looks of the flusher: nothing more to say
        with lock:
            running.clear()
            thread = flusher._thread
        if thread is not None:
            thread.join(60)
    said = [r.getMessage() for r in caplog.records if r.name == "lakeline.prefect"]
    assert len(said) == 1 and "'gone/1'" in said[0] and "(kept)" not in said[0], said
    assert ll.Run.get(id=good.run.id).status == "completed"
    later = rec.start_step(kept, key="s", kind="task", engine_task_id="2")
    rec.finish_step(later)
    rec.flush()  # not stuck
    assert ll.Run.get(id=later.run.id).status == "completed"
