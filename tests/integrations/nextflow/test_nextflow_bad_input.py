"""Bad and partial input: clear warnings, no crash, nothing half-imported; the RO-Crate path."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import LakelineError
from lakeline.instance import Instance
from lakeline.testing import lineage_snapshot
from lakeline_nextflow import import_run
from nf_helpers import crate_document, keys, log_line, task_dir, work, workflows, write

SESSION = "0f6a3a1e-1111-2222-3333-444455556666"
A, B = "ab" + "c" * 30, "ef" + "0" * 30


def test_truncated_log_without_a_year(instance: Instance, tmp_path: Path) -> None:
    """Cut off mid-line, no history, no trace: the year comes from the file's time."""
    launch = tmp_path / "run"
    log = write(
        launch / ".nextflow.log",
        log_line("Dec-31 23:59:58.000", f"Session UUID: {SESSION}")
        + log_line("Dec-31 23:59:59.000", f"[{A[:2]}/{A[2:8]}] Submitted process > A (1)", "INFO")
        + log_line("Jan-01 00:00:01.000", f"[{B[:2]}/{B[2:8]}] Submitted process > B (1)", "INFO")
        + log_line(
            "Jan-01 00:00:03.000",
            f"Task completed > TaskHandler[id: 1; name: A (1); status: COMPLETED; exit: 0; "
            f"error: -; workDir: /gone/work/{A[:2]}/{A[2:]}]",
        )
        + "Jan-01 00:00:04.000 [Task monitor] DEBUG n.processor.TaskPollingMonitor - Task comp",
    )
    stamp = datetime(2023, 1, 2, 12, 0).timestamp()
    os.utime(log, (stamp, stamp))
    report = import_run(launch, timezone="UTC")
    assert any("cut off" in w for w in report.warnings)
    assert any("ends before the run finished" in w for w in report.warnings)
    assert any("assumed 2022 from the file's modification time" in w for w in report.warnings)
    assert any("no work dir found" in note for note in report.unknown)
    (workflow,) = workflows()
    assert workflow.status == "started" and workflow.finished_at is None  # not finished
    assert workflow.started_at == datetime(2022, 12, 31, 23, 59, 58, tzinfo=UTC)
    a = ll.Run.get(engine="nextflow", engine_ref=A)
    assert a.status == "completed"
    assert a.finished_at == datetime(2023, 1, 1, 0, 0, 3, tzinfo=UTC)  # across New Year
    b = ll.Run.get(engine="nextflow", engine_ref=f"{SESSION}/{B[:2]}/{B[2:8]}")
    assert b.status == "scheduled" and b.finished_at is None  # submitted, never finished


def test_unreadable_sources_leave_nothing_behind(instance: Instance, tmp_path: Path) -> None:
    launch = tmp_path / "run"
    write(launch / ".nextflow.log", b"\x00\x01\x02 not a log\n")
    write(launch / "trace.txt", "what\never\n1\t2\n")
    with pytest.raises(LakelineError, match="no Nextflow run to import") as failure:
        import_run(launch)
    assert "cannot read this log" in str(failure.value)
    assert "cannot read this trace" in str(failure.value)
    assert ll.Run.filter(engine="nextflow").count() == 0
    assert ll.Transform.filter().count() == 0
    with pytest.raises(LakelineError, match="does not exist"):
        import_run(tmp_path / "nowhere")


