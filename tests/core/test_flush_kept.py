"""A BatchRecorder's flushes write on one connection kept checked out between them
(`db.session.KeptConnection`): no checkout a flush, yet what a checkout checked still holds
(a SQLite file deleted or replaced, a read-only instance, another instance's recorder, the
flush on another thread, a failed or retried flush), no transaction is left open between
flushes (another process writes and checkpoints meanwhile; PostgreSQL: never `idle in
transaction`), and the connection goes back at the workflow's end and closes with its engine
(`ll.disconnect()`)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import lakeline as ll
import mesh
import pytest
from lakeline.errors import DatabaseUnreachable, ReadOnlyInstance
from lakeline.instance import Instance, disconnect
from lakeline.lineage.recorder import BatchRecorder
from sqlalchemy import Engine, event, text

two_instances = mesh.two_instances
LONG = 600_000.0  # ms: never due by age in a test


@contextmanager
def checkouts(engine: Engine) -> Iterator[list[int]]:
    """The pool's checkouts of `engine` inside the block (one item each)."""
    seen: list[int] = []

    def count(*_: Any) -> None:
        seen.append(1)

    event.listen(engine, "checkout", count)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", count)


def _recorder(instance: Instance, root: Path) -> tuple[BatchRecorder, Any]:
    root.mkdir(exist_ok=True)
    rec = BatchRecorder("toy", root=root, steps=1000, ms=LONG, started_ms=LONG, instance=instance)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    return rec, wf


def _step(rec: BatchRecorder, wf: Any, name: str) -> Any:
    """A lone step queued: one input, one output."""
    root = Path(str(rec.root))
    (root / f"in-{name}.txt").write_text(f"in {name}")
    (root / f"out-{name}.txt").write_text(f"out {name}")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id=name)
    rec.use(step, f"in-{name}.txt")
    rec.produce(step, f"out-{name}.txt")
    rec.finish_step(step)
    return step


def _refs(instance: Instance) -> list[str]:
    """The engine refs of the steps recorded in `instance`, completed with their files."""
    with instance.sessions.read() as session:
        rows = session.execute(
            text(
                "SELECT r.engine_ref FROM runs r WHERE r.parent_id IS NOT NULL "
                "AND r.status = 'completed' AND EXISTS (SELECT 1 FROM run_inputs i "
                "WHERE i.run_id = r.id) AND EXISTS (SELECT 1 FROM artifacts a "
                "WHERE a.run_id = r.id)"
            )
        )
        return sorted(row[0] for row in rows)


def test_flushes_check_out_no_connection_and_give_it_back_at_the_end(
    instance: Instance, tmp_path: Path
) -> None:
    rec, wf = _recorder(instance, tmp_path / "files")
    pool = instance.engine.pool
    _step(rec, wf, "0")
    rec.flush()
    assert pool.checkedout() == 1  # type: ignore[attr-defined]  # kept
    with checkouts(instance.engine) as seen:
        for name in ("1", "2", "3"):
            _step(rec, wf, name)
            rec.flush()
    assert seen == []
    assert _refs(instance) == ["r/0", "r/1", "r/2", "r/3"]
    rec.finish_workflow(wf)
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    _step(rec, wf, "4")  # a recorder used after: kept again
    rec.flush()
    assert _refs(instance)[-1] == "r/4"


