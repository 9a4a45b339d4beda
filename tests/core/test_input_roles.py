"""The role of a used-by edge (`run_inputs.role`, 255 characters) follows the rule of every
text field: a NUL byte or a longer role is refused at the call, on both Recorders and both
databases, and a refused call leaves the batch and the catalog as they were."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from lakeline.models import RunInput
from sqlalchemy import select


@pytest.mark.parametrize("batched", [False, True], ids=["plain", "batched"])
@pytest.mark.parametrize("role", ["in\x00put", "r" * 256], ids=["nul", "long"])
def test_a_role_the_catalog_cannot_hold_is_refused_at_the_call(
    instance: Instance, tmp_path: Path, batched: bool, role: str
) -> None:
    """Before: SQLite's plain Recorder kept `in\\x00put` whole and the BatchRecorder's flush
    (SQLite json_each) cut it to `in`; SQLite kept a 256-character role; PostgreSQL refused
    both in the database, the BatchRecorder at its flush (every later flush failed too)."""
    root = tmp_path / "wf"
    root.mkdir()
    for name in ("in.txt", "other.txt"):
        (root / name).write_text(name)
    rec = BatchRecorder("toy", root=root) if batched else Recorder("toy", root=root)
    wf = rec.start_workflow(key="roles", engine_run_id="r1")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    with pytest.raises(InvalidValue, match="role"):
        rec.use(step, "in.txt", role=role)
    rec.use(step, "other.txt", role="ok")
    rec.finish_step(step, "completed")
    again = rec.start_step(wf, key="t", kind="rule", engine_task_id="2")
    if isinstance(rec, BatchRecorder):
        rec.flush()
    saved = ll.Artifact.get(key="other.txt")
    with pytest.raises(InvalidValue, match="role"):
        if isinstance(rec, BatchRecorder):
            rec.use_saved(again, saved, role=role)
        else:
            rec.link(again, [(saved, role)])
    rec.finish_step(again, "completed")
    rec.finish_workflow(wf, "completed")
    if isinstance(rec, BatchRecorder):
        rec.flush()
    with instance.sessions.read() as session:
        assert session.scalars(select(RunInput.role)).all() == ["ok"]
    assert ll.Run.get(wf.uid).status == "completed"