def test_a_bad_source_is_left_out_whole(instance: Instance, tmp_path: Path) -> None:
    """A good log and a corrupt trace: the log's tasks are recorded, the trace not at all."""
    launch = tmp_path / "run"
    write(
        launch / ".nextflow.log",
        log_line("Mar-01 10:00:00.000", f"Session UUID: {SESSION}")
        + log_line("Mar-01 10:00:01.000", f"[{A[:2]}/{A[2:8]}] Submitted process > A (1)", "INFO")
        + log_line(
            "Mar-01 10:00:02.000",
            f"Task completed > TaskHandler[id: 1; name: A (1); status: COMPLETED; exit: 0; "
            f"error: -; workDir: {launch}/work/{A[:2]}/{A[2:]}]",
        )
        + log_line("Mar-01 10:00:03.000", "> Execution complete -- Goodbye"),
    )
    write(
        launch / ".nextflow" / "history", f"2024-03-01 10:00:00\t3s\tx_y\tOK\tabc\t{SESSION}\tnf\n"
    )
    write(launch / "pipeline_info" / "execution_trace_x.txt", "\x00garbage\n")
    task_dir(launch / "work", A, "A (1)", outputs={"out.txt": "1"}, declared=["out.txt", "*.log"])
    report = import_run(launch, timezone="UTC")
    assert any("execution_trace_x.txt: cannot read this trace" in w for w in report.warnings)
    assert any("declared outputs *.log match nothing" in note for note in report.unknown)
    assert "trace" not in report.sources
    (run,) = workflows()[0].children
    assert run.status == "completed" and keys(run.outputs) == {
        f"{work(A)}/out.txt",
        f"{work(A)}/.command.log",
    }


def test_work_dir_gone_after_the_run(instance: Instance, tmp_path: Path) -> None:
    """Work dirs cleaned (`nextflow clean`): tasks still recorded, files unknown, said so."""
    launch = tmp_path / "run"
    write(
        launch / ".nextflow.log",
        log_line("Mar-01 10:00:00.000", f"Session UUID: {SESSION}")
        + log_line("Mar-01 10:00:00.100", f"Work-dir: {launch}/work [ext4]")
        + log_line(
            "Mar-01 10:00:02.000",
            f"Task completed > TaskHandler[id: 1; name: A (1); status: COMPLETED; exit: 0; "
            f"error: -; workDir: {launch}/work/{A[:2]}/{A[2:]}]",
        )
        + log_line("Mar-01 10:00:03.000", "> Execution complete -- Goodbye"),
    )
    (launch / "work").mkdir()
    report = import_run(launch, timezone="UTC")
    assert any("1 of 1 tasks have no work dir" in w for w in report.warnings)
    run = ll.Run.get(engine="nextflow", engine_ref=A)
    assert run.status == "completed" and run.outputs.count() == 0


def test_staged_inputs_gone_since_the_run(instance: Instance, tmp_path: Path) -> None:
    """`ln -s` targets deleted after the run: the input edges stay, as references by location
    (hash unknown); a task's output consumed and deleted since keeps its producer edge."""
    launch = tmp_path / "run"
    write(
        launch / ".nextflow.log",
        log_line("Mar-01 10:00:00.000", f"Session UUID: {SESSION}")
        + "".join(
            log_line(
                "Mar-01 10:00:02.000",
                f"Task completed > TaskHandler[id: {i}; name: {n}; status: COMPLETED; exit: 0; "
                f"error: -; workDir: {launch}/work/{h[:2]}/{h[2:]}]",
            )
            for i, n, h in ((1, "A (1)", A), (2, "B (1)", B))
        )
        + log_line("Mar-01 10:00:03.000", "> Execution complete -- Goodbye"),
    )
    data = write(tmp_path / "data" / "samples.csv", "id\n1\n")
    made = launch / work(A) / "part.txt"
    task_dir(launch / "work", A, "A (1)", staged=[(str(data), "samples.csv")], declared=["*.txt"])
    write(made, "part")
    task_dir(launch / "work", B, "B (1)", staged=[(str(made), "part.txt")], declared=["*.txt"])
    data.unlink()  # the staged symlinks dangle now
    made.unlink()
    report = import_run(launch, timezone="UTC")
    assert report.missing == [] and set(report.referenced) == {str(data), str(made)}
    a, b = (ll.Run.get(engine="nextflow", engine_ref=h) for h in (A, B))
    (samples,) = a.inputs.all()
    assert (samples.location, samples.available, samples.hash) == (str(data), False, None)
    (part,) = b.inputs.all()
    assert (part.key, part.available, part.hash) == (f"{work(A)}/part.txt", False, None)
    assert part.run is not None and part.run.id == a.id  # the producer edge is kept
    assert report.producer_edges == [(B, A, "part.txt")]
    before = lineage_snapshot("nextflow")
    import_run(launch, timezone="UTC")
    assert lineage_snapshot("nextflow") == before
    write(data, "id\n1\n")  # the bytes are back where the run read them: filled in
    import_run(launch, timezone="UTC")
    (restored,) = ll.Run.get(engine="nextflow", engine_ref=A).inputs.all()
    assert restored.id == samples.id and restored.available and restored.hash is not None


