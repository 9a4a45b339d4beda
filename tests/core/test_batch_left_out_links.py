"""A BatchRecorder's queued use of a file it saved before, unchanged (a link: not hashed
again), whose record was deleted since: the flush records the file anew, as it was used —
under the key the use gave — and writes the rest of the batch."""

from __future__ import annotations

from pathlib import Path

from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from sqlalchemy import text


def _edges(instance: Instance) -> list[tuple[str, str]]:
    with instance.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.engine_ref, a.key FROM run_inputs i JOIN runs r ON r.id = i.run_id "
                "JOIN artifacts a ON a.id = i.artifact_id"
            )
        ).all()
    return sorted((str(ref), str(key)) for ref, key in rows)


def test_a_used_file_whose_record_was_deleted_is_recorded_anew_under_its_key(
    instance: Instance, tmp_path: Path
) -> None:
    rec = BatchRecorder("links", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    (tmp_path / "in.txt").write_text("in")
    s = rec.start_step(workflow, key="s", kind="rule", engine_task_id="s")
    first = rec.use(s, "in.txt", key="named/in.txt")
    rec.finish_step(s)
    rec.flush()
    assert first is not None and first.id is not None
    with instance.engine.begin() as conn:  # an admin deletes the record (and its edges)
        conn.execute(text("DELETE FROM run_inputs WHERE artifact_id = :id"), {"id": first.id})
        conn.execute(text("DELETE FROM artifacts WHERE id = :id"), {"id": first.id})
    for task in ("t", "u"):  # two steps use it, unchanged: links to the deleted record
        step = rec.start_step(workflow, key=task, kind="rule", engine_task_id=task)
        rec.use(step, "in.txt", key="named/in.txt")
        rec.finish_step(step)
    rec.flush()  # nothing left out: the file is recorded again, used by both
    assert _edges(instance) == [("w/t", "named/in.txt"), ("w/u", "named/in.txt")]
