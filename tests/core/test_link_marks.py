"""A record at a file's place under another key is a link's (`root/<its key>` resolves to the
file: it stands for the link, never for the file) or a keyed save (the file saved there under a
key: it is the file's record). Told apart by the file system when the file is recorded
(`keying.may_be`), with real files and symlinks."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, FileRecord, Handle, Recorder

WAYS = ["use", "save_files", "batched", "batched_later"]


def workflow(tmp_path: Path) -> Path:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw bytes\n")
    return root


def recorder(root: Path, way: str) -> Recorder:
    if way.startswith("batched"):
        return BatchRecorder("toy", root=root, steps=100, ms=600_000)
    return Recorder("toy", root=root)


def use(rec: Recorder, step: Handle, path: str, way: str) -> None:
    if way == "save_files":
        rec.save_files([FileRecord(path, used_by=[(step, "")])])
    else:
        rec.use(step, path)


def flush(rec: Recorder) -> None:
    if isinstance(rec, BatchRecorder):
        rec.flush()


def inputs_of(step: str) -> list[tuple[str | None, int | None]]:
    run = ll.Run.get(engine="toy", transform__key=step)
    return sorted((a.key, a.run_id) for a in run.inputs.all())


def run_id(step: str) -> int:
    return ll.Run.get(engine="toy", transform__key=step).id


@pytest.mark.parametrize("saved", ["produce", "api"])
@pytest.mark.parametrize("way", WAYS)
def test_a_file_a_step_saved_under_a_key_is_that_record_when_a_later_step_uses_it(
    instance: Instance, tmp_path: Path, way: str, saved: str
) -> None:
    """`keep` saves data/raw.txt in place under `kept/raw.txt` (as a Prefect task body's
    `ll.Artifact(p, key=K).save()`); `late` then reads data/raw.txt. Failed on main (every
    way): `late`'s input was a new record `data/raw.txt` without a producer."""
    root = workflow(tmp_path)
    rec = recorder(root, way)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    keep = rec.start_step(wf, key="keep", kind="task", engine_task_id="1")
    if saved == "api":
        flush(rec)  # the run written: a record can name it as its producer
        ll.Artifact(root / "data" / "raw.txt", key="kept/raw.txt", run=keep.run).save()
    else:
        rec.produce(keep, "data/raw.txt", key="kept/raw.txt")
    rec.finish_step(keep)
    if way == "batched_later":
        rec.flush()
    late = rec.start_step(wf, key="late", kind="task", engine_task_id="2")
    use(rec, late, "data/raw.txt", way)
    rec.finish_step(late)
    rec.finish_workflow(wf, "completed")
    flush(rec)
    assert inputs_of("late") == [("kept/raw.txt", run_id("keep"))]
    assert ll.Artifact.filter(key="data/raw.txt").count() == 0


@pytest.mark.parametrize("way", WAYS)
def test_a_link_through_a_linked_folder_does_not_stand_for_its_target(
    instance: Instance, tmp_path: Path, way: str
) -> None:
    """`first` reads data/raw.txt through a linked folder (`datalink -> data`), `second` reads
    it by its own path (never recorded itself). Failed on main (every way): `second`'s input
    was the record `datalink/raw.txt` (symfact's used-only link limit)."""
    root = workflow(tmp_path)
    (root / "datalink").symlink_to("data")
    rec = recorder(root, way)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    first = rec.start_step(wf, key="first", kind="rule", engine_task_id="1")
    rec.use(first, "datalink/raw.txt", key="datalink/raw.txt")
    rec.finish_step(first)
    if way == "batched_later":
        rec.flush()
    second = rec.start_step(wf, key="second", kind="rule", engine_task_id="2")
    use(rec, second, "data/raw.txt", way)
    rec.finish_step(second)
    rec.finish_workflow(wf, "completed")
    flush(rec)
    assert inputs_of("first") == [("datalink/raw.txt", None)]
    assert inputs_of("second") == [("data/raw.txt", None)]


@pytest.mark.parametrize("link", ["kept", "copy"])
@pytest.mark.parametrize("same_bytes", [False, True])
@pytest.mark.parametrize("batched", [False, True])
def test_a_step_that_rewrites_a_link_target_makes_the_target_not_the_link(
    instance: Instance, tmp_path: Path, batched: bool, same_bytes: bool, link: str
) -> None:
    """`mklink` made `out/link.txt -> ../data/raw.txt` (`copy`: replaced by a regular file of
    the same bytes afterwards); `rewrite` then writes data/raw.txt (produced by its own path).
    Failed on main (every case): `rewrite`'s output was the link's record (new bytes:
    version 2 of `out/link.txt`; the same bytes: mklink's)."""
    root = workflow(tmp_path)
    (root / "out" / "link.txt").symlink_to("../data/raw.txt")
    rec = recorder(root, "batched" if batched else "use")
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    flush(rec)
    if link == "copy":
        (root / "out" / "link.txt").unlink()
        (root / "out" / "link.txt").write_text("raw bytes\n")
    rewrite = rec.start_step(wf, key="rewrite", kind="rule", engine_task_id="2")
    (root / "data" / "raw.txt").write_text("raw bytes\n" if same_bytes else "new bytes\n")
    rec.produce(rewrite, "data/raw.txt")
    rec.finish_step(rewrite)
    rec.finish_workflow(wf, "completed")
    flush(rec)
    link = ll.Artifact.get(key="out/link.txt")
    assert link.run_id == run_id("mklink")
    assert ll.Artifact.filter(key="out/link.txt", is_latest=None).count() == 1
    made = ll.Artifact.get(key="data/raw.txt")
    assert made.run_id == run_id("rewrite") and made.load() == (root / "data/raw.txt").read_text()


