"""A role that is no string is refused by `check_role`'s InvalidValue naming its type, batched
as plain, whatever its truth value: a numpy array's `bool()` raises (review56: the batched
calls tested the role's truth before its type)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder


@pytest.mark.parametrize("call", ["use", "use_saved"])
def test_a_role_of_no_string_is_named_whatever_its_truth(
    instance: Instance, tmp_path: Path, call: str
) -> None:
    np = pytest.importorskip("numpy")
    (tmp_path / "in.txt").write_text("x")
    rec = BatchRecorder("role", root=tmp_path, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    made = rec.produce(step, tmp_path / "in.txt")
    assert made is not None
    role = np.array(["a", "b"])  # bool() of it raises ValueError (ambiguous)
    with pytest.raises(InvalidValue, match="an input's role is a string, not ndarray"):
        if call == "use":
            rec.use(step, tmp_path / "in.txt", role=role)
        else:
            rec.use_saved(step, made, role=role)
    rec.finish_step(step)
    rec.finish_workflow(wf)  # the batch is written, nothing of the refused call in it
    assert rec.instance is not None
    assert not rec._files and not rec._links and not rec._runs
