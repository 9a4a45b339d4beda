"""A step the batching Recorder leaves out (its run deleted during the workflow run:
StepsNotRecorded, the rest of the batch written) is reported and recording goes on: what the
writer does after the Recorder's flush — temp() files Snakemake deleted marked unavailable —
is still done, also when the flush that says so is the run's last."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lakeline.instance import Instance
from smk_testkit import write_workflow
from sqlalchemy import text
from test_batching import _record


def test_a_step_left_out_at_the_last_flush_leaves_the_temp_removals_recorded(
    instance: Instance, tmp_path: Path
) -> None:
    import lakeline as ll
    from snakemake_interface_logger_plugins.tests import MockOutputSettings
    from snakemake_logger_plugin_lakeline import LogHandler, LogHandlerSettings

    files = {"data/raw.txt": "alpha", "tmp/a.txt": "made", "out/b.txt": "b"}
    root = write_workflow(tmp_path / "wf", "", files)
    settings = LogHandlerSettings(instance="test")
    handler = LogHandler(common_settings=MockOutputSettings(), settings=settings)
    try:
        tracker = handler.tracker
        assert tracker is not None
        started = {"workdir": str(root)}
        handler.emit(
            _record(event="workflow_started", workflow_id="w-1", lakeline_workflow=started)
        )
        temp = {"temp": ["tmp/a.txt"]}
        made = {"input": ["data/raw.txt"], "output": ["tmp/a.txt"], "lakeline_job": temp}
        handler.emit(_record(event="job_info", jobid=1, rule_name="make", **made))
        handler.emit(_record(event="job_info", jobid=2, rule_name="other", output=["out/b.txt"]))
        with handler._lock:
            handler._take()
            tracker.flush()  # both steps' runs written
        other = tracker.jobs[2].step
        assert other is not None and other.run.id is not None
        with instance.engine.begin() as conn:  # an admin deletes job 2's run meanwhile
            conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": other.run.id})
        handler.emit(_record(event="job_finished", job_id=1))
        waited = threading.Event()
        handler.emit(_record(msg="Removing temporary output tmp/a.txt.", lakeline_done=waited))
        assert waited.is_set()
        (root / "tmp" / "a.txt").unlink()  # what Snakemake does once the barrier lets it go
        handler.emit(_record(event="job_finished", job_id=2))  # left out at the close's flush
    finally:
        handler.close()
    assert tracker.failure is None  # recording went on
    made_run = ll.Artifact.get(key="tmp/a.txt").run
    assert made_run is not None and made_run.status == "completed"
    assert ll.Artifact.get(key="tmp/a.txt").available is False  # marked gone
    assert ll.Run.get(engine="snakemake", engine_ref="w-1").status == "completed"
    assert ll.Run.get(engine="snakemake", engine_ref="w-1").params["@lakeline"]["lineage"] == (
        "incomplete"
    )


def test_the_closing_summary_names_a_job_left_out_and_does_not_count_it(
    instance: Instance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Job 2's run is deleted while it runs: its finish is left out. The summary says the
    lineage is incomplete and why, the closing line counts job 1 only (before: no summary,
    'recorded 2 jobs'); `lakeline snakemake import` then records job 2 from the journal."""
    import lakeline as ll
    from snakemake_interface_logger_plugins.tests import MockOutputSettings
    from snakemake_logger_plugin_lakeline import LogHandler, LogHandlerSettings
    from snakemake_logger_plugin_lakeline.importer import import_workflow

    root = write_workflow(tmp_path / "wf", "", {"out/a.txt": "a", "out/b.txt": "b"})
    settings = LogHandlerSettings(instance="test")
    handler = LogHandler(common_settings=MockOutputSettings(), settings=settings)
    tracker = handler.tracker
    assert tracker is not None
    try:
        started = {"workdir": str(root)}
        handler.emit(
            _record(event="workflow_started", workflow_id="w-2", lakeline_workflow=started)
        )
        handler.emit(_record(event="job_info", jobid=1, rule_name="one", output=["out/a.txt"]))
        handler.emit(_record(event="job_info", jobid=2, rule_name="two", output=["out/b.txt"]))
        with handler._lock:
            handler._take()
            tracker.flush()  # both steps' runs written
        two = tracker.jobs[2].step
        assert two is not None and two.run.id is not None
        with instance.engine.begin() as conn:  # an admin deletes job 2's run meanwhile
            conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": two.run.id})
        handler.emit(_record(event="job_finished", job_id=1))
        handler.emit(_record(event="job_finished", job_id=2))
    finally:
        handler.close()
    assert tracker.failure is None
    err = capsys.readouterr().err
    assert "lakeline: lineage incomplete: 1 of 2 jobs" in err
    assert "rule two (job 2): not recorded, left out of a batch: its run (id" in err
    assert "recorded 2 jobs" not in err
    done = tracker.done_line()
    assert done is not None and done.startswith("lakeline: recorded 1 jobs of workflow run")
    assert ll.Run.get(engine="snakemake", engine_ref="w-2/1").status == "completed"
    assert ll.Run.filter(engine="snakemake", engine_ref="w-2/2").count() == 0
    # the workflow run keeps Snakemake's status and says its lineage is incomplete (before:
    # `completed` and nothing else: the catalog claimed the whole run)
    run = ll.Run.get(engine="snakemake", engine_ref="w-2")
    assert run.status == "completed"
    note = run.params["@lakeline"]
    assert note["lineage"] == "incomplete" and (note["jobs"], note["jobs_not_recorded"]) == (2, 1)
    assert list(note["not_recorded"]) == ["rule two (job 2)"]
    assert note["not_recorded"]["rule two (job 2)"].startswith(
        "not recorded, left out of a batch: its run (id"
    )

    result = import_workflow(root, instance=instance, report=lambda _: None)  # fills it in
    assert result.left_out == 0
    note = ll.Run.get(engine="snakemake", engine_ref="w-2").params["@lakeline"]
    assert (note["lineage"], note["jobs_not_recorded"], note["not_recorded"]) == ("complete", 0, {})
    assert ll.Run.get(engine="snakemake", engine_ref="w-2/2").status == "completed"
    assert ll.Run.filter(engine="snakemake", engine_ref="w-2/1").count() == 1
    assert ll.Artifact.get(key="out/b.txt").run.engine_ref == "w-2/2"