def linked_then(root: Path, rec: Recorder, change: str, way: str) -> None:
    """`mklink` records `out/link.txt -> ../data/raw.txt`; the link is then changed as
    `change` says; `late` reads data/raw.txt (the same bytes the link's record holds)."""
    link = root / "out" / "link.txt"
    link.symlink_to("../data/raw.txt")
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    if way == "batched_later":
        rec.flush()
    if change == "dangling":  # now points at a file that is not there
        link.unlink()
        link.symlink_to("../data/gone.txt")
    elif change == "elsewhere":
        (root / "data" / "other.txt").write_text("other\n")
        link.unlink()
        link.symlink_to("../data/other.txt")
    elif change == "copy":  # replaced by a regular file of the same bytes
        link.unlink()
        link.write_bytes((root / "data" / "raw.txt").read_bytes())
    elif change == "removed":
        link.unlink()
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    use(rec, late, "data/raw.txt", way)
    rec.finish_step(late)
    rec.finish_workflow(wf, "completed")
    flush(rec)


@pytest.mark.parametrize("change", ["kept", "dangling", "elsewhere", "copy"])
@pytest.mark.parametrize("way", WAYS)
def test_a_link_target_is_not_the_output_of_the_step_that_linked_it_whatever_the_link_became(
    instance: Instance, tmp_path: Path, way: str, change: str
) -> None:
    """The link's record holds the target's bytes under the link's key and mklink as its
    producer: whether the link is still there, dangles, points elsewhere or was replaced by
    a copy, mklink did not make data/raw.txt (these passed on main: stop 29's rule for a file
    only used; they guard that a record is taken as a keyed save only where nothing is at
    `root/<its key>`)."""
    root = workflow(tmp_path)
    rec = recorder(root, way)
    linked_then(root, rec, change, way)
    assert inputs_of("late") == [("data/raw.txt", None)]
    assert ll.Artifact.get(key="out/link.txt").run_id == run_id("mklink")


@pytest.mark.parametrize("way", WAYS)
def test_a_link_removed_in_the_process_that_recorded_it_is_still_a_link(
    instance: Instance, tmp_path: Path, way: str
) -> None:
    """The process that recorded the link remembers its record is a link's (`keying.note_link`):
    a use after the link is gone (Snakemake's temp()) is no edge to mklink. Failed on
    linkmark fcc2d4c (every way; passed on main: stop 29's rule)."""
    root = workflow(tmp_path)
    rec = recorder(root, way)
    linked_then(root, rec, "removed", way)
    assert inputs_of("late") == [("data/raw.txt", None)]


def test_a_removed_link_is_not_taken_for_a_keyed_save(instance: Instance, tmp_path: Path) -> None:
    """Nothing on disk tells a link removed since from a key naming no file, in a process that
    did not record the link (a new Instance here): the link's record says so (`through_link`,
    migration 0028). A strict xfail on main (the record taken as a keyed save: a false
    producer edge to mklink)."""
    from lakeline.instance import connect, disconnect

    root = workflow(tmp_path)
    link = root / "out" / "link.txt"
    link.symlink_to("../data/raw.txt")
    rec = recorder(root, "use")
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    rec.finish_workflow(wf, "completed")
    link.unlink()
    disconnect()
    connect("test")  # as a later process: what this one remembered is not there
    rec = recorder(root, "use")
    wf = rec.start_workflow(key="wf", engine_run_id="r2")
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    rec.use(late, "data/raw.txt")
    rec.finish_step(late)
    assert inputs_of("late") == [("data/raw.txt", None)]


def test_a_keyed_save_outside_any_step_still_stands_for_its_file(
    instance: Instance, tmp_path: Path
) -> None:
    """No producer: a file saved in place under a key is its record for a later use (as
    before); so is one whose key names a file elsewhere in the root."""
    root = workflow(tmp_path)
    (root / "data" / "two.txt").write_text("two\n")
    (root / "out" / "two.txt").write_text("another file\n")
    rec = Recorder("toy", root=root)  # registers the folder: the saves stay in place
    ll.Artifact(root / "data" / "raw.txt", key="kept/raw.txt").save()
    ll.Artifact(root / "data" / "two.txt", key="out/two.txt").save()
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="1")
    rec.use(late, "data/raw.txt")
    rec.use(late, "data/two.txt")
    rec.finish_step(late)
    assert inputs_of("late") == [("kept/raw.txt", None), ("out/two.txt", None)]


@pytest.mark.parametrize("way", WAYS)
def test_a_link_to_a_file_outside_the_workflow_folder_does_not_stand_for_it(
    instance: Instance, tmp_path: Path, way: str
) -> None:
    """`reads/s.txt -> /elsewhere/raw/s.txt` (its record lies in the folder of the target,
    keyed by the link's path in the workflow folder): a step reading the target directly did
    not use mklink's output (passed on main: stop 29's rule; guards that the link is looked
    for in every folder the instance registered, not only in the target's)."""
    outside = tmp_path / "elsewhere" / "raw"
    outside.mkdir(parents=True)
    (outside / "s.txt").write_text("raw bytes\n")
    root = workflow(tmp_path)
    (root / "reads").mkdir()
    (root / "reads" / "s.txt").symlink_to(outside / "s.txt")
    rec = recorder(root, way)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "reads/s.txt", key="reads/s.txt")
    rec.finish_step(mklink)
    if way == "batched_later":
        rec.flush()
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    use(rec, late, str(outside / "s.txt"), way)
    rec.finish_step(late)
    rec.finish_workflow(wf, "completed")
    flush(rec)
    assert inputs_of("late") == [("s.txt", None)]
    assert ll.Artifact.get(key="reads/s.txt").run_id == run_id("mklink")
