"""review53: a link's record at a file's place is told from a keyed save by what the link was
when the file was used, not when a batch is written."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder


@pytest.mark.parametrize("change", ["removed", "replaced"])
def test_a_link_removed_after_a_use_before_the_flush_is_still_a_link(
    instance: Instance, tmp_path: Path, change: str
) -> None:
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
    rec.flush()
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="2")
    rec.use(late, "data/raw.txt")  # the link is there: mklink did not make data/raw.txt
    rec.finish_step(late)
    link.unlink()  # as Snakemake's temp() does once the link's readers are done
    if change == "replaced":
        link.write_text("raw bytes\n")
    rec.finish_workflow(wf, "completed")
    rec.flush()
    run = ll.Run.get(engine="toy", transform__key="late")
    assert [(a.key, a.run_id) for a in run.inputs.all()] == [("data/raw.txt", None)]


def test_a_retried_flush_tells_the_link_from_the_keyed_save_again(
    instance: Instance, tmp_path: Path
) -> None:
    """data/raw.txt has two records at its place: `out/link.txt` (a link's, made by mklink)
    and `kept/raw.txt` (a keyed save by keep). A flush retried after a conflict reads them
    again (new objects): a plain use is keep's record on each attempt, never the link's."""
    from faults import conflict, raise_once_at

    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw bytes\n")
    (root / "out" / "link.txt").symlink_to("../data/raw.txt")
    rec = BatchRecorder("toy", root=root, steps=100, ms=600_000)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    rec.flush()
    keep = rec.start_step(wf, key="keep", kind="rule", engine_task_id="2")
    rec.produce(keep, "data/raw.txt", key="kept/raw.txt")
    rec.finish_step(keep)
    rec.flush()
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="3")
    rec.use(late, "data/raw.txt")
    rec.finish_step(late)
    with raise_once_at("recorder.flush", conflict(instance)) as reached:
        rec.flush()
    assert len(reached) == 2
    keep_id = ll.Run.get(engine="toy", transform__key="keep").id
    run = ll.Run.get(engine="toy", transform__key="late")
    assert [(a.key, a.run_id) for a in run.inputs.all()] == [("kept/raw.txt", keep_id)]
