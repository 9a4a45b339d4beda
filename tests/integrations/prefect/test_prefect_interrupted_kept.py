"""Two flow runs in one process, the first interrupted by a real Ctrl-C (SIGINT to the
process) while its end is recorded (`flow_finished`), the second not. The first run ends,
never `started`, even when the Ctrl-C lands after the hook decided to finish it but before
the finish was queued (`gap`); and the Recorder kept for it (so that what it holds is written
at exit) is let go once what it holds is written, not kept for the process's life (a process
serving many flow runs grew by one Recorder an interrupted run)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from pf_interrupt import run_script
from test_prefect_flows import ENGINE

SCRIPT = """
from lakeline.lineage.batching import BatchRecorder

hooks.BATCH_MS, hooks.BATCH_STEPS = 600_000.0, 500  # nothing written before the flow's end
flusher.IDLE = 600.0

@flow
def three(tag: str) -> None:
    for name in "abc":
        write(tag + name)

where, once = sys.argv[1], []
if where == "ends":  # the second queued end, recorded by flow_finished
    finish = hooks._ENDED._finish
    def interrupted(entry):
        once.append(entry.name)
        if len(once) == 2:
            ctrl_c()
        finish(entry)
    hooks._ENDED._finish = interrupted
elif where == "finish":  # the flush that writes the workflow's finish (queued with the batch)
    finish_workflow, flush = BatchRecorder.finish_workflow, BatchRecorder._flush
    def finish(self, *args, **kwargs):
        once.append("finishing")
        return finish_workflow(self, *args, **kwargs)
    def interrupted(self):
        if once == ["finishing"]:
            once.append("interrupted")
            ctrl_c()
        flush(self)
    BatchRecorder.finish_workflow, BatchRecorder._flush = finish, interrupted
else:  # "gap": the hook set to finish the run, the finish not queued yet
    finish_workflow = BatchRecorder.finish_workflow
    def finish(self, *args, **kwargs):
        if not once:
            once.append("interrupted")
            ctrl_c()
        return finish_workflow(self, *args, **kwargs)
    BatchRecorder.finish_workflow = finish
three("1")
print("kept after the interrupted run:", len(hooks._kept))
three("2")
print("kept after the second run:", len(hooks._kept))
"""


@pytest.mark.parametrize("where", ["ends", "finish", "gap"])
def test_an_interrupted_flow_runs_end_is_recorded_and_its_recorder_let_go(
    workdir: Path, instance: Instance, prefect_server: Path, where: str
) -> None:
    """`ends`: interrupted as its task runs' ends are recorded: `aborted`; the ends left
    queued are recorded by the second run's pass, and its Recorder let go after that.
    `finish`: interrupted as the batch holding its finish is written: written as queued,
    `completed`. `gap`: interrupted before its finish was queued: `aborted` (before: left
    `started`, the hook believing the finish queued)."""
    said = run_script(workdir, instance, SCRIPT, where).said
    first, second = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).order_by("id")
    expected = "completed" if where == "finish" else "aborted"
    assert first.status == expected, (first.status, first.error, said[-3000:])
    assert [e["status"] for e in first.status_log] == ["started", expected]
    if expected == "aborted":
        assert "KeyboardInterrupt" in (first.error or ""), first.error
    assert second.status == "completed"
    for workflow, tag in ((first, "1"), (second, "2")):
        runs = list(workflow.children.all())
        assert len(runs) == 3 and {r.status for r in runs} == {"completed"}, said[-3000:]
        for run in runs:
            assert [e["status"] for e in run.status_log] == ["started", "completed"]
        made = {a.key: a.run_id for a in ll.Artifact.filter(key__startswith=f"out/{tag}")}
        assert sorted(made) == [f"out/{tag}a", f"out/{tag}b", f"out/{tag}c"], made
        assert sorted(made.values()) == sorted(r.id for r in runs)  # each its own, once
    assert "kept after the second run: 0" in said, said[-3000:]
    if where != "ends":  # (ends: kept until the next pass records the ends left queued)
        assert "kept after the interrupted run: 0" in said, said[-3000:]