def test_rocrate_with_files_and_work_dirs(instance: Instance, tmp_path: Path) -> None:
    """nf-prov's crate in the outdir; its tasks' work dirs agree with it; a published copy."""
    split, count = "a1" * 16, "b2" * 16
    session = "7f344978-999c-480d-8439-741bc7520f6a"
    launch = tmp_path / "run"
    results = launch / "results"
    samples = write(results / "samples.csv", "id\n1\n")
    write(results / "counts.txt", "2")
    write(results / "ro-crate-metadata.json", json.dumps(crate_document(split, count, session)))
    work_root = launch / "work"
    task_dir(
        work_root,
        split,
        "SPLIT (1)",
        staged=[(str(samples), "samples.csv")],
        outputs={"parts/p1.txt": "a", "parts/p2.txt": "b"},
        declared=["parts"],
    )
    task_dir(
        work_root,
        count,
        "COUNT (1)",
        staged=[(str(work_root / split[:2] / split[2:] / "parts"), "parts")],
        outputs={"counts.txt": "2"},
        declared=["counts.txt"],
    )
    report = import_run(launch)
    assert any("made by collectFile" in note for note in report.unknown)  # `#tmp/all.txt`
    (workflow,) = workflows()
    assert workflow.engine_ref == session and workflow.status == "completed"
    assert workflow.transform.key == "demo/pipeline"
    assert workflow.started_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    runs = {r.engine_ref: r for r in workflow.children}
    assert runs[split].transform.key == "DEMO:SPLIT"  # fully qualified, from the crate
    assert keys(runs[split].inputs) == {"results/samples.csv"}
    assert keys(runs[count].inputs) == {f"{work(split)}/parts"}
    assert keys(runs[count].outputs) == {f"{work(count)}/counts.txt", f"{work(count)}/.command.log"}
    publish = runs[f"{count}/publish"]
    assert keys(publish.inputs) == {f"{work(count)}/counts.txt"}
    assert keys(publish.outputs) == {"results/counts.txt"}
    broken = write(tmp_path / "broken.json", "{")
    report = import_run(launch, rocrate=broken)
    assert any("cannot read this rocrate" in w for w in report.warnings)


def test_work_dirs_alone(instance: Instance, tmp_path: Path) -> None:
    """No log, trace, store or crate: every work dir becomes a task of one stand-in run."""
    launch = tmp_path / "run"
    made = launch / work(A) / "made.txt"
    task_dir(launch / "work", A, "MAKE (1)", outputs={"made.txt": "1"}, declared=["made.txt"])
    task_dir(
        launch / "work",
        B,
        "USE (1)",
        staged=[(str(made), "made.txt")],
        outputs={"used.txt": "2"},
        declared=["used.txt"],
        exit_code=3,
    )
    report = import_run(launch)
    assert any("no log or trace lists the tasks" in note for note in report.unknown)
    assert report.by_status == {"completed": 1, "errored": 1}  # from the .exitcode files
    assert report.producer_edges == [(B, A, "made.txt")]
    (workflow,) = workflows()
    assert workflow.engine_ref.startswith("nextflow-workdirs-")
    use = ll.Run.get(engine="nextflow", engine_ref=B)
    assert (use.transform.key, use.exit_code) == ("USE", 3)
    assert keys(use.inputs) == {f"{work(A)}/made.txt"}
