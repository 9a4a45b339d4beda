"""Ids a long-lived Recorder holds across transactions (a run written by an earlier flush, a
transform it cached, the record of a file it saw) must never name a record another process
inserted since: on SQLite a table without AUTOINCREMENT gave a deleted row's id (the highest)
to the next insert, whoever made it, and the holder's later writes landed on that unrelated
record (its outputs and status on another run, a run of another transform, an edge to another
file), with no foreign key to refuse them. PostgreSQL's sequences never give an id twice;
SQLite's tables have AUTOINCREMENT since migration 0027."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lakeline.errors import StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from sqlalchemy import text

OTHER = """
import sys
from pathlib import Path
import lakeline as ll
from lakeline.lineage.batching import BatchRecorder

ll.connect("{name}")
root = Path(sys.argv[1])
rec = BatchRecorder("other", root=root, steps=100, ms=600_000)
wf = rec.start_workflow(key="elsewhere", engine_run_id="o")
step = rec.start_step(wf, key="z", kind="rule", engine_task_id="z")
(root / "theirs.txt").write_text("theirs")
rec.produce(step, root / "theirs.txt")
rec.finish_step(step)
rec.finish_workflow(wf)
rec.flush()
"""


def _another_process(instance: Instance, root: Path) -> None:
    """Another process records a workflow of its own: a transform, runs and a file."""
    root.mkdir()
    script = textwrap.dedent(OTHER.format(name=instance.name))
    subprocess.run([sys.executable, "-c", script, str(root)], check=True, env=dict(os.environ))


def _sql(instance: Instance, statement: str, **params: object) -> list[tuple[object, ...]]:
    with instance.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return [tuple(row) for row in result.all()] if result.returns_rows else []


def test_a_held_runs_writes_never_land_on_the_run_another_process_took_its_id_for(
    instance: Instance, tmp_path: Path
) -> None:
    rec = BatchRecorder("held", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    gone = rec.start_step(workflow, key="a", kind="rule", engine_task_id="gone")
    rec.flush()  # its run written while it runs: the highest id
    _sql(instance, "DELETE FROM runs WHERE id = :id", id=gone.run.id)
    _another_process(instance, tmp_path / "other")
    (tmp_path / "out.txt").write_text("x")
    rec.produce(gone, tmp_path / "out.txt")
    rec.finish_step(gone, "errored", error="boom")
    with pytest.raises(StepsNotRecorded) as caught:
        rec.flush()
    assert set(caught.value.steps) == {"w/gone"}, caught.value.steps
    runs = dict(_sql(instance, "SELECT engine_ref, status FROM runs WHERE engine = 'other'"))
    assert runs == {"o": "completed", "o/z": "completed"}, runs
    made = _sql(
        instance, "SELECT a.key, r.engine_ref FROM artifacts a JOIN runs r ON r.id = a.run_id"
    )
    assert sorted(made) == [("theirs.txt", "o/z")], made  # out.txt is nobody's


def test_a_cached_transform_never_names_the_transform_another_process_took_its_id_for(
    instance: Instance, tmp_path: Path
) -> None:
    rec = BatchRecorder("held", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    first = rec.start_step(workflow, key="a", kind="rule", engine_task_id="a1")
    rec.finish_step(first)
    rec.flush()  # rule a's transform: the highest id, cached by the Recorder
    transform_id = first.run.transform_id
    _sql(instance, "DELETE FROM runs WHERE transform_id = :id", id=transform_id)
    _sql(instance, "DELETE FROM transforms WHERE id = :id", id=transform_id)
    _another_process(instance, tmp_path / "other")
    second = rec.start_step(workflow, key="a", kind="rule", engine_task_id="a2")
    rec.finish_step(second)
    with pytest.raises(StepsNotRecorded) as caught:
        rec.flush()  # its transform is gone: left out (the next step of rule a makes it again)
    assert set(caught.value.steps) == {"w/a2"}, caught.value.steps
    rows = _sql(
        instance,
        "SELECT r.engine_ref, t.key FROM runs r JOIN transforms t ON t.id = r.transform_id "
        "WHERE r.engine = 'held'",
    )
    assert rows == [("w", "wf")], rows  # never a run of their transform


def test_a_seen_files_record_never_names_the_file_another_process_took_its_id_for(
    instance: Instance, tmp_path: Path
) -> None:
    rec = BatchRecorder("held", root=tmp_path, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="wf", engine_run_id="w")
    maker = rec.start_step(workflow, key="a", kind="rule", engine_task_id="a")
    (tmp_path / "out.txt").write_text("x")
    rec.produce(maker, tmp_path / "out.txt")
    rec.finish_step(maker)
    rec.flush()  # out.txt's record: the highest id, remembered for a later `use`
    (artifact_id,) = _sql(instance, "SELECT id FROM artifacts WHERE key = 'out.txt'")[0]
    _sql(instance, "DELETE FROM artifacts WHERE id = :id", id=artifact_id)
    _another_process(instance, tmp_path / "other")
    user = rec.start_step(workflow, key="b", kind="rule", engine_task_id="b")
    rec.use(user, tmp_path / "out.txt")  # unchanged since it was saved
    rec.finish_step(user)
    rec.flush()
    used = _sql(
        instance,
        "SELECT r.engine_ref, a.key FROM run_inputs i JOIN runs r ON r.id = i.run_id "
        "JOIN artifacts a ON a.id = i.artifact_id",
    )
    assert ("w/b", "theirs.txt") not in used, used  # never their file
