"""A step the batching Recorder leaves out (its run deleted during the workflow run:
StepsNotRecorded, the rest of the batch written) is reported and recording goes on: what the
writer does after the Recorder's flush — temp() files Snakemake deleted marked unavailable —
is still done, also when the flush that says so is the run's last."""

from __future__ import annotations

import threading
from pathlib import Path

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
