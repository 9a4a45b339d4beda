"""An exit code is an integer: a float (or a bool) is refused when a step finishes, not
queued. Queued, it failed every later flush of its batch on PostgreSQL once a flush's runs
went in as JSON ("2.0" is no integer's text), while SQLite stored it as given."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder

LONG = 600_000.0  # ms: never due by age in a test


class Code:
    """An integer that is not an int (numpy's int64 is one): taken as its int."""

    def __index__(self) -> int:
        return 3


@pytest.mark.parametrize("bad", [2.0, 2.5, True])
def test_a_step_finished_with_an_exit_code_not_an_integer_is_refused_at_the_call(
    instance: Instance, tmp_path: Path, bad: object
) -> None:
    rec = BatchRecorder("toy", root=tmp_path, steps=1000, ms=LONG, started_ms=LONG)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="bad")
    with pytest.raises(InvalidValue, match="an exit code is an integer"):
        rec.finish_step(step, "errored", exit_code=bad)  # type: ignore[arg-type]
    rec.finish_step(step, "errored", exit_code=Code())  # type: ignore[arg-type]
    rec.flush()  # the batch is written
    (run,) = ll.Run.filter(engine="toy", engine_ref="r/bad")
    assert run.status == "errored" and run.exit_code == 3 and type(run.exit_code) is int
