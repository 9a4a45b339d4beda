"""A hand-built session of two launches (`-resume`): logs rotate, cached tasks link back.

Launch 1 (agitated_turing): SPLIT completes, COUNT fails. Launch 2 (boring_lovelace, same
session, `-resume`): SPLIT is cached, COUNT runs again (new hash) and MERGE uses both.
Work dirs use Nextflow >= 24.04 wrappers (declared outputs); MERGE stages one input with a
relative link (`stageInMode 'rellink'`); launch 2 also has a trace file with an extra column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.testing import lineage_snapshot
from lakeline_nextflow import import_run
from nf_helpers import keys, log_line, task_dir, work, workflows, write

SESSION = "3e61a812-b293-45f8-8c2c-90a4967b3acb"
SPLIT = "aa" + "1" * 30
COUNT_FAILED = "bb" + "2" * 30
COUNT = "cc" + "3" * 30
MERGE = "dd" + "4" * 30


def short(h: str) -> str:
    return f"{h[:2]}/{h[2:8]}"


def completed(when: str, task_id: int, name: str, h: str, launch: Path, exit_code: int) -> str:
    return log_line(
        when,
        f"Task completed > TaskHandler[id: {task_id}; name: {name}; status: COMPLETED; "
        f"exit: {exit_code}; error: -; workDir: {launch}/work/{h[:2]}/{h[2:]}]",
        thread="Task monitor",
    )


def header(when: str, run_name: str, command: str) -> str:
    return (
        log_line(when, f"$> {command}")
        + log_line(when, "N E X T F L O W  ~  version 25.10.4", "INFO")
        + log_line(when, f"Launching `main.nf` [{run_name}] DSL2 - revision: 0a1b2c3d4e", "INFO")
        + log_line(when, f"Session UUID: {SESSION}")
        + log_line(when, f"Run name: {run_name}")
    )


def first_launch(launch: Path) -> None:
    work_root = launch / "work"
    data = write(launch / "data" / "in.txt", "alpha beta")
    task_dir(
        work_root,
        SPLIT,
        "SPLIT (1)",
        staged=[(str(data), "in.txt")],
        outputs={"a.txt": "alpha"},
        declared=["a.txt"],
    )
    task_dir(
        work_root,
        COUNT_FAILED,
        "COUNT (1)",
        staged=[(str(launch / work(SPLIT) / "a.txt"), "a.txt")],
        outputs={"partial.txt": "half"},
        declared=["count.txt"],
        exit_code=1,
    )
    text = (
        header("Mar-01 10:00:00.000", "agitated_turing", "nextflow run main.nf")
        + log_line("Mar-01 10:00:00.100", f"Work-dir: {launch}/work [ext4]")
        + log_line("Mar-01 10:00:01.000", f"[{short(SPLIT)}] Submitted process > SPLIT (1)", "INFO")
        + completed("Mar-01 10:00:02.000", 1, "SPLIT (1)", SPLIT, launch, 0)
        + log_line(
            "Mar-01 10:00:02.500", f"[{short(COUNT_FAILED)}] Submitted process > COUNT (1)", "INFO"
        )
        + completed("Mar-01 10:00:03.000", 2, "COUNT (1)", COUNT_FAILED, launch, 1)
        + log_line("Mar-01 10:00:03.100", "Error executing process > 'COUNT (1)'", "ERROR")
        + "\nCaused by:\n  Process `COUNT (1)` terminated with an error exit status (1)\n\n"
        + "Command error:\n  wc: a.txt: Permission denied\n"
        + log_line("Mar-01 10:00:03.200", "Session aborted -- Cause: Process `COUNT (1)` failed")
        + log_line("Mar-01 10:00:04.000", "> Execution complete -- Goodbye")
    )
    write(launch / ".nextflow.log", text)
    write(
        launch / ".nextflow" / "history",
        f"2024-03-01 10:00:00\t4s\tagitated_turing\tERR\t0a1b2c3d4e5f\t{SESSION}\t"
        "nextflow run main.nf\n",
    )


def second_launch(launch: Path) -> None:
    (launch / ".nextflow.log").rename(launch / ".nextflow.log.1")
    work_root = launch / "work"
    a_txt = str(launch / work(SPLIT) / "a.txt")
    task_dir(
        work_root,
        COUNT,
        "COUNT (1)",
        staged=[(a_txt, "a.txt")],
        outputs={"count.txt": "1"},
        declared=["count.txt"],
    )
    relative = f"../../{COUNT[:2]}/{COUNT[2:]}/count.txt"  # stageInMode 'rellink'
    task_dir(
        work_root,
        MERGE,
        "MERGE",
        staged=[(a_txt, "a.txt"), (relative, "count.txt")],
        outputs={"merged.txt": "alpha 1"},
        declared=["merged.txt"],
    )
    text = (
        header("Mar-02 09:00:00.000", "boring_lovelace", "nextflow run main.nf -resume")
        + log_line("Mar-02 09:00:00.100", f"Work-dir: {launch}/work [ext4]")
        + log_line("Mar-02 09:00:01.000", f"[{short(SPLIT)}] Cached process > SPLIT (1)", "INFO")
        + log_line("Mar-02 09:00:01.500", f"[{short(COUNT)}] Submitted process > COUNT (1)", "INFO")
        + completed("Mar-02 09:00:02.000", 2, "COUNT (1)", COUNT, launch, 0)
        + log_line("Mar-02 09:00:02.500", f"[{short(MERGE)}] Submitted process > MERGE", "INFO")
        + completed("Mar-02 09:00:03.000", 3, "MERGE", MERGE, launch, 0)
        + log_line(
            "Mar-02 09:00:03.500",
            "Workflow completed > WorkflowStats[succeededCount=2; failedCount=0; cachedCount=1; ]",
        )
        + log_line("Mar-02 09:00:04.000", "> Execution complete -- Goodbye")
    )
    write(launch / ".nextflow.log", text)
    with (launch / ".nextflow" / "history").open("a") as history:
        history.write(
            f"2024-03-02 09:00:00\t4s\tboring_lovelace\tOK\t0a1b2c3d4e5f\t{SESSION}\t"
            "nextflow run main.nf -resume\n"
        )
    write(
        launch / "trace.txt",
        "task_id\thash\tname\tstatus\texit\tsubmit\tduration\tpeak_rss\tgpu_hours\n"
        f"1\t{short(SPLIT)}\tSPLIT (1)\tCACHED\t0\t2024-03-01 10:00:01.000\t1s\t10 MB\t-\n"
        f"2\t{short(COUNT)}\tCOUNT (1)\tCOMPLETED\t0\t2024-03-02 09:00:01.500\t0.5s\t12 MB\t0.1\n"
        f"3\t{short(MERGE)}\tMERGE\tCOMPLETED\t0\t2024-03-02 09:00:02.500\t0.5s\t14 MB\t0.1\n",
    )


def test_resume_merges_launches_into_one_session(instance: Instance, tmp_path: Path) -> None:
    launch = tmp_path / "project"
    first_launch(launch)
    report = import_run(launch, timezone="UTC")
    assert report.by_status == {"completed": 1, "errored": 1} and report.warnings == []
    (workflow,) = workflows()
    assert (workflow.engine_ref, workflow.status) == (SESSION, "errored")
    failed = ll.Run.get(engine="nextflow", engine_ref=COUNT_FAILED)
    assert failed.status == "errored" and failed.exit_code == 1
    assert "Permission denied" in (failed.error or "")
    assert keys(failed.outputs) == {f"{work(COUNT_FAILED)}/.command.log"}  # no partial outputs
    assert keys(failed.inputs) == {f"{work(SPLIT)}/a.txt"}

    second_launch(launch)
    report = import_run(launch, timezone="UTC")
    assert report.sources["log"] == [str(launch / ".nextflow.log.1"), str(launch / ".nextflow.log")]
    assert any("unknown trace columns gpu_hours" in w for w in report.warnings)
    assert (report.tasks, report.cached) == (4, 1)
    assert report.producer_edges == [
        (COUNT_FAILED, SPLIT, "a.txt"),
        (COUNT, SPLIT, "a.txt"),
        (MERGE, SPLIT, "a.txt"),
        (MERGE, COUNT, "count.txt"),
    ]
    (workflow,) = workflows()  # one session: both launches merged
    assert workflow.status == "completed"  # the last launch's outcome
    assert [s["status"] for s in workflow.status_log] == ["started", "errored", "completed"]
    assert workflow.started_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert workflow.finished_at == datetime(2024, 3, 2, 9, 0, 4, tzinfo=UTC)
    children = {r.engine_ref: r for r in workflow.children}
    assert {ref: r.status for ref, r in children.items()} == {
        SPLIT: "completed",
        COUNT_FAILED: "errored",
        COUNT: "completed",
        MERGE: "completed",
        f"{SPLIT}@boring_lovelace": "cached",
    }
    split = children[SPLIT]
    assert children[f"{SPLIT}@boring_lovelace"].cached_from_id == split.id
    assert keys(split.outputs) == {f"{work(SPLIT)}/a.txt", f"{work(SPLIT)}/.command.log"}
    merge = children[MERGE]
    assert keys(merge.inputs) == {f"{work(SPLIT)}/a.txt", f"{work(COUNT)}/count.txt"}
    assert keys(merge.outputs) == {f"{work(MERGE)}/merged.txt", f"{work(MERGE)}/.command.log"}
    assert children[COUNT].params["metrics"]["peak_rss"] == 12 * 2**20  # from the trace
    assert children[COUNT].params["metrics"]["gpu_hours"] == "0.1"  # unknown column, kept
    assert ll.Transform.filter(key="COUNT").count() == 1  # one process, three runs of it

    before = lineage_snapshot("nextflow")
    import_run(launch, timezone="UTC")
    assert lineage_snapshot("nextflow") == before


def test_cached_task_without_its_first_launch(instance: Instance, tmp_path: Path) -> None:
    """Only launch 2's log is left: the cached SPLIT is recorded from its work dir."""
    launch = tmp_path / "project"
    first_launch(launch)
    second_launch(launch)
    (launch / ".nextflow.log.1").unlink()
    report = import_run(launch, timezone="UTC")
    assert any("first seen as cached" in note for note in report.unknown)
    split = ll.Run.get(engine="nextflow", engine_ref=SPLIT)  # full hash found from its work dir
    assert split.status == "completed"
    assert keys(split.outputs) == {f"{work(SPLIT)}/a.txt", f"{work(SPLIT)}/.command.log"}
    cached = ll.Run.get(engine="nextflow", engine_ref=f"{SPLIT}@boring_lovelace")
    assert cached.cached_from_id == split.id
    assert not ll.Run.filter(engine="nextflow", engine_ref=COUNT_FAILED).count()