def test_no_transaction_stays_open_between_flushes(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process writes (waiting for no lock) and SQLite checkpoints the whole WAL
    between two flushes; PostgreSQL's session of the kept connection is idle between them."""
    rec, wf = _recorder(instance, tmp_path / "files")
    _step(rec, wf, "0")
    rec.flush()
    (tmp_path / "other.txt").write_text("other")
    script = (
        "import sys, lakeline as ll\n"
        "ll.connect('test')\n"
        "ll.Artifact(sys.argv[1], key='other.txt').save()\n"
        "from lakeline.instance import current\ni = current()\n"
        "if i.dialect == 'sqlite':\n"
        "    import sqlite3\n"
        "    c = sqlite3.connect(i.engine.url.database, timeout=0)\n"
        "    print(c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone())\n"
    )
    env = {**os.environ, "LAKELINE_SQLITE_BUSY_TIMEOUT": "0"}  # a lock held: fails at once
    if instance.dialect == "postgresql":
        with instance.engine.connect() as conn:
            states = conn.execute(
                text(
                    "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalars()
            assert "idle" in list(states)
        with instance.engine.connect() as conn:
            open_ones = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%'"
                )
            ).scalar_one()
        assert open_ones == 0
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "other.txt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    if instance.dialect == "sqlite":  # (busy, WAL frames, checkpointed): all of it, none busy
        assert done.stdout.split() == ["(0,", "0,", "0)"]
    _step(rec, wf, "1")
    rec.flush()  # on the kept connection, after the other's commit and the WAL's reset
    assert _refs(instance) == ["r/0", "r/1"]
    assert ll.Artifact.filter(key="other.txt").count() == 1
    assert ll.Artifact.filter(key="out-1.txt").count() == 1


def _sqlite_instance(tmp_path: Path) -> tuple[Instance, Path]:
    instance = ll.init(storage=tmp_path / "data", name="test")
    database = instance.engine.url.database
    assert database is not None
    return instance, Path(database)


def test_a_sqlite_file_replaced_between_flushes_is_written_as_it_is_now(
    lakeline_home: Path, tmp_path: Path
) -> None:
    """The kept connection still has the file it opened: the check a checkout ran sees it
    replaced (a backup restored) and the flush writes the file now at the path."""
    instance, db = _sqlite_instance(tmp_path)
    rec, wf = _recorder(instance, tmp_path / "files")
    _step(rec, wf, "a")
    rec.flush()
    backup = db.with_name("backup.db")
    with sqlite3.connect(db) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)
    source.close()
    copy.close()
    _step(rec, wf, "b")
    rec.flush()  # into the file replaced next
    outside = sqlite3.connect(db, timeout=0)
    assert outside.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    outside.close()
    os.replace(backup, db)
    _step(rec, wf, "c")
    rec.flush()
    assert _refs(instance) == ["r/a", "r/c"]  # read from the file at the path


def test_a_sqlite_file_deleted_between_flushes_fails_the_flush_clearly(
    lakeline_home: Path, tmp_path: Path
) -> None:
    instance, db = _sqlite_instance(tmp_path)
    rec, wf = _recorder(instance, tmp_path / "files")
    _step(rec, wf, "a")
    rec.flush()
    step = _step(rec, wf, "b")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with pytest.raises(DatabaseUnreachable, match="cannot open or read the database file"):
        rec.flush()
    assert step.run.id is None  # queued still
    assert not db.exists()  # no empty database made in its place
    with pytest.raises(DatabaseUnreachable):
        rec.flush()  # again: the batch is still there to write


def test_a_read_only_instance_still_refuses_writes(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    _lab, atlas = two_instances
    reader = ll.Instance("atlas")
    rec = BatchRecorder("toy", steps=1000, ms=LONG, instance=reader)
    with checkouts(reader.engine) as seen:
        with pytest.raises(ReadOnlyInstance, match="open read-only"):
            rec.start_workflow(key="p", engine_run_id="r")
        with rec._kept, pytest.raises(ReadOnlyInstance), reader.sessions.write():
            pass
        rec.flush()
    assert seen == []  # refused before any connection
    assert not ll.Run.using(atlas).filter(engine="toy").count()


def test_recorders_of_two_instances_keep_a_connection_each(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    """A recorder of `atlas` while `lab` is current, and one of `lab`: each flush writes to
    its own instance, on its own kept connection."""
    lab, atlas = two_instances
    theirs, their_wf = _recorder(atlas, tmp_path / "atlas-files")
    ours, our_wf = _recorder(lab, tmp_path / "lab-files")
    for name in ("0", "1", "2"):
        with checkouts(atlas.engine) as atlas_out, checkouts(lab.engine) as lab_out:
            _step(theirs, their_wf, f"a{name}")
            _step(ours, our_wf, f"l{name}")
            theirs.flush()
            ours.flush()
        if name != "0":
            assert atlas_out == [] and lab_out == []
    assert _refs(atlas) == ["r/a0", "r/a1", "r/a2"]
    assert _refs(lab) == ["r/l0", "r/l1", "r/l2"]


def test_flushes_on_a_timer_thread_and_the_engines_share_the_connection(
    instance: Instance, tmp_path: Path
) -> None:
    """sqlite3 refuses a connection used on another thread than its own unless SQLAlchemy's
    pysqlite dialect made it with check_same_thread=False (file databases: it does)."""
    rec, wf = _recorder(instance, tmp_path / "files")
    _step(rec, wf, "0")
    rec.flush()
    failed: list[BaseException] = []

    def timer() -> None:
        try:
            rec.flush_idle()
        except BaseException as exc:
            failed.append(exc)

    with checkouts(instance.engine) as seen:
        for name in ("1", "2", "3", "4"):
            _step(rec, wf, name)
            if name in ("1", "3"):
                thread = threading.Thread(target=timer)
                thread.start()
                thread.join()
            else:
                rec.flush()
    assert failed == []
    assert seen == []
    assert _refs(instance) == ["r/0", "r/1", "r/2", "r/3", "r/4"]


def test_a_retried_or_failed_flush_then_keeps_a_connection_again(
    instance: Instance, tmp_path: Path
) -> None:
    """A conflict the flush retries, then a flush that fails (its batch queued again and
    written by the next): each writes on a good connection, and the flushes after check out
    none again."""
    from faults import conflict, raise_once_at
    from sqlalchemy.exc import OperationalError

    rec, wf = _recorder(instance, tmp_path / "files")
    _step(rec, wf, "0")
    with raise_once_at("recorder.flush", conflict(instance)) as calls:
        rec.flush()
    assert len(calls) == 2
    lost = OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))
    step = _step(rec, wf, "1")
    with raise_once_at("recorder.flush", lost), pytest.raises(OperationalError):
        rec.flush()
    assert step.run.id is None
    rec.flush()
    with checkouts(instance.engine) as seen:
        _step(rec, wf, "2")
        rec.flush()
    assert seen == []
    assert _refs(instance) == ["r/0", "r/1", "r/2"]


