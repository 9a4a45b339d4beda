"""A `stat=` that is no `os.stat_result` (a DirEntry, whose stat is a method; a tuple) is
refused at the call with an error naming `stat=`, batched or not, and records nothing; before,
a bare AttributeError ('... has no attribute st_mode') came from deep inside, or, for a file
this Recorder had just registered, the value was taken without a word."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.handles import FileRecord
from lakeline.lineage.recorder import BatchRecorder, Recorder

MESSAGE = r"stat= takes the file's os\.lstat \(an os\.stat_result\), not "


def bad_stats(path: Path) -> list[Any]:
    (entry,) = [e for e in os.scandir(path.parent) if e.name == path.name]
    return [entry, tuple(os.lstat(path)), "x"]


@pytest.mark.parametrize("batch", [True, False])
def test_a_stat_that_is_no_stat_result_is_refused_at_the_call(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"data")
    rec = BatchRecorder("toy", root=tmp_path) if batch else Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    for bad in bad_stats(path):
        with pytest.raises(TypeError, match=MESSAGE + type(bad).__name__):
            rec.use(step, "f.txt", stat=bad)
        with pytest.raises(TypeError, match=MESSAGE):
            rec.produce(step, "f.txt", stat=bad)
        with pytest.raises(TypeError, match=MESSAGE):
            rec.finish_step(step, outputs=[FileRecord("f.txt", stat=bad)])
        if not batch:
            with pytest.raises(TypeError, match=MESSAGE):
                rec.save_files([FileRecord("f.txt", producer=step, stat=bad)])
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert ll.Artifact.filter().count() == 0
    assert ll.Run.get(id=step.run.id).status == "started"


@pytest.mark.parametrize("batch", [True, False])
def test_a_bad_stat_is_refused_for_a_file_already_registered(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """The file was just registered by this Recorder (its record is reused without a read):
    a bad stat= is refused there too, not taken silently."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"data")
    rec = BatchRecorder("toy", root=tmp_path) if batch else Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    made = rec.produce(step, "f.txt", stat=os.lstat(path))
    assert made is not None
    if isinstance(rec, BatchRecorder):
        rec.flush()
    with pytest.raises(TypeError, match=MESSAGE + "str"):
        rec.use(step, "f.txt", stat="x")  # type: ignore[arg-type]
