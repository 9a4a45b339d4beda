"""What a flush runs once whatever it holds, made cheaper (docs/scaling.md, stop 31): its
statements as SQL for the driver (`db.driver.driver_rows`) fail as SQLAlchemy's own fail, its
after-commit work (`db.session.after_commit`) runs once and only after a commit, and the
records its look-up reads (`Places.found`) are those the ORM loads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.artifacts.places import REF_ROOT, Places, _lookup
from lakeline.db.driver import driver_rows
from lakeline.db.session import after_commit
from lakeline.hookspecs import hookimpl
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.models import Artifact, User
from lakeline.plugins import get_plugin_manager
from sqlalchemy import select, text


def _sql(instance: Instance, sql: str) -> str:
    return sql.replace("?", "%s") if instance.dialect == "postgresql" else sql


def _failure(instance: Instance, run: Any) -> BaseException:
    with pytest.raises(Exception) as failed, instance.sessions.write() as session:
        run(session.connection())
    return failed.value


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("INSERT INTO run_inputs (run_id, artifact_id, role) VALUES (?, ?, ?)", (-7, -8, "")),
        ("INSERT INTO users (uid, handle) VALUES (?, ?)", (None, "x")),  # NOT NULL
        ("SELECT no_such_column FROM runs WHERE id = ?", (1,)),
        ("INSERT INTO storages (uid, root, type) SELECT uid, root, type FROM storages", ()),
    ],
)
def test_a_driver_statement_fails_as_exec_driver_sql_fails(
    instance: Instance, sql: str, params: tuple[Any, ...]
) -> None:
    """The same exception (class, message, cause) as SQLAlchemy's `exec_driver_sql`: wrapped
    (IntegrityError: a flush's retries and refusals tell it so) or translated (LakelineError);
    the instance writes on afterwards."""
    statement = _sql(instance, sql)
    ours = _failure(instance, lambda conn: driver_rows(conn, statement, params))
    theirs = _failure(instance, lambda conn: conn.exec_driver_sql(statement, params))
    assert type(ours) is type(theirs)
    # (the same text but for a serial id a failed insert drew: PostgreSQL's sequences move)
    assert re.sub(r"\d+", "N", str(ours)) == re.sub(r"\d+", "N", str(theirs))
    assert type(ours.__cause__) is type(theirs.__cause__)
    with instance.sessions.write() as session:  # the connection was given back usable
        assert driver_rows(session.connection(), "SELECT 1") == [(1,)]


def test_a_driver_statement_returns_its_rows_as_tuples(instance: Instance) -> None:
    with instance.sessions.write() as session:
        conn = session.connection()
        assert driver_rows(conn, _sql(instance, "SELECT ?, ?"), ("a", 2)) == [("a", 2)]
        assert driver_rows(conn, "SELECT id FROM runs WHERE 1 = 0") == []
        assert driver_rows(conn, "DELETE FROM run_inputs WHERE 1 = 0") == []


def test_after_commit_work_runs_once_after_the_commit_and_never_after_a_rollback(
    instance: Instance,
) -> None:
    calls: list[str] = []
    seen_by_others: list[int] = []

    def look() -> None:  # at the call, the commit is done: another session sees the row
        with instance.sessions.read() as other:
            found = other.scalar(text("SELECT count(*) FROM run_inputs WHERE role = 'ac'"))
            seen_by_others.append(int(found or 0))

    with pytest.raises(RuntimeError), instance.sessions.write() as session:
        after_commit(session, lambda: calls.append("rolled back"))
        raise RuntimeError("fails inside the transaction")
    assert calls == []

    wf = _workflow(instance)
    artifact = _saved(instance)
    with instance.sessions.write() as session:
        session.execute(
            text(
                "INSERT INTO run_inputs (run_id, artifact_id, role, used_at) "
                "VALUES (:r, :a, 'ac', CURRENT_TIMESTAMP)"
            ),
            {"r": wf, "a": artifact},
        )
        after_commit(session, lambda: calls.append("first"))
        after_commit(session, look)
        after_commit(session, lambda: calls.append("second"))
        assert calls == []  # not before the commit
    assert calls == ["first", "second"]
    assert seen_by_others == [1]
    with instance.sessions.write() as session:  # the next transaction: its own work only
        session.execute(text("SELECT 1"))
    assert calls == ["first", "second"]


def test_a_commit_that_fails_runs_no_after_commit_work(instance: Instance) -> None:
    """A failure on the way to the commit (SQLAlchemy's flush of a pending object, inside
    `commit`): rolled back, the work not run."""
    calls: list[str] = []
    with pytest.raises(Exception, match=r"(?i)null"), instance.sessions.write() as session:
        after_commit(session, lambda: calls.append("ran"))
        session.add(User(uid=None, handle="x"))  # NOT NULL: fails at the commit's flush
    assert calls == []


def _workflow(instance: Instance) -> int:
    rec = BatchRecorder("toy", root=Path(instance.storage.root), steps=100, ms=600_000)
    wf = rec.start_workflow(key="ac", engine_run_id="ac")
    rec.flush()
    assert wf.run.id is not None
    return int(wf.run.id)


def _saved(instance: Instance) -> int:
    path = Path(instance.storage.root) / "ac.txt"
    path.write_text("ac")
    saved = ll.Artifact(path, key="ac/a.txt").save()
    assert saved.id is not None
    return int(saved.id)


class Counting:
    """A plugin counting the hooks a flush fires."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def run_started(self, run: ll.Run) -> None:
        self.calls.append(f"started {run.engine_ref}")

    @hookimpl
    def run_finished(self, run: ll.Run) -> None:
        self.calls.append(f"finished {run.engine_ref}")

    @hookimpl
    def artifact_used(self, artifact: ll.Artifact, run: ll.Run) -> None:
        self.calls.append(f"used {artifact.key} by {run.engine_ref}")


def _fail() -> None:
    raise RuntimeError("the flush fails before its commit")


def test_a_flush_rolled_back_tells_the_plugins_nothing_and_the_next_tells_them_once(
    instance: Instance, tmp_path: Path
) -> None:
    counting = Counting()
    get_plugin_manager().register(counting, name="counting")
    try:
        rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
        wf = rec.start_workflow(key="p", engine_run_id="r")
        rec.flush()
        counting.calls.clear()
        (tmp_path / "in.txt").write_text("in")
        (tmp_path / "out.txt").write_text("out")
        step = rec.start_step(wf, key="s", kind="rule", engine_task_id="0")
        rec.use(step, "in.txt")
        rec.produce(step, "out.txt")
        rec.finish_step(step)
        with checkpoints.at("recorder.flush", _fail), pytest.raises(RuntimeError):
            rec.flush()
        assert counting.calls == []
        assert step.run.id is None  # queued again, unsaved
        rec.flush()
        assert sorted(counting.calls) == [
            "finished r/0",
            "started r/0",
            "used in.txt by r/0",
        ]
        rec.flush()  # nothing queued: nothing told again
        assert len(counting.calls) == 3
    finally:
        get_plugin_manager().unregister(name="counting")


def test_the_lookup_reads_a_record_as_the_orm_loads_it(instance: Instance) -> None:
    """`Places.found` (SQL for the driver, the typed columns' conversions applied as a
    result applies them): every column's value and type as the ORM's load gives them, the
    reference root as `REF_ROOT` reads it, and the session's own object where it holds one."""
    root = Path(instance.storage.root)
    (root / "f.txt").write_text("found")
    ll.Artifact(root / "f.txt", key="look/f.txt", description="d").save()
    ll.Artifact.reference("lid://look/r.txt", key="look/r.txt").save()
    keys = ["look/f.txt", "look/r.txt"]
    postgres = instance.dialect == "postgresql"
    lookup = (_lookup(postgres, True, ()), {"keys": keys if postgres else json.dumps(keys)})
    with instance.sessions.read() as ours, instance.sessions.read() as theirs:
        found = {row.key: (row, ref) for row, ref in Places(ours, [], instance.uid).found(lookup)}
        stmt = select(Artifact, REF_ROOT).where(Artifact.key.in_(keys))
        loaded = {row.key: (row, ref) for row, ref in theirs.execute(stmt)}
        assert set(found) == set(loaded) == set(keys)
        for key in keys:
            (mine, my_root), (orm, orm_root) = found[key], loaded[key]
            assert my_root == orm_root
            for column in Artifact.__table__.columns:
                value, expected = getattr(mine, column.key), getattr(orm, column.key)
                assert value == expected, column.key
                assert type(value) is type(expected), column.key
        assert found["look/r.txt"][1] is not None  # a reference storage's root
        again = ours.get(Artifact, found["look/f.txt"][0].id)
        assert again is found["look/f.txt"][0]  # the session's own record, as a load
        held = Places(ours, [], instance.uid).found(lookup)
        assert {id(row) for row, _ in held} == {id(row) for row, _ in found.values()}
