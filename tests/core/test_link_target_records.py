"""A file and a symlink to it are one place with a record each: a step that only used the file
never gets the record a link's producer made (a false "used the output of" edge), through
every way a Recorder records a use; a step re-recording what it saved under a key keeps that
record."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, FileRecord, Recorder


def linked(tmp_path: Path) -> Path:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw bytes\n")
    (root / "out" / "link.txt").symlink_to("../data/raw.txt")
    return root


@pytest.mark.parametrize("way", ["use", "save_files", "batched", "batched_later"])
def test_a_link_target_never_recorded_is_not_the_output_of_the_step_that_linked_it(
    instance: Instance, tmp_path: Path, way: str
) -> None:
    """`mklink` made `out/link.txt` (a link to `data/raw.txt`, recorded under its own path);
    `late` then reads `data/raw.txt`, never recorded itself. Failed before the fix (every
    way): `late`'s input was `out/link.txt`, produced by `mklink`."""
    root = linked(tmp_path)
    batched = way.startswith("batched")  # later: the link written by an earlier flush
    rec = BatchRecorder("toy", root=root, steps=100, ms=600_000) if batched else None
    rec = rec or Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    if isinstance(rec, BatchRecorder) and way == "batched_later":
        rec.flush()
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    if way == "save_files":
        rec.save_files([FileRecord("data/raw.txt", used_by=[(late, "")])])
    else:
        rec.use(late, "data/raw.txt")
    rec.finish_step(late)
    rec.finish_workflow(wf, "completed")
    if isinstance(rec, BatchRecorder):
        rec.flush()
    link = ll.Artifact.get(key="out/link.txt")
    assert link.run_id == ll.Run.get(engine="toy", transform__key="mklink").id
    (used,) = ll.Run.get(engine="toy", transform__key="late").inputs
    assert (used.key, used.run_id, used.hash) == ("data/raw.txt", None, link.hash)
    assert ll.Artifact.filter(key="out/link.txt").count() == 1  # no version of either
    assert ll.Artifact.filter(key="data/raw.txt").count() == 1


def test_new_bytes_at_a_link_target_are_not_a_version_of_the_link(
    instance: Instance, tmp_path: Path
) -> None:
    """The target rewritten, then only used: its own record, not version 2 of the link's."""
    root = linked(tmp_path)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    (root / "data" / "raw.txt").write_text("other bytes\n")
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    (used,) = [rec.use(late, "data/raw.txt")]
    assert used is not None and used.key == "data/raw.txt" and used.run_id is None
    assert ll.Artifact.filter(key="out/link.txt").count() == 1


@pytest.mark.parametrize("batched", [False, True])
def test_a_step_re_recording_a_file_it_saved_under_a_key_keeps_that_record(
    instance: Instance, tmp_path: Path, batched: bool
) -> None:
    """As Prefect's audit does after a task body's `ll.Artifact(path, key=...).save()`: the
    produce (not a use) of the same bytes by the same step is that record. Batched: fails if
    BatchRecorder's queued outputs are taken for files only used (a second record)."""
    root = linked(tmp_path)
    rec = BatchRecorder("toy", root=root, steps=100, ms=600_000) if batched else None
    rec = rec or Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    step = rec.start_step(wf, key="copy", kind="rule", engine_task_id="1")
    rec.produce(step, "data/raw.txt", key="copies/raw.txt")
    if isinstance(rec, BatchRecorder):
        rec.flush()
    rec.produce(step, "data/raw.txt")
    rec.finish_step(step)
    rec.finish_workflow(wf, "completed")
    if isinstance(rec, BatchRecorder):
        rec.flush()
    made = ll.Artifact.filter(run_id=ll.Run.get(engine="toy", transform__key="copy").id)
    assert [a.key for a in made.all()] == ["copies/raw.txt"]
