"""A finish sets the run's outcome: its status, time, exit code and error are the finish's. A
run finished again (a retried step that now succeeded) keeps no error or exit code of an
earlier finish — before, a finish without them kept the old ones (`coalesce`): a completed
step still showed the failure it recovered from."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder


@pytest.mark.parametrize("mode", ["plain", "batched", "same batch"])
def test_a_step_finished_again_has_the_outcome_of_its_last_finish(
    instance: Instance, tmp_path: Path, mode: str
) -> None:
    rec = Recorder("toy") if mode == "plain" else BatchRecorder("toy", root=tmp_path, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    steps = [rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i)) for i in range(2)]
    for step in steps:
        rec.finish_step(step, "errored", exit_code=3, error="boom: the first attempt")
    if isinstance(rec, BatchRecorder) and mode == "batched":
        rec.flush()  # the next finish updates runs of an earlier flush
    rec.finish_step(steps[0], "completed")  # retried, and succeeded
    rec.finish_step(steps[1], "aborted", exit_code=130, error="stopped")
    rec.finish_workflow(wf)
    runs = {r.engine_ref: r for r in ll.Run.filter(engine="toy")}
    assert (runs["r/0"].status, runs["r/0"].exit_code, runs["r/0"].error) == (
        "completed",
        None,
        None,
    )
    assert (runs["r/1"].status, runs["r/1"].exit_code, runs["r/1"].error) == (
        "aborted",
        130,
        "stopped",
    )
    assert [e["status"] for e in runs["r/0"].status_log] == ["started", "errored", "completed"]
    assert steps[0].run.error is None and steps[0].run.exit_code is None
    assert [r.engine_ref for r in ll.Run.search("boom")] == []  # the search index too
