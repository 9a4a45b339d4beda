"""A real Ctrl-C (SIGINT to the process) while the hooks record the queued task runs' ends
(`ended`), in a real Prefect flow run: the ends not recorded yet, the one being recorded
included, are recorded by the exit, each once, with its own output. Before (Ended.record took
the queue, the interrupt lost what it took): the second and third task runs stayed `started`
and their outputs were not recorded."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from pf_interrupt import run_script
from test_prefect_flows import ENGINE

SCRIPT = """
hooks.BATCH_MS, hooks.BATCH_STEPS = 600_000.0, 3  # the third end writes the batch

@flow
def four() -> None:
    for name in "abcd":
        write(name)

finish, seen = hooks._ENDED._finish, []

def interrupted(entry):  # Ctrl-C while the second queued end is recorded
    seen.append(entry.name)
    if len(seen) == 2:
        ctrl_c()
    finish(entry)

hooks._ENDED._finish = interrupted
four()
"""


def test_a_ctrl_c_while_ends_are_recorded_loses_none_and_repeats_none(
    workdir: Path, instance: Instance, prefect_server: Path
) -> None:
    done = run_script(workdir, instance, SCRIPT)
    said = done.stderr
    assert done.returncode != 0 and "KeyboardInterrupt" in said, said[-2000:]
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    assert workflow.status == "aborted", said[-2000:]
    runs = list(workflow.children.all())  # `d` never ran
    assert len(runs) == 3 and {r.status for r in runs} == {"completed"}, said[-2000:]
    for run in runs:
        assert [e["status"] for e in run.status_log] == ["started", "completed"]
    made = {a.key: a.run_id for a in ll.Artifact.filter()}
    assert sorted(made) == ["out/a", "out/b", "out/c"], made
    assert sorted(made.values()) == sorted(r.id for r in runs)  # each its own output, once