def test_an_import_that_left_jobs_out_exits_non_zero_and_a_later_import_records_them(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import's workflow run is deleted while its first batch is hashed: its jobs are
    left out; the import says so and exits 1 (before: exit 0, the summary silent). Importing
    again records them, once."""
    import lakeline as ll
    from click.testing import CliRunner
    from lakeline import checkpoints, plugins
    from lakeline.cli import build_cli
    from smk_testkit import SNAKEFILE, run_snakemake

    root = write_workflow(tmp_path / "wf", SNAKEFILE, {"data/raw.txt": "alpha beta gamma"})
    run_snakemake(root, plugin=False)
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "snakemake")
    plugins.reset()
    deleted: list[int] = []

    def delete_the_workflow_run() -> None:
        if deleted:
            return
        with instance.engine.begin() as conn:
            found = conn.execute(
                text("SELECT id FROM runs WHERE engine = 'snakemake' AND parent_id IS NULL")
            ).scalar()
            if found is not None:
                conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": found})
                deleted.append(found)

    runner = CliRunner()
    with checkpoints.at("source.read", delete_the_workflow_run):
        first = runner.invoke(build_cli(), ["snakemake", "import", str(root)])
    assert deleted
    assert first.exit_code == 1, first.output
    assert "4 job(s) not recorded: the database refused their steps" in first.output
    assert "not recorded, left out of a batch: its parent run id" in first.output
    assert ll.Run.filter(engine="snakemake", parent_id__isnull=False).count() == 0
    again = runner.invoke(build_cli(), ["snakemake", "import", str(root)])
    assert again.exit_code == 0, again.output
    assert ll.Run.filter(engine="snakemake", parent_id__isnull=False).count() == 4
    assert ll.Run.filter(engine="snakemake", parent_id__isnull=True).count() == 1
    third = runner.invoke(build_cli(), ["snakemake", "import", str(root)])
    assert third.exit_code == 0 and "0 new runs, 0 new artifacts" in third.output


def test_a_job_problem_that_names_steps_left_out_marks_those_jobs(
    instance: Instance, tmp_path: Path
) -> None:
    """A call for job 1 (a file the writer records on its own) raises StepsNotRecorded naming
    jobs 1 and 2, which its flush left out: both are listed as not recorded, not job 1 alone
    (before: job 2, named only by that error, was counted as recorded)."""
    from lakeline.errors import StepsNotRecorded
    from snakemake_logger_plugin_lakeline.events import JobInfo, WorkflowStarted
    from snakemake_logger_plugin_lakeline.tracker import Tracker

    root = write_workflow(tmp_path / "wf", "", {"out/a.txt": "a", "out/b.txt": "b"})
    tracker = Tracker(instance_name="test", report=lambda _: None, journaling=False)
    tracker.apply(WorkflowStarted(workflow_id="w-3", at=1.0, workdir=str(root)))
    for jobid, out in ((1, "out/a.txt"), (2, "out/b.txt")):
        tracker.apply(JobInfo(jobid=jobid, rule="r", at=1.0, inputs=[], outputs=[out]))
    one, two = tracker.jobs[1], tracker.jobs[2]
    assert one.step is not None and two.step is not None
    refs = {one.step.engine_ref: "its parent run ...", two.step.engine_ref: "its parent run ..."}
    tracker._problem(one, "out/a.txt", StepsNotRecorded("2 step(s) not recorded", refs))
    assert one.left_out is not None and two.left_out is not None
    assert "rule r (job 2): not recorded, left out of a batch" in "\n".join(tracker.summary())
