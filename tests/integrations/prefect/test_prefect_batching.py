"""Batched capture of Prefect task runs: a finished task run reaches the catalog while the
flow still runs, and nothing queued is lost when the process is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import lakeline as ll
import pf_batch
import pytest
from lakeline.instance import Instance
from test_prefect_flows import ENGINE, prepare


def _status(key: str) -> str | None:
    run = ll.Run.filter(engine=ENGINE, transform__key=key).first()
    return None if run is None else run.status


def test_a_finished_task_reaches_the_catalog_while_a_long_one_runs(
    workdir: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)  # the integration's default
    raw, gate = prepare(workdir), workdir / "gate"
    outcome: list[object] = []
    flow = threading.Thread(
        target=lambda: outcome.append(pf_batch.quick_then_held(raw, gate)), daemon=True
    )
    flow.start()
    try:
        deadline = time.monotonic() + 60  # the timer flushes within about a second
        while _status("quick") != "completed" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _status("quick") == "completed"
        assert ll.Artifact.get(key="out/quick.txt").run.transform.key == "quick"
        assert _status("held") in (None, "started")  # still running
    finally:
        gate.touch()
        flow.join(120)
    assert outcome == ["let go"]
    assert _status("held") == "completed"
    assert ll.Run.get(engine=ENGINE, parent_id__isnull=True).status == "completed"


def test_a_process_stopped_mid_flow_keeps_the_task_runs_it_finished(
    workdir: Path, instance: Instance, prefect_server: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    raw = prepare(workdir)
    script = workdir / "stopped.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            sys.path.insert(0, {str(Path(pf_batch.__file__).parent)!r})
            import pf_batch
            pf_batch.terminated(Path({str(raw)!r}))
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "LAKELINE_CAPTURE_BATCH"}
    env.update(LAKELINE_INSTANCE=instance.name, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=workdir, env=env, capture_output=True, timeout=300
    )
    assert done.returncode != 0, done.stderr.decode()[-2000:]
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    assert workflow.status in ("aborted", "errored"), done.stderr.decode()[-2000:]
    (step,) = workflow.children.all()
    assert step.transform.key == "quick" and step.status == "completed"
    assert ll.Artifact.get(key="out/quick.txt").run_id == step.id


def test_the_flusher_warns_once_of_a_failed_flush_naming_the_error(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch the idle flusher cannot write is kept; the error is a warning, said once."""
    from lakeline import checkpoints
    from lakeline.lineage.recorder import BatchRecorder
    from lakeline_prefect.flusher import Flusher

    (tmp_path / "a.txt").write_text("a")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="task", engine_task_id="1")
    rec.produce(step, "a.txt")
    rec.finish_step(step)
    rec.ms = 1  # due at the flusher's next look
    tries: list[int] = []

    def fail() -> None:
        tries.append(1)
        raise OSError("disk I/O error")

    running = [(rec, 0.0)]
    lock = threading.RLock()
    flusher = Flusher(lambda: list(running), lock)
    with (
        caplog.at_level("DEBUG", logger="lakeline.prefect"),
        checkpoints.at("recorder.flush", fail),
    ):
        flusher.start()
        deadline = time.monotonic() + 120
        while len(tries) < 3 and time.monotonic() < deadline:  # a wait, not a timing assert
            time.sleep(0.05)
        with lock:
            running.clear()
            thread = flusher._thread
        if thread is not None:
            thread.join(60)
    assert len(tries) >= 3
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warned] == [
        "lakeline could not write a batch (kept): OSError: disk I/O error"
    ]
    rec.flush()  # kept: written now
    assert ll.Run.get(id=step.run.id).status == "completed"
    assert [a.key for a in ll.Run.get(id=step.run.id).outputs.all()] == ["a.txt"]


def test_the_prefect_flusher_leaves_started_steps_to_their_finish(
    instance: Instance, tmp_path: Path
) -> None:
    """The idle timer of an integration (Prefect's flusher; redun's scheduler calls the same
    `flush_idle`): started steps alone stay queued while younger than `started_ms`; once one
    finished, the next look writes the batch, the finished step inserted finished."""
    from lakeline.access.audit import entries
    from lakeline.lineage.recorder import BatchRecorder
    from lakeline_prefect.flusher import Flusher

    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000, started_ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    step = rec.start_step(wf, key="s", kind="task", engine_task_id="1")
    looks: list[int] = []
    idle = rec.flush_idle

    def counted() -> None:
        looks.append(1)
        idle()

    rec.flush_idle = counted  # type: ignore[method-assign]  # counts the flusher's looks
    running = [(rec, 0.0)]  # idle since long ago
    lock = threading.RLock()
    flusher = Flusher(lambda: list(running), lock)
    flusher.start()
    try:
        deadline = time.monotonic() + 120
        while len(looks) < 3 and time.monotonic() < deadline:  # a wait, not a timing assert
            time.sleep(0.05)
        assert len(looks) >= 3
        with rec._lock:
            assert step.run.id is None  # looked at three times, still queued
            rec.finish_step(step)
        while step.run.id is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        with lock:
            running.clear()
            thread = flusher._thread
        if thread is not None:
            thread.join(60)
    assert [e.action for e in entries(instance, uids=[step.run.uid])] == ["insert"]
    assert ll.Run.get(id=step.run.id).status == "completed"


def test_task_runs_with_persisted_results_are_written_in_one_batch(
    workdir: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noting a persisted result's cache key on its task run flushed the batch, so a flow
    of such tasks was written one task run at a time (a transaction inserting runs each)."""
    from typing import Any

    from sqlalchemy import event

    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
    (workdir / "data").mkdir()
    paths = [workdir / "data" / f"{i}.txt" for i in range(8)]
    for i, path in enumerate(paths):
        path.write_text("x" * i)
    inserting: list[bool] = [False]
    transactions: list[int] = []  # committed transactions that inserted runs

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        inserting[0] = inserting[0] or sql.lstrip().startswith("INSERT INTO runs")

    def commit(conn: Any) -> None:
        if inserting[0]:
            transactions.append(1)
        inserting[0] = False

    event.listen(instance.engine, "before_cursor_execute", record)
    event.listen(instance.engine, "commit", commit)
    try:
        assert pf_batch.persisted(paths) == sum(range(8))
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
        event.remove(instance.engine, "commit", commit)
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    steps = workflow.children.all()
    assert len(steps) == 8
    assert all(s.status == "completed" and s.params["@prefect"]["cache_key"] for s in steps)
    # the workflow's, then the batch's (the idle flusher may cut it if the machine stalls)
    assert len(transactions) <= 4
