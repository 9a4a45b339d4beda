"""A BatchRecorder's queued step as the current run: what its body saves or loads with the
lakeline API is attributed to it, its run written first (Prefect task bodies)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.context import current_run
from lakeline.lineage.recorder import BatchRecorder, current


def test_a_queued_step_is_written_when_its_body_reads_the_current_run(
    instance: Instance, tmp_path: Path
) -> None:
    root = tmp_path / "wf"
    root.mkdir()
    (root / "in.txt").write_text("read in the body")
    ll.Artifact(root / "in.txt", key="in.txt").save()
    rec = BatchRecorder("toy", root=root, steps=1000, ms=3_600_000)  # only an explicit flush
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="t", kind="task", engine_task_id="1")
    flushes: list[int] = []

    def written() -> ll.Run:
        flushes.append(1)
        rec.flush()
        return step.run

    with current(step, written):
        assert step.run.id is None  # queued: nothing read the current run yet
        (root / "out.txt").write_text("made in the body")
        made = ll.Artifact(root / "out.txt", key="out.txt").save()
        ll.Artifact.get(key="in.txt").load()
        run = current_run()
    assert run is not None and run.id is not None and run.engine_ref == "r/1"
    assert flushes == [1]  # written once, then read as it is
    assert made.run_id == run.id
    assert [a.key for a in ll.Run.get(uid=run.uid).inputs] == ["in.txt"]
    assert current_run() is None
    rec.finish_step(step)
    rec.finish_workflow(wf)
    assert ll.Run.get(uid=run.uid).status == "completed"


def test_a_body_reading_its_run_while_another_thread_writes_its_batch_gets_it_written(
    instance: Instance, tmp_path: Path
) -> None:
    """A flush gives the queued runs their ids inside its transaction: a body reading its run
    then (Prefect's mapped tasks: another task's body writing the batch) must not take the
    id as written. It waits for the write, and what it saves names a run in the database
    (else PostgreSQL refuses the save: MissingReference, run id N does not exist)."""
    import threading

    from lakeline import checkpoints

    root = tmp_path / "wf"
    root.mkdir()
    rec = BatchRecorder("toy", root=root, steps=1000, ms=3_600_000)  # only an explicit flush
    wf = rec.start_workflow(key="p", engine_run_id="r")
    first = rec.start_step(wf, key="t", kind="task", engine_task_id="1")
    other = rec.start_step(wf, key="t", kind="task", engine_task_id="2")
    rec.finish_step(first)
    seen: dict[str, object] = {}
    readers: list[threading.Thread] = []

    def body() -> None:  # `other`'s body, in its own thread, reading its run
        def written() -> ll.Run:
            rec.flush()
            return other.run

        with current(other, written):
            (root / "copy.txt").write_text("saved in the body")
            try:
                seen["saved"] = ll.Artifact(root / "copy.txt", key="copy.txt").save().run_id
            except Exception as exc:
                seen["error"] = exc

    def meanwhile() -> None:  # the flush, inside its transaction: the ids are set, not committed
        if readers:
            return
        readers.append(threading.Thread(target=body))
        readers[0].start()
        readers[0].join(timeout=3)  # it waits for this flush (its lock) or saves meanwhile

    with checkpoints.at("recorder.flush", meanwhile):
        rec.flush()
    readers[0].join(timeout=30)
    assert "error" not in seen, seen.get("error")
    assert seen.get("saved") == other.run.id is not None
    assert ll.Artifact.get(key="copy.txt").run_id == ll.Run.get(engine_ref="r/2").id
    rec.finish_workflow(wf)