def test_a_sqlite_writer_holding_the_lock_fails_a_flush_whose_batch_the_next_writes(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKELINE_SQLITE_BUSY_TIMEOUT", "0.05")
    instance, db = _sqlite_instance(tmp_path)
    rec, wf = _recorder(instance, tmp_path / "files")
    _step(rec, wf, "0")
    rec.flush()
    step = _step(rec, wf, "1")
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ll.errors.DatabaseLocked):
            rec.flush()
    finally:
        other.rollback()
        other.close()
    assert step.run.id is None
    rec.flush()
    assert _refs(instance) == ["r/0", "r/1"]


def _backends(instance: Instance) -> int:
    """Sessions of `instance`'s PostgreSQL database but this query's."""
    from lakeline.db.engine import make_engine

    url = instance.engine.url.render_as_string(hide_password=False)
    other = make_engine(url)
    try:
        with other.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        other.dispose()


def _open_files(path: Path) -> int:
    """This process's open descriptors of `path`."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # (closed meanwhile)
            found += os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_disconnecting_closes_the_kept_connection(instance: Instance, tmp_path: Path) -> None:
    rec, wf = _recorder(instance, tmp_path / "files")
    _step(rec, wf, "0")
    rec.flush()
    database = instance.engine.url.database
    if instance.dialect == "sqlite":
        assert database is not None
        assert _open_files(Path(database)) >= 1
    else:
        assert _backends(instance) >= 1
    disconnect()
    if instance.dialect == "sqlite":
        assert _open_files(Path(str(database))) == 0
    else:
        assert _backends(instance) == 0
    _step(rec, wf, "1")  # the engine disposed: a flush after connects again
    rec.flush()
    assert _refs(instance) == ["r/0", "r/1"]


def test_the_kept_session_carries_nothing_from_one_transaction_to_the_next(
    instance: Instance,
) -> None:
    """Its records are detached at each end, as a closed session's; what a rolled-back
    transaction queued for after its commit never runs."""
    from lakeline.db.session import after_commit
    from lakeline.models import User
    from sqlalchemy import inspect

    class Owner:
        pass

    owner = Owner()
    kept = instance.sessions.keep(owner)
    called: list[str] = []
    with kept:
        with pytest.raises(RuntimeError), instance.sessions.write() as session:
            after_commit(session, lambda: called.append("rolled back"))
            raise RuntimeError("a failed transaction")
        with instance.sessions.write() as first:
            after_commit(first, lambda: called.append("committed"))
            user = first.get(User, instance.user.id)
        assert called == ["committed"]
        assert user is not None and inspect(user).detached
        with instance.sessions.write() as second:
            assert second is first  # the same session, used again
            assert list(second.identity_map.values()) == []
            assert second.get(User, instance.user.id) is not user
    kept.release()
    assert instance.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_keeping_adds_no_connection_events_to_a_postgresql_engine(postgres_url: str) -> None:
    """The factory's `engine_disposed` listener (fired by `Engine.dispose` itself) leaves
    the engine's flag as it was: with it set, every Connection joined and fired the engine's
    connection events (~0.1-0.2M instructions a flush), and a PostgreSQL engine has none."""
    from lakeline.db.engine import make_engine
    from lakeline.db.session import SessionFactory

    engine = make_engine(postgres_url)
    try:
        assert not engine._has_events
        SessionFactory(engine)
        assert not engine._has_events
    finally:
        engine.dispose()
