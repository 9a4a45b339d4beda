"""A file `os.access` calls readable whose open fails (root on a write-only sysfs file, as on
NFS with root_squash): the BatchRecorder raises `PathNotFound` ("cannot be read": its read is
its check, `planning.plan_file`), the plain Recorder a raw PermissionError from the save's
hashing (`save.save_artifacts`' `plan_one` calls `planning._plan`, which does not translate
it). Left for the owner of the Recorder's save path: strict xfail until the two match."""

from __future__ import annotations

import glob
import os

import lakeline as ll
import pytest
from lakeline.errors import PathNotFound
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder


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
    instance: Instance, kind: type[Recorder], call: str, request: pytest.FixtureRequest
) -> None:
    path = _unopenable()
    if kind is Recorder:
        request.applymarker(
            pytest.mark.xfail(
                raises=PermissionError,
                strict=True,
                reason="review52's left item: the plain Recorder's save raises the open's raw "
                "PermissionError (planning.plan_file's translation belongs in its save path)",
            )
        )
    rec = kind("toy", root=os.getcwd())
    workflow = rec.start_workflow(key="p", engine_run_id=f"{kind.__name__}-{call}")
    step = rec.start_step(workflow, key="a", kind="rule", engine_task_id="1")
    with pytest.raises(PathNotFound, match=f"^{path} cannot be read: check its permissions$"):
        getattr(rec, call)(step, path)
    rec.finish_step(step)
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert ll.Artifact.filter().count() == 0
