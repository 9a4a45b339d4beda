"""Bad input: clear errors or warnings, nothing half-written; and the CLI command."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import lakeline as ll
import pytest
import redun_flows as rf
from click.testing import CliRunner
from lakeline.errors import LakelineError
from lakeline.instance import Instance
from lakeline_redun import import_redun
from redun import File
from redun_project import Flow


def test_unknown_execution(instance: Instance, flow: Flow) -> None:
    flow.run(rf.split(File("raw.txt")))
    with pytest.raises(LakelineError, match="no redun execution 'nope'"):
        import_redun(str(flow.db), execution="nope")
    assert ll.Run.filter(engine="redun").count() == 0


def test_missing_and_foreign_databases(instance: Instance, tmp_path: Path) -> None:
    with pytest.raises(LakelineError, match="no redun database at"):
        import_redun(str(tmp_path / "nothing.db"))
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x int)").connection.close()
    with pytest.raises(LakelineError, match="not a redun database"):
        import_redun(str(other))


def test_unsupported_schema_version(instance: Instance, flow: Flow) -> None:
    flow.run(rf.split(File("raw.txt")))
    with sqlite3.connect(flow.db) as db:  # as a future redun would leave it
        db.execute(
            "insert into redun_version (id, version, timestamp) "
            "values ('future', 4, '2999-01-01 00:00:00')"
        )
    with pytest.raises(LakelineError, match=r"schema version 4\.99.*does not support"):
        import_redun(str(flow.db))
    assert ll.Run.filter(engine="redun").count() == 0


def test_vanished_files_are_reported(instance: Instance, flow: Flow) -> None:
    flow.run(rf.split(File("raw.txt")))
    (flow.root / "out" / "b.txt").unlink()
    result = import_redun(str(flow.db))
    assert result.missing == [str(flow.root / "out" / "b.txt")]
    split = ll.Run.get(engine="redun", parent_id__isnull=False)
    assert split.status == "completed"
    assert {a.key for a in ll.Artifact.filter(run_id=split.id)} == {"out/a.txt"}


def test_cli_import(instance: Instance, flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeline import plugins
    from lakeline.cli import build_cli

    flow.run(rf.main(File("raw.txt")))
    (flow.root / "out" / "report.txt").unlink()
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "redun")
    plugins.reset()
    runner = CliRunner()
    result = runner.invoke(build_cli(), ["redun", "import", "--db", str(flow.db)])
    assert result.exit_code == 0, result.output
    assert "imported 1 execution(s), 6 job(s)" in result.output
    assert "report.txt no longer exists" in result.output
    args = ["redun", "import", "--db", str(flow.db), "--execution", "x"]
    again = runner.invoke(build_cli(), args)
    assert again.exit_code == 1 and "no redun execution 'x'" in again.output
