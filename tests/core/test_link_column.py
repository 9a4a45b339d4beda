"""A record made in place through a symlink is marked so at its save (`through_link`, migration
0028), whatever saves it; any other new record is marked not. A later process, where the link
is gone, tells a link's record from a keyed save by the mark alone."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance, connect, disconnect
from lakeline.lineage.recorder import BatchRecorder, Handle, Recorder

HOW = ["use", "produce", "batched", "api", "bulk"]


def workflow(tmp_path: Path) -> Path:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    for name in ("raw", "two", "three", "plain"):
        (root / "data" / f"{name}.txt").write_text(f"{name} bytes\n")
    (root / "out" / "other.txt").write_text("another file\n")  # a key naming another file
    (root / "out" / "link.txt").symlink_to("../data/raw.txt")
    return root


def record(rec: Recorder, step: Handle, root: Path, path: str, key: str | None, how: str) -> None:
    """`step` records `path` (under `key`) as `how` says: its output, but for `use`."""
    if how == "use":
        rec.use(step, path, key=key)
    elif how in ("produce", "batched"):
        rec.produce(step, path, key=key)
    else:
        if isinstance(rec, BatchRecorder):
            rec.flush()
        run = step.run  # written: a record can name it as its producer
        artifact = ll.Artifact(root / path, key=key, run=run)
        if how == "api":
            artifact.save()
        else:
            ll.save([artifact])


def marks() -> dict[str, bool | None]:
    return {a.key: a.through_link for a in ll.Artifact.filter(is_latest=None)}


def later_uses(root: Path, *paths: str) -> list[tuple[str | None, int | None]]:
    """What a step of a later process (a new Instance) using `paths` by their own path used."""
    disconnect()
    connect("test")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf2", engine_run_id="r2")
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="9")
    for path in paths:
        rec.use(late, path)
    rec.finish_step(late)
    run = ll.Run.get(engine="toy", transform__key="late")
    return sorted((a.key, a.run_id) for a in run.inputs.all())


def run_id(step: str) -> int | None:
    return ll.Run.get(engine="toy", transform__key=step).id


@pytest.mark.parametrize("how", HOW)
def test_every_save_marks_the_record_it_makes_through_a_link_and_only_it(
    instance: Instance, tmp_path: Path, how: str
) -> None:
    """The link's record is marked (through the link itself, or through a linked folder); a
    keyed save, a plain record are marked not. Once the link is gone, a later process's plain
    use of its target takes no link's record (the strict xfail of test_link_marks on main);
    a keyed save keeps its producer edge."""
    root = workflow(tmp_path)
    (root / "datalink").symlink_to("data")
    rec: Recorder = (
        BatchRecorder("toy", root=root, steps=100, ms=600_000)
        if how == "batched"
        else Recorder("toy", root=root)
    )
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    step = rec.start_step(wf, key="step", kind="rule", engine_task_id="1")
    record(rec, step, root, "out/link.txt", "out/link.txt", how)
    record(rec, step, root, "datalink/three.txt", "datalink/three.txt", how)
    record(rec, step, root, "data/two.txt", "kept/two.txt", how)
    record(rec, step, root, "data/plain.txt", None, how)
    rec.finish_step(step)
    rec.finish_workflow(wf, "completed")
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert marks() == {
        "out/link.txt": True,
        "datalink/three.txt": True,
        "kept/two.txt": False,
        "data/plain.txt": False,
    }
    (root / "out" / "link.txt").unlink()
    (root / "datalink").unlink()
    producer = None if how == "use" else run_id("step")
    assert later_uses(root, "data/raw.txt", "data/three.txt", "data/two.txt") == sorted(
        [("data/raw.txt", None), ("data/three.txt", None), ("kept/two.txt", producer)]
    )
    assert ll.Artifact.get(key="data/raw.txt").through_link is False


@pytest.mark.parametrize("how", ["produce", "api"])
def test_a_keyed_save_whose_key_names_another_file_keeps_its_producer_edge(
    instance: Instance, tmp_path: Path, how: str
) -> None:
    """`keep` saves data/three.txt under `out/other.txt`, the path of another file: a keyed
    save (marked not a link), which a later plain use of data/three.txt takes, with keep as
    its producer. Failed on main (a new record data/three.txt without a producer: the file
    system could not tell it from a link retargeted since)."""
    root = workflow(tmp_path)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    keep = rec.start_step(wf, key="keep", kind="rule", engine_task_id="1")
    record(rec, keep, root, "data/three.txt", "out/other.txt", how)
    rec.finish_step(keep)
    rec.finish_workflow(wf, "completed")
    assert marks() == {"out/other.txt": False}
    assert later_uses(root, "data/three.txt") == [("out/other.txt", run_id("keep"))]


def test_the_mark_is_no_part_of_a_records_identity(instance: Instance, tmp_path: Path) -> None:
    """The link's record and a keyed save of the same bytes (the target) hold the bytes' hash;
    the same file saved again under the link's key is the link's record, not a new version;
    `to_dataframe` shows the mark."""
    root = workflow(tmp_path)
    Recorder("toy", root=root)  # registers the folder: the saves stay in place
    link = ll.Artifact(root / "out" / "link.txt", key="out/link.txt").save()
    kept = ll.Artifact(root / "data" / "raw.txt", key="kept/raw.txt").save()
    assert (link.through_link, kept.through_link) == (True, False)
    assert link.hash == kept.hash and link.store_key == kept.store_key == "data/raw.txt"
    again = ll.Artifact(root / "out" / "link.txt", key="out/link.txt").save()
    assert again.uid == link.uid and not again.created
    frame = ll.Artifact.filter().to_dataframe(["key", "through_link"])
    assert dict(zip(frame["key"], frame["through_link"], strict=True)) == {
        "out/link.txt": True,
        "kept/raw.txt": False,
    }
