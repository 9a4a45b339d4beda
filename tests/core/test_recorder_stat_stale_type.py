"""A caller's stat of the path when it was another kind of entry (a folder then, a file now,
or the reverse: replaced between the caller's lstat and the call). Before, the file was
refused as unreadable ("cannot be read: check its permissions", untrue) and the folder gave
a bare IsADirectoryError ("Is a directory", no path); now the file is recorded as without
the stat, and the folder is refused naming it (SourceChanged), nothing recorded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import SourceChanged
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder


@pytest.mark.parametrize("batch", [True, False])
def test_a_folders_stale_stat_given_for_what_is_a_file_now(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    (tmp_path / "f.txt").mkdir()
    then = os.lstat(tmp_path / "f.txt")  # a folder when the caller looked
    (tmp_path / "f.txt").rmdir()
    (tmp_path / "f.txt").write_bytes(b"file bytes")
    rec = BatchRecorder("toy", root=tmp_path) if batch else Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    used = rec.use(step, "f.txt", stat=then)
    rec.finish_step(step)
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert used is not None
    record = ll.Artifact.get(id=used.id)
    assert (record.hash, record.hash_type, record.size, record.n_files) == (
        hashlib.sha256(b"file bytes").hexdigest(),
        "sha256",
        10,
        None,
    )


@pytest.mark.parametrize("batch", [True, False])
def test_a_files_stale_stat_given_for_what_is_a_folder_now(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    (tmp_path / "d").write_bytes(b"a file then")
    then = os.lstat(tmp_path / "d")
    (tmp_path / "d").unlink()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_bytes(b"x")
    rec = BatchRecorder("toy", root=tmp_path) if batch else Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    with pytest.raises(SourceChanged, match=f"{tmp_path / 'd'} is a folder now"):
        rec.use(step, "d", stat=then)
    rec.finish_step(step)
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert ll.Artifact.filter().count() == 0
