"""A file `os.access` calls readable whose open fails (root on a write-only sysfs file, as on
NFS with root_squash): the BatchRecorder, the plain Recorder and `ll.save` raise `PathNotFound`
("cannot be read": the read is the check, `planning.plan_read`), leaving no record and no copy
behind."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.artifacts import pipeline
from lakeline.errors import PathNotFound
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder
from lakeline.storage.keys import OBJECTS_PREFIX


def _unopenable() -> str:
    """A sysfs file of mode 0200: root's os.access says readable, its open for reading fails."""
    if os.geteuid() != 0:
        pytest.skip("only root's os.access calls a file it cannot open readable")
    for path in sorted(glob.glob("/sys/class/*/*") + glob.glob("/sys/devices/*/*/rescan")):
        try:
            if os.stat(path).st_mode & 0o777 != 0o200 or not os.access(path, os.R_OK):
                continue
            with open(path, "rb"):
                continue
        except PermissionError:
            return path
        except OSError:
            continue
    pytest.skip("no write-only sysfs file here")


@pytest.mark.parametrize("kind", [Recorder, BatchRecorder], ids=["plain", "batched"])
@pytest.mark.parametrize("call", ["use", "produce"])
def test_a_file_whose_open_fails_cannot_be_read_batched_or_not(
    instance: Instance, kind: type[Recorder], call: str
) -> None:
    path = _unopenable()
    rec = kind("toy", root=os.getcwd())
    workflow = rec.start_workflow(key="p", engine_run_id=f"{kind.__name__}-{call}")
    step = rec.start_step(workflow, key="a", kind="rule", engine_task_id="1")
    with pytest.raises(PathNotFound, match=f"^{path} cannot be read: check its permissions$"):
        getattr(rec, call)(step, path)
    rec.finish_step(step)
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert ll.Artifact.filter().count() == 0
    _nothing_stored(instance)


def test_a_file_whose_open_fails_cannot_be_saved(instance: Instance) -> None:
    path = _unopenable()
    with pytest.raises(PathNotFound, match=f"^{path} cannot be read: check its permissions$"):
        ll.save([ll.Artifact(path, key="sys/unopenable")])
    assert ll.Artifact.filter().count() == 0
    _nothing_stored(instance)


def _nothing_stored(instance: Instance) -> None:
    """No object, nor a copy spooled beside them, left in the instance's storage."""
    objects = os.path.join(instance.storage.root, OBJECTS_PREFIX)
    assert [os.path.join(d, f) for d, _, files in os.walk(objects) for f in files] == []


@pytest.mark.parametrize("offload", [True, False], ids=["worker", "threads"])
def test_a_file_whose_open_fails_fails_a_pipelined_save_as_any(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offload: bool
) -> None:
    """A save large enough to be pipelined: its files read by the file worker (a process:
    its PermissionError comes back through the pipe) or by this process; the same error."""
    path = _unopenable()
    monkeypatch.setattr(pipeline, "MIN_FILES", 4)
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)  # the test machine is busy
    monkeypatch.setattr(pipeline, "OFFLOAD", offload)
    artifacts = []
    for i in range(8):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}\n")
        artifacts.append(ll.Artifact(str(tmp_path / f"f{i}.txt"), key=f"k/{i}.txt"))
    artifacts.insert(5, ll.Artifact(path, key="sys/unopenable"))
    with pytest.raises(PathNotFound, match=f"^{path} cannot be read: check its permissions$"):
        ll.save(artifacts)
    assert ll.Artifact.filter().count() == 0
    _nothing_stored(instance)
