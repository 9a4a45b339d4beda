"""`lakeline runs` and `lakeline transforms` on real records (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline.cli import cli
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder


def run(*args: str) -> Result:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def rows(*args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run(*args, "--json").stdout.splitlines()]


@dataclass
class Catalog:
    workflow: ll.Run
    steps: list[ll.Run]
    calls: list[ll.Run]


@ll.tracked(key="clean_table")
def clean(n: int) -> None:
    if n < 0:
        raise ValueError("negative")


@pytest.fixture
def catalog(instance: Instance, tmp_path: Path) -> Catalog:
    """A toy engine's workflow run with two steps, then three calls of a tracked function
    (one fails), in this order."""
    root = tmp_path / "wf"
    root.mkdir()
    (root / "in.txt").write_text("x")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="toy-pipeline", engine_run_id="wf-1", source_code="rules")
    steps = []
    for name in ("align", "count"):
        step = rec.start_step(wf, key=name, kind="rule", engine_task_id=name)
        rec.use(step, "in.txt")
        rec.finish_step(step, "completed", exit_code=0)
        steps.append(step.run)
    rec.finish_workflow(wf, "completed")
    clean(1)
    clean(2)
    with pytest.raises(ValueError):
        clean(-1)
    calls = ll.Run.filter(transform__key="clean_table").order_by("id").all()
    return Catalog(ll.Run.get(uid=wf.run.uid), steps, calls)


def test_runs_lists_newest_first_with_the_uid_export_needs(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = rows("runs")
    expected = [*reversed(catalog.calls), *reversed(catalog.steps), catalog.workflow]
    assert [r["uid"] for r in listed] == [r.uid for r in expected]
    first = listed[0]
    assert (first["status"], first["transform"], first["kind"], first["stale"]) == (
        "errored",
        "clean_table",
        "function",
        False,
    )
    assert first["transform_version"] == 1 and first["pid"] is not None
    table = run("runs").stdout
    for header in ("uid", "transform", "status", "engine", "started", "host"):
        assert header in table.splitlines()[1]
    assert catalog.workflow.uid in table and "toy-pipeline" in table
    monkeypatch.chdir(tmp_path)
    exported = run("export", "prov", "--run", listed[-1]["uid"])
    assert f"exported run {catalog.workflow.uid}" in exported.stdout


def test_runs_filters(catalog: Catalog) -> None:
    uids = lambda *a: [r["uid"] for r in rows("runs", *a)]  # noqa: E731
    assert uids("--status", "errored") == [catalog.calls[2].uid]
    assert set(uids("--status", "errored", "--status", "completed")) == {
        r.uid for r in [*catalog.calls, *catalog.steps, catalog.workflow]
    }
    assert uids("--transform", "align") == [catalog.steps[0].uid]
    assert uids("--transform", catalog.calls[0].transform.uid) == [
        r.uid for r in reversed(catalog.calls)
    ]
    assert uids("--engine", "toy") == [
        *(r.uid for r in reversed(catalog.steps)),
        catalog.workflow.uid,
    ]
    assert uids("--engine", "none") == [r.uid for r in reversed(catalog.calls)]
    assert uids("--parent", catalog.workflow.uid) == [r.uid for r in reversed(catalog.steps)]
    assert catalog.steps[0].uid not in uids("--top-level")
    assert catalog.workflow.uid in uids("--top-level")
    limited = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["runs", "--limit", "1"])
    assert limited.exit_code == 0 and catalog.calls[2].uid in limited.stdout
    assert catalog.calls[1].uid not in limited.stdout
    assert "showing the newest 1 runs" in limited.stderr
    assert run("runs", "--stale").stdout == "no stale runs\n"  # this process is alive


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transform", "nosuch"], "error: no transform with key, uid or stem 'nosuch'"),
        (["--parent", "NoSuchRun0000000"], "error: no run with uid 'NoSuchRun0000000'"),
    ],
)
def test_runs_errors(catalog: Catalog, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["runs", *args])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


def test_transforms_lists_code_with_its_runs(catalog: Catalog) -> None:
    listed = {r["key"]: r for r in rows("transforms")}
    assert set(listed) == {"toy-pipeline", "align", "count", "clean_table"}
    clean_table = listed["clean_table"]
    assert (clean_table["kind"], clean_table["runs"], clean_table["version"]) == (
        "function",
        3,
        1,
    )
    assert (clean_table["last_run"], clean_table["last_status"]) == (
        catalog.calls[2].uid,
        "errored",
    )
    assert [r["key"] for r in rows("transforms", "--kind", "rule")] == ["align", "count"]
    assert [r["key"] for r in rows("transforms", "cl")] == ["clean_table"]
    table = run("transforms").stdout
    assert "clean_table" in table and catalog.calls[2].uid in table
    assert run("transforms", "nothing/").stdout == "no transforms under 'nothing/'\n"


def test_transforms_all_versions(instance: Instance) -> None:
    from lakeline.lineage.track import start_tracked_run

    for code in ("print(1)", "print(2)"):
        start_tracked_run(
            instance=instance, key="jobs/a.py", kind="script", source_code=code, params=None
        )
    assert [r["version"] for r in rows("transforms")] == [2]
    assert [(r["version"], r["runs"]) for r in rows("transforms", "--all-versions")] == [
        (1, 1),
        (2, 1),
    ]


def test_help_lists_runs_and_transforms(lakeline_home: Path) -> None:
    listed = run("--help").stdout
    assert "runs" in listed and "transforms" in listed
    assert "--stale" in run("runs", "--help").stdout
