"""A real Ctrl-C (SIGINT to the process) while the flow run's end is recorded (`flow_finished`,
Prefect's final-state hook), in a real Prefect flow run: the workflow run ends, never `started`;
its task runs that ended are recorded, each once, with its own output. Before: the hook was
left by the KeyboardInterrupt (which Prefect swallows, the run's state being final: the
program goes on), and the workflow run stayed `started` for good."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from pf_interrupt import run_script
from test_prefect_flows import ENGINE

SCRIPT = """
hooks.BATCH_MS, hooks.BATCH_STEPS = 600_000.0, 500  # nothing written before the flow's end
flusher.IDLE = 600.0

@flow
def three() -> Path:
    for name in "abc":
        write(name)
    made = Path("out") / "flow.txt"
    made.write_text("made by the flow body")
    return made

where = sys.argv[1]
if where == "ends":  # the second queued end, recorded by flow_finished
    finish, seen = hooks._ENDED._finish, []
    def interrupted(entry):
        seen.append(entry.name)
        if len(seen) == 2:
            ctrl_c()
        finish(entry)
    hooks._ENDED._finish = interrupted
else:  # the flush that writes the workflow's finish (queued with the batch)
    from lakeline.lineage.batching import BatchRecorder
    finish_workflow, flush, finishing = BatchRecorder.finish_workflow, BatchRecorder._flush, []
    def finish(self, *args, **kwargs):
        finishing.append(True)
        return finish_workflow(self, *args, **kwargs)
    def interrupted(self):
        if len(finishing) == 1:  # once
            finishing.append(True)
            ctrl_c()
        flush(self)
    BatchRecorder.finish_workflow, BatchRecorder._flush = finish, interrupted
three()
print("returned")
"""


@pytest.mark.parametrize("where", ["ends", "finish"])
def test_a_ctrl_c_while_the_flow_end_is_recorded_never_leaves_its_run_started(
    workdir: Path, instance: Instance, prefect_server: Path, where: str
) -> None:
    """`ends`: interrupted as its task runs' ends are recorded: the workflow run `aborted`,
    saying why, its task runs' ends recorded at exit, the flow body's output not claimed.
    `finish`: interrupted as the batch holding its finish is written: the finish is written as
    queued (`completed`, all it followed recorded), once."""
    said = run_script(workdir, instance, SCRIPT, where).said
    assert "returned" in said, said[-3000:]  # Prefect swallows it: the run's state was final
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    expected = "aborted" if where == "ends" else "completed"
    assert workflow.status == expected, (workflow.status, workflow.error, said[-3000:])
    assert [e["status"] for e in workflow.status_log] == ["started", expected]
    runs = list(workflow.children.all())
    assert len(runs) == 3 and {r.status for r in runs} == {"completed"}, said[-3000:]
    for run in runs:
        assert [e["status"] for e in run.status_log] == ["started", "completed"]
    made = {a.key: a.run_id for a in ll.Artifact.filter()}
    tasks = {k: v for k, v in made.items() if k != "out/flow.txt"}
    assert sorted(tasks) == ["out/a", "out/b", "out/c"], made
    assert sorted(tasks.values()) == sorted(r.id for r in runs)  # each its own output, once
    if where == "ends":
        assert workflow.error is not None and "KeyboardInterrupt" in workflow.error
        assert "(Prefect: Completed)" in workflow.error, workflow.error
        assert "out/flow.txt" not in made  # its output was not recorded before the interrupt
    else:
        assert workflow.error is None and made["out/flow.txt"] == workflow.id
