"""`lakeline redun import` when the database refuses some of what it records (a run a batch
names deleted meanwhile: StepsNotRecorded): the rest is imported, the steps left out are
reported with why and the command exits 1; importing again records them, once. Before, the
first StepsNotRecorded stopped the import (the later executions not imported)."""

from __future__ import annotations

import lakeline as ll
import pytest
import redun_flows as rf
from click.testing import CliRunner
from lakeline import checkpoints, plugins
from lakeline.instance import Instance
from lakeline_redun import import_redun
from redun import File
from redun_project import Flow
from sqlalchemy import text


def _deleting_the_first_workflow_run(instance: Instance) -> tuple[list[str], object]:
    """A hook for `source.read` that deletes, once, the redun workflow run recorded without
    steps yet (the first execution's, while its first batch hashes its files)."""
    deleted: list[str] = []

    def hook() -> None:
        if deleted:
            return
        with instance.engine.begin() as conn:
            found = conn.execute(
                text(
                    "SELECT r.id, r.engine_ref FROM runs r WHERE r.engine = 'redun' AND "
                    "r.parent_id IS NULL AND NOT EXISTS "
                    "(SELECT 1 FROM runs c WHERE c.parent_id = r.id)"
                )
            ).first()
            if found is not None:
                conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": found[0]})
                deleted.append(found[1])

    return deleted, hook


def _runs_under(execution: str) -> list[ll.Run]:
    return ll.Run.filter(engine="redun", parent__parent__engine_ref=execution).all()


def test_an_execution_left_out_does_not_stop_the_import(instance: Instance, flow: Flow) -> None:
    flow.run(rf.main(File("raw.txt")))
    flow.run(rf.main(File("raw.txt")))  # cached from the first
    deleted, hook = _deleting_the_first_workflow_run(instance)
    with checkpoints.at("source.read", hook):
        result = import_redun(str(flow.db))
    first, second = result.executions
    assert deleted == [first]
    assert first in result.left_out and "does not exist" in result.left_out[first]
    assert len(result.left_out) == 7  # the execution, its main job and the 5 under it
    assert result.jobs == 6  # the second execution's
    workflows = ll.Run.filter(engine="redun", parent_id__isnull=True).all()
    assert [w.engine_ref for w in workflows] == [second]
    assert workflows[0].status == "completed"
    assert len(_runs_under(second)) == 5

    again = import_redun(str(flow.db))  # the cause gone: the first recorded, once
    assert again.left_out == {} and again.jobs == 12
    assert ll.Run.filter(engine="redun", parent_id__isnull=True).count() == 2
    originals = {r.transform.key + str(r.params.get("label")): r for r in _runs_under(first)}
    cached = _runs_under(second)
    assert len(originals) == 5 and len(cached) == 5
    for run in cached:  # the link the first import could not make, made now
        assert run.status == "cached"
        assert run.cached_from_id == originals[run.transform.key + str(run.params.get("label"))].id
    assert ll.Run.filter(engine="redun").count() == 14


def test_the_command_reports_what_it_left_out_and_exits_1(
    instance: Instance, flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeline.cli import build_cli

    flow.run(rf.main(File("raw.txt")))
    flow.run(rf.main(File("raw.txt")))
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "redun")
    plugins.reset()
    deleted, hook = _deleting_the_first_workflow_run(instance)
    with checkpoints.at("source.read", hook):
        out = CliRunner().invoke(build_cli(), ["redun", "import", "--db", str(flow.db)])
    assert out.exit_code == 1, out.output
    assert "imported 1 execution(s), 6 job(s)" in out.output
    assert f"not recorded: {deleted[0]}: its run (id" in out.output
    assert "7 job(s) or execution(s) not recorded: the database refused them" in out.output
    again = CliRunner().invoke(build_cli(), ["redun", "import", "--db", str(flow.db)])
    assert again.exit_code == 0, again.output
    assert ll.Run.filter(engine="redun").count() == 14


def test_a_file_of_a_job_left_out_is_not_said_to_be_recorded_by_location(
    instance: Instance, flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    """out/total.txt is gone: its use and production take the Recorder's unbatched path,
    whose flush leaves the job out (its execution's run deleted). Before, the importer took
    that StepsNotRecorded for an unreadable file: 'cannot be read ... recorded by location'
    (and the reference then raised the same error)."""
    import logging

    flow.run(rf.main(File("raw.txt")))
    (flow.root / "out" / "total.txt").unlink()
    deleted, hook = _deleting_the_first_workflow_run(instance)
    with caplog.at_level(logging.WARNING), checkpoints.at("source.read", hook):
        result = import_redun(str(flow.db))
    assert deleted and result.left_out and result.jobs == 0
    assert not [r for r in caplog.records if "recorded by location" in r.getMessage()]
