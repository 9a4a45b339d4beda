"""review57: a link's record keeps its mark (`through_link`, migration 0028) whatever happens
to the link between the call that recorded it and the write of its batch."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from faults import raise_once_at
from lakeline.instance import Instance, connect, disconnect
from lakeline.lineage.recorder import BatchRecorder, Recorder
from sqlalchemy.exc import OperationalError


def _inputs(step: str) -> list[tuple[str | None, int | None]]:
    run = ll.Run.get(engine="toy", transform__key=step)
    return sorted((a.key, a.run_id) for a in run.inputs.all())


@pytest.mark.parametrize("later", ["same_process", "later_process"])
def test_a_link_removed_before_a_failed_flush_is_retried_stays_marked(
    instance: Instance, tmp_path: Path, later: str
) -> None:
    """mklink records `out/link.txt -> ../data/raw.txt`; the batch's flush fails (a lost
    connection), Snakemake's temp() removes the link, the flush is retried: it reads the file
    again (`batch_files.replan`), where the key names nothing now. The record is still a
    link's (marked), and a plain use of data/raw.txt, in this process or a later one, is no
    edge to mklink. Failed on linkcol d3878c8 (both databases): the retried plan marked it
    False (a keyed save), which `may_be` trusted over the process's own memory."""
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw bytes\n")
    link = root / "out" / "link.txt"
    link.symlink_to("../data/raw.txt")
    rec = BatchRecorder("toy", root=root, steps=100, ms=600_000)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    lost = OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))
    with raise_once_at("recorder.flush", lost) as reached:
        with pytest.raises(OperationalError):
            rec.flush()
        link.unlink()  # as temp() does once the link's readers ran
        rec.flush()
    assert len(reached) == 2
    record = ll.Artifact.get(key="out/link.txt")
    assert record.run_id == ll.Run.get(engine="toy", transform__key="mklink").id
    assert record.through_link is True
    if later == "later_process":
        disconnect()
        connect("test")
        rec = Recorder("toy", root=root)
        wf = rec.start_workflow(key="wf", engine_run_id="r2")
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    rec.use(late, "data/raw.txt")
    rec.finish_step(late)
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert _inputs("late") == [("data/raw.txt", None)]


def test_a_reference_filled_in_through_a_link_is_marked_a_links_record(
    instance: Instance, tmp_path: Path
) -> None:
    """A reference `out/link.txt` with the target's hash (recorded before the file was seen,
    as an import does) is filled in by the save of the link (`places.promote`): it moves to
    the target's place, under the link's key. It is a link's record now: marked, and once the
    link is gone a later process's plain use of data/raw.txt is no edge to mklink. Failed on
    linkcol d3878c8 (both databases): promote kept the reference's mark (False, a keyed
    save)."""
    from lakeline.storage.hashing import hash_local_file

    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw bytes\n")
    link = root / "out" / "link.txt"
    link.symlink_to("../data/raw.txt")
    digest = hash_local_file(str(root / "data" / "raw.txt"))
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    ref = ll.Artifact.reference(
        "s3://elsewhere/out/link.txt",
        key="out/link.txt",
        hash=digest.hash,
        hash_type=digest.hash_type,
        run=mklink.run,
    ).save()
    assert ref.available is False
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    rec.finish_workflow(wf, "completed")
    record = ll.Artifact.get(key="out/link.txt")
    assert (record.uid, record.available, record.store_key) == (ref.uid, True, "data/raw.txt")
    assert record.through_link is True
    link.unlink()
    disconnect()
    connect("test")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r2")
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    rec.use(late, "data/raw.txt")
    rec.finish_step(late)
    assert _inputs("late") == [("data/raw.txt", None)]


def test_a_key_naming_the_file_by_its_path_in_an_outer_root_is_no_link(
    instance: Instance, tmp_path: Path
) -> None:
    """Two registered roots, one inside the other (`tmp/wf` in `tmp`): a file of the inner one
    saved under its path in the outer one (`wf/data/raw.txt`, a key qualified by the root's
    folder) names the file by its own path, through no symlink: not a link's record. Failed
    on linkcol d3878c8 (both databases): marked through_link True (`_names` found the file
    itself at `<outer root>/<key>`)."""
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw.txt").write_text("raw bytes\n")
    Recorder("toy", root=root)  # registers the workflow folder
    instance.register_storage(tmp_path)
    saved = ll.Artifact(root / "data" / "raw.txt", key="wf/data/raw.txt").save()
    assert (saved.store_key, saved.in_place) == ("data/raw.txt", True)
    assert saved.through_link is False
