"""Spaces enforced by the database: a member of `oncology` sees and writes only oncology's
artifacts, runs and labels, whatever SQL it sends (compared with the superuser's view)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline.access.roles import AccessError
from lakeline.access.spaces import listing, set_membership, space_of
from lakeline.cli import cli
from lakeline.errors import PermissionDenied
from lakeline.instance import Instance, connect
from lakeline.lineage.graph import upstream
from lakeline.lineage.graph_types import HIDDEN
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from sqlalchemy import text


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    else:
        assert result.exit_code == 1, (result.output, result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return result


def _catalog(tmp_path: Path) -> dict[str, str]:
    """As the owner: spaces oncology and neuro; a workflow in `all` whose step used
    data/shared.txt (all) and made out/tumour.txt (oncology); labels in each space."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "out").mkdir()
    (work / "data" / "shared.txt").write_text("shared\n")
    (work / "out" / "tumour.txt").write_text("tumour\n")
    (work / "out" / "brain.txt").write_text("brain\n")
    rec = Recorder(engine="test", root=work)
    flow = rec.start_workflow(key="pipeline", engine_run_id="w1")
    step = rec.start_step(flow, key="call", kind="rule", engine_task_id="1")
    rec.use(step, work / "data" / "shared.txt")
    tumour = rec.produce(step, work / "out" / "tumour.txt")
    brain = rec.produce(step, work / "out" / "brain.txt")
    rec.finish_step(step, status="completed")
    rec.finish_workflow(flow, status="completed")
    assert tumour is not None and brain is not None
    onc_step = rec.start_step(flow, key="grade", kind="rule", engine_task_id="2")
    for name in ("general", "tumour-grade", "neuro-label"):
        ll.ULabel(name=name).save()
    run("space", "create", "oncology", "--description", "tumour studies")
    run("space", "create", "neuro")
    run("space", "add", tumour.key or "", "--to", "oncology", "--run", onc_step.run.uid)
    run("space", "add", "--label", "tumour-grade", "--to", "oncology")
    run("space", "add", brain.uid, "--label", "neuro-label", "--to", "neuro")
    return {"tumour": tumour.uid, "brain": brain.uid, "onc_run": onc_step.run.uid}


def _counts(instance: Instance, where: str = "") -> dict[str, int]:
    with instance.engine.connect() as conn:
        return {
            table: int(conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one())
            for table in ("artifacts", "runs", "ulabels")
        }


@pytest.mark.postgres
def test_a_space_member_sees_and_writes_only_its_space(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    uids = _catalog(tmp_path)
    onc_role, onc_url = login_roles.create("onc")
    run("access", "grant", onc_role, "write", "--space", "oncology")
    full_role, full_url = login_roles.create("full")
    run("access", "grant", full_role, "read")
    assert f"{onc_role}" in run("access", "list").output
    with owner.engine.connect() as conn:
        onc_id = conn.execute(text("SELECT id FROM spaces WHERE name = 'oncology'")).scalar_one()
    expected = _counts(owner, f"WHERE space_id = {onc_id}")
    assert expected == {"artifacts": 1, "runs": 1, "ulabels": 1}
    everything = _counts(owner)

    full = login_roles.connect_as(full_url, "full")
    assert _counts(full) == everything  # a role held to no space sees every space
    onc = login_roles.connect_as(onc_url, "onc")
    assert _counts(onc) == expected  # raw SQL: exactly oncology's rows
    assert [a.uid for a in ll.Artifact.filter()] == [uids["tumour"]]
    assert [label.name for label in ll.ULabel.filter()] == ["tumour-grade"]
    assert ll.Artifact.filter(uid=uids["brain"]).count() == 0
    with onc.engine.begin() as conn:  # writes reach only oncology's rows, whatever the SQL
        assert conn.execute(text("UPDATE artifacts SET description = 'seen'")).rowcount == 1
        assert conn.execute(text("DELETE FROM ulabels WHERE name = 'general'")).rowcount == 0
        assert conn.execute(text("UPDATE runs SET error = 'x'")).rowcount == 1
    for statement in (
        "UPDATE artifacts SET space_id = 1",
        "INSERT INTO ulabels (uid, name, is_type, created_at, space_id) "
        "VALUES ('onclabel00000000', 'sneaky', false, now(), 1)",
    ):
        with onc.engine.connect() as conn, pytest.raises(PermissionDenied, match="space"):
            conn.execute(text(statement))
    # what it saves lands in its space
    (tmp_path / "new.txt").write_text("new\n")
    made = ll.Artifact(tmp_path / "new.txt", key="onc/new.txt").save()
    assert space_of(owner, "artifacts", made.uid) == "oncology"
    batch = []  # more than a few rows: COPY, staged (row security refuses COPY FROM there)
    for i in range(40):
        (tmp_path / f"b{i}.txt").write_text(f"batch {i}\n")
        batch.append(ll.Artifact(tmp_path / f"b{i}.txt", key=f"onc/batch/{i}.txt"))
    saved = ll.save(batch)
    assert {space_of(owner, "artifacts", a.uid) for a in saved} == {"oncology"}
    assert ll.Artifact.filter(key__startswith="onc/batch/").count() == 40
    ll.ULabel(name="grade-2").save()
    assert space_of(owner, "ulabels", ll.ULabel.get(name="grade-2").uid) == "oncology"
    # lineage: the producing run (in `all`) is a stand-in, none of its data shows
    graph = upstream(ll.Artifact.get(uids["tumour"]))
    hidden = [n for n in graph.runs if n.label == HIDDEN]
    assert len(hidden) == 1 and hidden[0].status == "hidden"
    assert {n.key for n in graph.artifacts} <= {"out/tumour.txt", HIDDEN}
    assert "pipeline" not in graph.to_mermaid() and "call" not in graph.to_json()
    # the owner still sees everything, and the description written above
    connect("owner")
    assert _counts(owner)["artifacts"] == everything["artifacts"] + 41
    assert ll.Artifact.get(uids["tumour"]).description == "seen"
    assert [s.name for s in listing(owner)] == ["all", "oncology", "neuro"]


def test_spaces_on_sqlite_group_records(lakeline_home: Path, tmp_path: Path) -> None:
    instance = ll.init(tmp_path / "data", name="lite")
    uids = _catalog(tmp_path)
    assert space_of(instance, "artifacts", uids["tumour"]) == "oncology"
    assert space_of(instance, "artifacts", uids["brain"]) == "neuro"
    info = {s.name: (s.artifacts, s.runs, s.labels) for s in listing(instance)}
    assert info["oncology"] == (1, 1, 1) and info["neuro"] == (1, 0, 1)
    with pytest.raises(AccessError, match="needs a PostgreSQL instance"):
        set_membership(instance.engine, "bob", ["oncology"])
    # bad input: one line each, nothing moved
    run("space", "create", "oncology", ok=False)
    run("space", "create", "bad name!", ok=False)
    run("space", "add", "out/tumour.txt", "no/such.txt", "--to", "neuro", ok=False)
    run("space", "add", "out/tumour.txt", "--to", "nowhere", ok=False)
    assert space_of(instance, "artifacts", uids["tumour"]) == "oncology"
    run("access", "grant", "bob", "read", "--space", "oncology", ok=False)
