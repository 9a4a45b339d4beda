"""Deleting an artifact clears the runs that name it as their report or environment, and
deleting a run looks up the runs cached from it: each lookup reads an index (0016), not every
run of the catalog."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder

LOOKUPS = {
    "report_id": "UPDATE runs SET report_id = NULL WHERE report_id = {a}",
    "environment_id": "UPDATE runs SET environment_id = NULL WHERE environment_id = {a}",
    "cached_from_id": "SELECT 1 FROM runs WHERE cached_from_id = {r}",
}


def _plan(instance: Instance, sql: str) -> str:
    with instance.engine.begin() as conn:
        if instance.dialect == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an index whenever it can
            return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
        return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


@pytest.mark.parametrize("column", sorted(LOOKUPS))
def test_what_a_delete_looks_up_reads_an_index(
    instance: Instance, tmp_path: Path, column: str
) -> None:
    """Before 0016 both databases read `runs` whole (SQLite: SCAN runs; PostgreSQL: a
    sequential scan even with enable_seqscan off) for each artifact or run deleted."""
    (tmp_path / "report.html").write_text("<p>report</p>")
    artifact = ll.Artifact(tmp_path / "report.html", key="reports/r.html").save()
    run = Recorder("refs").start_workflow(key="wf-refs", engine_run_id="refs-1")
    sql = LOOKUPS[column].format(a=artifact.id, r=run.run.id)
    plan = _plan(instance, sql)
    assert f"ix_runs_{column}" in plan and "Seq Scan" not in plan, plan


def test_deleting_a_report_clears_it_from_its_run(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "env.txt").write_text("numpy==2.0\n")
    (tmp_path / "report.html").write_text("<p>report</p>")
    environment = ll.Artifact(tmp_path / "env.txt", key="envs/env.txt").save()
    report = ll.Artifact(tmp_path / "report.html", key="reports/r.html").save()
    run = Recorder("refs").start_workflow(key="wf-refs", engine_run_id="refs-2")
    with instance.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE runs SET report_id = {report.id}, environment_id = {environment.id} "
            f"WHERE id = {run.run.id}"
        )
    report.delete()
    with instance.engine.begin() as conn:
        row = conn.exec_driver_sql(
            f"SELECT report_id, environment_id FROM runs WHERE id = {run.run.id}"
        ).one()
    assert tuple(row) == (None, environment.id)
