"""An int too long for `str()` (over `sys.get_int_max_str_digits()`, 4300 digits by default)
in a run's params cannot be stored as JSON: it is refused at the call, as `params_of` always
did (its repr raises ValueError), not queued to fail a BatchRecorder's whole flush later
(the runs queued with it lost). A long int under the limit is stored as before."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder
from lakeline.lineage.track import run_params

HUGE = 10**5000  # over the default limit of 4300 digits
LONG = 10**1000  # under it


@pytest.mark.parametrize("params", [{"n": HUGE}, {"a": [1, {"b": HUGE}]}, {"t": (HUGE,)}])
def test_run_params_does_not_call_a_huge_int_clean(params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="integer string conversion"):
        run_params(params)


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_a_huge_int_is_refused_at_the_call(instance: Instance, tmp_path: Path, batch: bool) -> None:
    rec = BatchRecorder("p", root=tmp_path, ms=600_000) if batch else Recorder("p")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    good = rec.start_step(wf, key="s", kind="rule", engine_task_id="0", params={"n": LONG})
    with pytest.raises(ValueError, match="integer string conversion"):
        rec.start_step(wf, key="s", kind="rule", engine_task_id="1", params={"n": HUGE})
    rec.finish_step(good)
    rec.finish_workflow(wf)  # the good step's batch is written
    assert sorted(r.engine_ref for r in ll.Run.filter(engine="p")) == ["r", "r/0"]
    assert ll.Run.get(engine="p", engine_ref="r/0").params == {"n": LONG}
