"""The audit log: database triggers record every change of catalog rows in a hash chain that
`verify` checks; tampering with raw SQL (as the owner) is found, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline.access.audit import GENESIS, anchor, entries, verify
from lakeline.access.roles import AccessError
from lakeline.cli import cli
from lakeline.errors import PermissionDenied
from lakeline.instance import Instance, connect
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


@contextmanager
def raw(instance: Instance) -> Iterator[Any]:
    """A raw connection as the owner, bypassing lakeline (sqlite3 without lakeline's
    functions, or the superuser's psycopg)."""
    if instance.dialect == "sqlite":
        conn = sqlite3.connect(str(instance.engine.url.database), isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()
    else:
        with instance.engine.begin() as conn:
            yield conn.connection.driver_connection


def _session(tmp_path: Path) -> tuple[ll.Artifact, ll.Artifact]:
    (tmp_path / "a.txt").write_text("one\n")
    first = ll.Artifact(tmp_path / "a.txt", key="a.txt").save()
    (tmp_path / "a.txt").write_text("two\n")
    second = ll.Artifact(tmp_path / "a.txt", key="a.txt").save()
    second.description = "the second"
    second.save()
    second.delete()
    return first, second


def test_a_scripted_session_is_logged_entry_by_entry(instance: Instance, tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    first, second = _session(tmp_path)
    log = entries(instance, key="a.txt")
    expected = [
        ("insert", first.uid, None),
        ("update", first.uid, {"is_latest"}),
        ("insert", second.uid, None),
        ("update", second.uid, {"description"}),
        ("delete", second.uid, None),
        ("update", first.uid, {"is_latest"}),
    ]
    got = [(e.action, e.uid, set(e.changes) if e.action == "update" else None) for e in log]
    assert got == expected
    assert {e.actor for e in log} == {instance.user.handle}
    assert all(e.table == "artifacts" and e.at >= start for e in log)
    assert log[0].changes["key"] == "a.txt" and log[0].changes["hash"] == first.hash
    assert log[3].changes["description"] == [None, "the second"]
    assert log[4].changes["description"] == "the second"  # what was deleted
    assert [e.seq for e in ll.Artifact.get(first.uid).history()] == [
        e.seq for e in log if e.uid == first.uid
    ]
    assert [e.seq for e in log] == sorted(e.seq for e in log)
    assert entries(instance, user="nobody") == []
    assert entries(instance, since=datetime.now(UTC) + timedelta(hours=1)) == []
    verdict = verify(instance)
    assert verdict.ok and verdict.checked == len(entries(instance))
    assert verify(instance, anchor(instance)).ok
    out = run("audit", "log", "a.txt").output.splitlines()
    assert len(out) == 6 and "delete artifacts" in out[4] and "description" in out[3]
    assert "intact" in run("audit", "verify").output
    bad = CliRunner().invoke(cli, ["audit", "log", "--since", "yesterday"])
    assert bad.exit_code == 2 and "is no date" in bad.output
    run("audit", "verify", "--anchor", "12:nothex", ok=False)


def _seqs(instance: Instance) -> list[int]:
    return [e.seq for e in entries(instance)]


def test_tampering_is_found_where_it_happens(instance: Instance, tmp_path: Path) -> None:
    _session(tmp_path)
    head = anchor(instance)
    n = len(_seqs(instance))
    assert n >= 6
    # an edited entry (as the owner, with raw SQL)
    with raw(instance) as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    verdict = verify(instance)
    assert not verdict.ok and verdict.bad_seq == 3 and "edited" in verdict.reason
    assert "breaks at entry #3" in run("audit", "verify", ok=False).stderr
    with raw(instance) as conn:
        conn.execute(f"UPDATE audit_log SET actor = '{instance.user.handle}' WHERE seq = 3")
    assert verify(instance).ok
    # two entries swapped
    with raw(instance) as conn:
        conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 4")
        conn.execute("UPDATE audit_log SET seq = 4 WHERE seq = 5")
        conn.execute("UPDATE audit_log SET seq = 5 WHERE seq = -1")
    verdict = verify(instance)
    assert not verdict.ok and verdict.bad_seq == 4  # its seq is part of its hash
    with raw(instance) as conn:
        conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 4")
        conn.execute("UPDATE audit_log SET seq = 4 WHERE seq = 5")
        conn.execute("UPDATE audit_log SET seq = 5 WHERE seq = -1")
    assert verify(instance).ok
    # an entry deleted in the middle, then the last one
    with raw(instance) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    verdict = verify(instance)
    assert not verdict.ok and verdict.bad_seq == 3
    with raw(instance) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq <= 2")
        conn.execute(f"DELETE FROM audit_log WHERE seq = {n}")
        # a rewritten chain (hashes recomputed from a forged first entry) ...
        conn.execute(f"UPDATE audit_log SET seq = seq - 2, prev_hash = '{GENESIS}' WHERE seq = 3")
    assert not verify(instance).ok
    # ... and the anchor kept outside catches a log cut back to before it
    assert not verify(instance, head).ok


@pytest.mark.postgres
def test_roles_cannot_touch_the_log_and_actors_are_roles(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    run("space", "create", "oncology")
    writer, writer_url = login_roles.create("writer")
    run("access", "grant", writer, "write")
    member, member_url = login_roles.create("onc")
    run("access", "grant", member, "write", "--space", "oncology")
    login_roles.connect_as(writer_url, "writer")
    (tmp_path / "w.txt").write_text("w\n")
    made = ll.Artifact(tmp_path / "w.txt", key="w.txt").save()
    assert {e.actor for e in made.history()} == {writer}
    writer_instance = connect("writer")
    for statement in (
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log",
        f"INSERT INTO audit_log (at, actor, tbl, action, changes) VALUES "
        f"(now(), '{writer}', 'artifacts', 'insert', '{{}}')",
        "UPDATE audit_head SET seq = 0",
    ):
        with writer_instance.engine.connect() as conn, pytest.raises(PermissionDenied):
            conn.execute(text(statement))
    assert verify(writer_instance).ok  # a role held to no space reads the whole log
    onc = login_roles.connect_as(member_url, "onc")
    (tmp_path / "o.txt").write_text("o\n")
    ll.Artifact(tmp_path / "o.txt", key="o.txt").save()
    assert {e.actor for e in entries(onc)} == {member}  # its own entries only
    with pytest.raises(AccessError, match="whole log"):
        verify(onc)
    connect("owner")
    assert {e.actor for e in entries(owner)} >= {writer, member, "postgres"}
    assert verify(owner).ok


def _save_many(args: tuple[str, str, int]) -> None:
    import os

    home, folder, worker = args
    os.environ["LAKELINE_HOME"] = home
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    ll.connect("owner")
    for i in range(15):
        path = Path(folder) / f"w{worker}-{i}.txt"
        path.write_text(f"{worker} {i}\n")
        ll.Artifact(path, key=f"w{worker}/{i}.txt").save()


@pytest.mark.postgres
def test_concurrent_writers_extend_one_chain(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    before = len(entries(instance))
    (tmp_path / "src").mkdir()
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        pool.map(_save_many, [(str(lakeline_home), str(tmp_path / "src"), w) for w in range(4)])
    log = entries(instance)
    assert len([e for e in log if e.action == "insert" and e.table == "artifacts"]) == 60
    assert [e.seq for e in log] == list(range(1, len(log) + 1)) and len(log) > before
    assert verify(instance).ok


@pytest.mark.postgres
def test_trigger_functions_that_turn_nested_loops_off_turn_jit_off(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Plans made without nested loops carry the planner's disable cost, far above
    jit_above_cost: with JIT on, the audit query of every UPDATE was compiled (0.3 s each)."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    query = "SELECT proname, proconfig FROM pg_proc WHERE proname LIKE 'lakeline%'"
    with instance.sessions.read() as session:
        settings = {name: set(config or ()) for name, config in session.execute(text(query))}
    assert "enable_nestloop=off" in settings["lakeline_audit"]
    assert "enable_nestloop=off" in settings["lakeline_check_creator"]
    compiled = [n for n, s in settings.items() if "enable_nestloop=off" in s and "jit=off" not in s]
    assert compiled == []
    runs = ll.Run.filter().count()
    rec = Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.finish_workflow(wf)  # a one-row UPDATE, audited
    assert ll.Run.filter().count() == runs + 1 and verify(instance).ok
    assert [e.action for e in entries(instance) if e.table == "runs"][-2:] == ["insert", "update"]
