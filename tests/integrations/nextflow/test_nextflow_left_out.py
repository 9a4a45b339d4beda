"""`lakeline nextflow import` when the database refuses what a batch holds (the session's
workflow run deleted while its batch is hashed: StepsNotRecorded): the import goes on to its
end, the report counts only what was written and names what was left out, with why, and the
command exits 1; importing again records it, once. Before, the error stopped the import (no
report: later sessions, the params' completion and the report's counts never reached)."""

from __future__ import annotations

import json
from pathlib import Path

import lakeline as ll
from lakeline import checkpoints
from lakeline.instance import Instance
from lakeline_nextflow.importer import import_run
from nf_helpers import INDEX, MULTIQC, SESSION, rebuild_simple
from sqlalchemy import text
from test_nextflow_cli import invoke, nextflow_plugin  # noqa: F401 (a fixture)


def _deleting_the_workflow_run(instance: Instance) -> tuple[list[int], object]:
    deleted: list[int] = []

    def hook() -> None:
        if deleted:
            return
        with instance.engine.begin() as conn:
            found = conn.execute(
                text("SELECT id FROM runs WHERE engine = 'nextflow' AND engine_ref = :ref"),
                {"ref": SESSION},
            ).scalar()
            if found is not None:
                conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": found})
                deleted.append(found)

    return deleted, hook


def test_an_import_left_out_reports_it_and_a_later_one_records_it(
    instance: Instance, tmp_path: Path
) -> None:
    launch = rebuild_simple(tmp_path)
    deleted, hook = _deleting_the_workflow_run(instance)
    with checkpoints.at("source.read", hook):
        report = import_run(launch, timezone="UTC", instance=instance)
    assert deleted and report.recorded
    assert {SESSION, INDEX, MULTIQC} <= set(report.left_out)
    assert "does not exist" in report.left_out[SESSION]
    assert report.workflows[0]["left_out"] == 4
    # the status breakdown counts what was recorded (before: the 4 left out, "4 completed")
    assert report.workflows[0]["by_status"] == {} and report.by_status == {}
    assert report.tasks == 4 and report.workflows[0]["tasks"] == 4  # found in the sources
    assert report.producer_edges == [] and report.published == 0
    shown = json.loads(json.dumps(report.as_dict()))
    assert shown["left_out"] == report.left_out and shown["by_status"] == {}
    assert shown["workflows"][0]["by_status"] == {}
    assert ll.Run.filter(engine="nextflow").count() == 0

    again = import_run(launch, timezone="UTC", instance=instance)
    assert again.left_out == {} and len(again.producer_edges) == 3
    refs = [r.engine_ref for r in ll.Run.filter(engine="nextflow")]
    assert len(refs) == len(set(refs)) and {SESSION, INDEX, MULTIQC} <= set(refs)


def test_the_command_shows_the_report_and_exits_1(
    instance: Instance,
    nextflow_plugin: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    launch = rebuild_simple(tmp_path)
    deleted, hook = _deleting_the_workflow_run(instance)
    with checkpoints.at("source.read", hook):
        result = invoke("nextflow", "import", str(launch), "--timezone", "UTC")
    assert deleted
    assert result.exit_code == 1, result.output
    shown = "recorded 0 tasks of 4 processes (no tasks), 0 cached; 4 not recorded"
    assert shown in result.stdout
    assert f"not recorded: {SESSION}: its run (id" in result.stderr
    assert "0 producer edges, 0 published copies" in result.stdout
    assert "task(s) or run(s) not recorded: the database refused them" in result.stderr
    again = invoke("nextflow", "import", str(launch), "--timezone", "UTC")
    assert again.exit_code == 0, again.output
    assert "recorded 4 tasks of 4 processes (4 completed), 0 cached" in again.stdout
    assert "3 producer edges, 2 published copies" in again.stdout
