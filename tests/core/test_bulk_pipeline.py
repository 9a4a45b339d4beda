"""Large saves of small files in two threads (artifacts/pipeline.py, PostgreSQL): batch k's
records are written while batch k+1's files are read and stored, in one transaction. Batches
of 10 here, so a save of 50 files has 5: the same records as the one-thread path, all or
nothing."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from faults import conflict
from lakeline.access.audit import entries, verify
from lakeline.artifacts import newrows, pipeline, save, transfer
from lakeline.artifacts.transfer import PARTIAL
from lakeline.errors import StorageError
from lakeline.instance import Instance
from lakeline.storage.keys import OBJECTS_PREFIX
from sqlalchemy import inspect


class Batches(list[str]):
    """The batches written, as they are written: their sizes, "main:N" when written by the
    calling thread (not the writer's). `before(plans)` runs ahead of each (a test's fault)."""

    prepared = False  # the fixture's "prepared": batches of new files built by the saver

    @staticmethod
    def before(plans: Sequence[Any]) -> None:
        pass


@pytest.fixture(params=["prepared", "plans"])
def small_batches(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Batches:
    """Batches of 10 from 20 files on; returns the batches written (`Batches`). "prepared":
    new records are built by the saving thread once the writer's survey is read (waited for
    here: every batch of new files is prepared); "plans": never, the writer's `write_batch`
    writes every batch. PostgreSQL only: SQLite saves in one thread
    (test_sqlite_stays_writable_while_...)."""
    if instance.dialect != "postgresql":
        pytest.skip("saves are pipelined on PostgreSQL only")
    monkeypatch.setattr(pipeline, "BATCH", 10)
    monkeypatch.setattr(pipeline, "FIRST", 10)
    monkeypatch.setattr(pipeline, "MIN_FILES", 20)
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)  # the test machine is busy
    monkeypatch.setattr(pipeline, "OFFLOAD", False)  # this thread stores the files (the worker
    # process's save: test_bulk_worker.py)
    written = Batches()
    written.prepared = request.param == "prepared"
    real, real_write, real_hand_over = save.write_batch, newrows.write, pipeline.Writer.hand_over

    def counted(session: Any, instance: Instance, plans: Sequence[Any], *args: Any) -> Any:
        written.before(plans)
        result = real(session, instance, plans, *args)
        main = threading.current_thread() is threading.main_thread()
        written.append(f"main:{len(plans)}" if main else str(len(plans)))
        return result

    def prepared(session: Any, batch: newrows.Prepared) -> Any:  # built by the saving thread
        written.before(batch.plans)
        result = real_write(session, batch)
        written.append(str(len(batch.plans)))
        return result

    def hand_over(writer: pipeline.Writer, plans: Sequence[Any]) -> Any:
        if request.param == "plans":
            return plans
        assert writer.surveyed.wait(60)  # a bound for a broken build, not a timing
        return real_hand_over(writer, plans)

    monkeypatch.setattr(save, "write_batch", counted)
    monkeypatch.setattr(newrows, "write", prepared)
    monkeypatch.setattr(pipeline.Writer, "hand_over", hand_over)
    return written


def files(folder: Path, n: int, text: str = "file") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"f{i:02d}.txt"
        path.write_text(f"{text} {i}")
        paths.append(path)
    return paths


def objects(instance: Instance) -> list[Path]:
    """Every file in the storage's objects folder, temporary copies included."""
    return [p for p in (Path(instance.storage.root) / OBJECTS_PREFIX).rglob("*") if p.is_file()]


def test_a_pipelined_save_writes_the_records_of_a_one_thread_save(
    instance: Instance, tmp_path: Path, small_batches: Batches
) -> None:
    paths = files(tmp_path / "src", 50)
    before = len(entries(instance))
    saved = ll.save([ll.Artifact(p, key=f"bulk/{p.name}") for p in paths])
    assert small_batches == ["10"] * 5
    root = Path(instance.storage.root)
    for artifact, path in zip(saved, paths, strict=True):
        data = (root / artifact.store_key).read_bytes()
        assert data == path.read_bytes()
        assert artifact.hash == hashlib.sha256(data).hexdigest() and artifact.created
        assert artifact.store_tag == f"m:{(root / artifact.store_key).stat().st_mtime_ns}"
        assert inspect(artifact).detached and not inspect(artifact).modified
        assert ll.Artifact.get(artifact.uid).key == artifact.key
    assert len({a.id for a in saved}) == 50 and not list(root.rglob(f"*{PARTIAL}"))
    assert len(entries(instance)) == before + 50 and verify(instance).ok

    again = ll.save([ll.Artifact(p, key=f"bulk/{p.name}") for p in paths])
    assert [a.uid for a in again] == [a.uid for a in saved] and not any(a.created for a in again)
    # once a batch held only saved records, the rest waits for the files: fewer batches
    assert sum(int(n) for n in small_batches[5:]) == 50 and len(small_batches) <= 5 + 5
    assert ll.Artifact.filter(key__startswith="bulk/").count() == 50


def test_the_same_key_twice_takes_the_one_thread_path(
    instance: Instance, tmp_path: Path, small_batches: Batches
) -> None:
    """Batches that could find each other's records (a key or a file given twice) are not
    split: two versions of one key, as before."""
    paths = files(tmp_path / "src", 30)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    artifacts.append(ll.Artifact(files(tmp_path / "other", 1, "new")[0], key="k/f00.txt"))
    saved = ll.save(artifacts)
    assert small_batches == ["main:31"]
    assert saved[0].uid[:-4] == saved[-1].uid[:-4] != saved[0].uid and saved[-1].is_latest
    assert ll.Artifact.get(saved[0].uid).is_latest is False


def test_a_file_failing_while_the_batch_before_is_written_leaves_nothing(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 3's files fail to store once batches 1 and 2 are inserted (not committed): no
    record, no audit entry, no object, no temporary copy; the same save then succeeds."""
    paths = files(tmp_path / "src", 50)
    before = len(entries(instance))
    real, calls = transfer.create_local, []

    def failing(data: bytes, target: str) -> Any:
        calls.append(1)
        if len(calls) == 25:
            for _ in range(500):  # the writer has batches 1 and 2 inserted by now
                if len(small_batches) == 2:
                    break
                threading.Event().wait(0.01)
            assert small_batches == ["10", "10"]
            raise OSError("disk went away (injected)")
        return real(data, target)

    monkeypatch.setattr(transfer, "create_local", failing)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    with pytest.raises(StorageError, match="injected"):
        ll.save(artifacts)
    assert ll.Artifact.filter().count() == 0 and len(entries(instance)) == before
    assert objects(instance) == [] and all(a.id is None for a in artifacts)
    monkeypatch.setattr(transfer, "create_local", real)
    assert len(ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])) == 50
    assert ll.Artifact.filter().count() == 50 and verify(instance).ok


def test_a_statement_failing_in_the_writer_leaves_nothing(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer fails at batch 2 while files are still read: the remaining batches are
    not written (and the reader never waits on it), the error is the save's, nothing stays."""
    paths = files(tmp_path / "src", 80)

    def failing(plans: Sequence[Any]) -> None:
        if small_batches:
            small_batches.append("failed")
            raise RuntimeError("statement failed (injected)")

    monkeypatch.setattr(small_batches, "before", failing)
    with pytest.raises(RuntimeError, match="injected"):
        ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert small_batches == ["10", "failed"]
    assert ll.Artifact.filter().count() == 0 and objects(instance) == []


def test_a_conflict_in_the_writer_is_retried(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unique violation (another writer saved one of the keys meanwhile) is retried in one
    transaction, as for any save: every record, once."""
    paths = files(tmp_path / "src", 30)

    def conflicting(plans: Sequence[Any]) -> None:
        if small_batches == ["10"]:
            small_batches.append("failed")
            raise conflict(instance)

    monkeypatch.setattr(small_batches, "before", conflicting)
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert small_batches == ["10", "failed", "main:30"]  # the retry: one batch, here
    assert ll.Artifact.filter().count() == 30 and all(a.created for a in saved)
    assert verify(instance).ok


@pytest.mark.parametrize("code", ["40001", "XX000"])
def test_records_detached_while_the_commit_fails_are_transient_again(
    instance: Instance,
    tmp_path: Path,
    small_batches: Batches,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
) -> None:
    """The new records become detached records while the writer commits; the COMMIT itself
    fails (a deferred trigger raises): a serialization failure is retried in one transaction
    with the same objects (before they were transient again: "Given object must be
    transient"), any other error is the save's and leaves the objects transient, nothing saved."""
    from sqlalchemy import inspect as state
    from sqlalchemy import text

    paths = files(tmp_path / "src", 30)
    real_lock = pipeline.Writer._lock_objects

    def lock_then_fail_at_commit(writer: Any, session: Any, *, end: bool = False) -> bool:
        held = real_lock(writer, session, end=end)
        if not end:
            return held
        session.execute(text("CREATE TEMP TABLE boom (x int)"))
        session.execute(
            text(
                "CREATE FUNCTION pg_temp.boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION 'at commit (injected)' USING ERRCODE = '{code}'; END $$"
            )
        )
        session.execute(
            text(
                "CREATE CONSTRAINT TRIGGER boom AFTER INSERT ON boom DEFERRABLE INITIALLY "
                "DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.boom()"
            )
        )
        session.execute(text("INSERT INTO boom VALUES (1)"))
        monkeypatch.setattr(pipeline.Writer, "_lock_objects", real_lock)  # once
        return held

    monkeypatch.setattr(pipeline.Writer, "_lock_objects", lock_then_fail_at_commit)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    if code == "XX000":
        with pytest.raises(Exception, match="injected"):
            ll.save(artifacts)
        assert all(state(a).transient for a in artifacts) and ll.Artifact.filter().count() == 0
        artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    saved = ll.save(artifacts)
    assert small_batches[-1] == ("main:30" if code == "40001" else "10")
    assert all(state(a).detached and not state(a).modified for a in saved)
    assert sorted(a.id for a in saved) == sorted(a.id for a in ll.Artifact.filter().all())
    assert ll.Artifact.filter().count() == 30 and verify(instance).ok


def test_an_interrupt_while_the_writer_commits_keeps_the_saved_bytes(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (a real SIGINT to the main thread) while the caller waits for the writer to
    commit the last batch: the writer commits anyway, so the save must not remove the bytes
    its committed records point to (before: every stored object was deleted), and the
    caller's records are the saved ones. The interrupt is still raised, once the save is whole."""
    import signal

    from lakeline import checkpoints

    paths = files(tmp_path / "src", 30)
    handled, writers = threading.Event(), []

    def interrupt() -> None:  # the bytes checked: the transaction commits next
        writers.append(threading.current_thread())
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        handled.wait(30)  # until the main thread took the interrupt (a bound, not a timing)

    def on_sigint(signum: int, frame: Any) -> None:
        handled.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    try:
        with pytest.raises(KeyboardInterrupt), checkpoints.at("save.claimed", interrupt):
            ll.save(artifacts)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert handled.is_set() and len(writers) == 1
    writers[0].join()
    saved = ll.Artifact.filter().all()
    assert len(saved) == 30 and verify(instance).ok  # committed: the save is whole
    root = Path(instance.storage.root)
    for artifact in saved:
        source = tmp_path / "src" / artifact.key.split("/")[1]
        assert (root / artifact.store_key).read_bytes() == source.read_bytes()
    # the caller's records are the saved ones (before: transient, id None, as if unsaved)
    assert sorted(a.id for a in artifacts) == sorted(a.id for a in saved)
    assert all(inspect(a).detached and not inspect(a).modified for a in artifacts)
    assert [a.id for a in ll.save(artifacts)] == [a.id for a in artifacts]  # nothing new
    assert ll.Artifact.filter().count() == 30


def test_a_second_interrupt_while_the_save_aborts_leaves_no_writer_behind(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C twice: the first while the caller waits on the writer's full queue, the second
    while it hands the writer its abort. Before, the second left the writer thread waiting
    forever on its queue with its transaction open (on SQLite the write lock held: every
    later save in the process failed). Now the abort reaches the writer whatever arrives
    meanwhile: nothing saved, no thread left, the next save works."""
    import signal
    import sys

    paths = files(tmp_path / "src", 60)
    signals: list[int] = []
    handled = [threading.Event(), threading.Event()]
    writers: list[threading.Thread] = []
    main = threading.main_thread().ident or 0

    def main_waits() -> None:  # the main thread blocked on a lock (a queue or a join)
        for _ in range(3000):
            frame = sys._current_frames().get(main)
            names = set()
            while frame is not None:
                names.add(frame.f_code.co_name)
                frame = frame.f_back
            # a full queue's put waits in Condition.wait; Thread.join in a lock's acquire
            # (`_wait_for_tstate_lock`): no frame of its own is named "wait"
            if ("wait" in names and "put" in names) or "_wait_for_tstate_lock" in names:
                return
            threading.Event().wait(0.01)
        raise AssertionError("the main thread never waited")

    def held(plans: Sequence[Any]) -> None:
        if not writers:
            writers.append(threading.current_thread())
            for event in handled:
                main_waits()  # 1st: on the full queue; 2nd: handing over the abort
                signal.pthread_kill(main, signal.SIGINT)
                assert event.wait(30)

    def on_sigint(signum: int, frame: Any) -> None:
        signals.append(signum)
        handled[len(signals) - 1].set()
        raise KeyboardInterrupt

    monkeypatch.setattr(small_batches, "before", held)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with pytest.raises(KeyboardInterrupt):
            ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(signals) == 2
    writers[0].join(60)  # a bound for a broken build, not a timing
    assert not writers[0].is_alive()
    assert ll.Artifact.filter().count() == 0 and objects(instance) == []
    monkeypatch.setattr(small_batches, "before", Batches.before)
    assert len(ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])) == 60


def test_a_writer_failing_for_good_stops_the_reading(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement failing in the writer with an error no retry can cure: the caller stops
    reading and storing files at its next batch (the queue holds two), instead of storing
    every remaining file (hours for a large save) only to remove them all and fail."""
    paths = files(tmp_path / "src", 200)
    real, stored = transfer.create_local, []

    def failing(plans: Sequence[Any]) -> None:
        if small_batches:
            small_batches.append("failed")
            raise RuntimeError("statement failed (injected)")

    def counting(data: bytes, target: str) -> Any:
        stored.append(target)
        return real(data, target)

    monkeypatch.setattr(small_batches, "before", failing)
    monkeypatch.setattr(transfer, "create_local", counting)
    with pytest.raises(RuntimeError, match="injected"):
        ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    # batch 2 failed; 3 and 4 queued at most, 5 stored while the writer drained them
    assert small_batches == ["10", "failed"] and len(stored) <= 60
    assert ll.Artifact.filter().count() == 0 and objects(instance) == []


def test_sqlite_stays_writable_while_a_large_save_reads_its_files(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has one writer: a pipelined save held the write lock from its first batch to
    its last file, so every other writer (another process, a Prefect task's thread) waited
    for the whole read and failed after the busy timeout (60 s) on a long one. On SQLite a
    save reads its files before it takes the lock: another writer gets it meanwhile."""
    import sqlite3

    if instance.dialect != "sqlite":
        pytest.skip("PostgreSQL's writers of other keys never wait on each other")
    monkeypatch.setattr(pipeline, "BATCH", 10)
    monkeypatch.setattr(pipeline, "MIN_FILES", 20)
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)
    monkeypatch.setattr(pipeline, "OFFLOAD", False)  # with the worker: test_bulk_worker.py
    paths = files(tmp_path / "src", 50)
    real, calls, free = transfer.create_local, [], []
    written: list[int] = []
    counted = save.write_batch

    def counting(session: Any, instance: Instance, plans: Sequence[Any], *args: Any) -> Any:
        result = counted(session, instance, plans, *args)
        written.append(len(plans))
        return result

    def other_writer(data: bytes, target: str) -> Any:
        calls.append(1)
        if len(calls) == 35:  # batch 4's files: batches 1-2 written (if written meanwhile)
            for _ in range(500):
                if len(written) >= 2 or not pipeline.eligible(instance, artifacts):
                    break
                threading.Event().wait(0.01)
            other = sqlite3.connect(str(instance.engine.url.database), timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                free.append(True)
            except sqlite3.OperationalError as exc:
                free.append(str(exc))  # type: ignore[arg-type]
            finally:
                other.close()
        return real(data, target)

    monkeypatch.setattr(save, "write_batch", counting)
    monkeypatch.setattr(transfer, "create_local", other_writer)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    assert len(ll.save(artifacts)) == 50
    assert free == [True]
    assert ll.Artifact.filter().count() == 50 and verify(instance).ok


def test_the_second_thread_is_taken_below_two_runnable_tasks_per_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The threshold measured on 2 cores (docs/scaling.md): new files gained with the second
    thread at loads 2-4 as well (it was taken only at load <= 1), re-saves lost from 4 on."""
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda _pid: {0, 1})
    taken = {}
    for load in (0.2, 1.0, 1.5, 3.0, 3.9, 4.0, 6.5):
        monkeypatch.setattr(pipeline.os, "getloadavg", lambda load=load: (load, load, load))
        taken[load] = pipeline.spare_core()
    assert taken == {0.2: True, 1.0: True, 1.5: True, 3.0: True, 3.9: True, 4.0: False, 6.5: False}


def test_no_load_average_takes_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the load average cannot be read (no os.getloadavg, as on Windows, or an OSError
    where the platform has none to give), the save takes one thread instead of failing; a
    load of 0 takes two."""

    def unobtainable() -> tuple[float, float, float]:
        raise OSError("Load averages are unobtainable")

    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert pipeline.spare_core()
    monkeypatch.setattr(pipeline.os, "getloadavg", unobtainable)
    assert not pipeline.spare_core()
    monkeypatch.delattr(pipeline.os, "getloadavg")
    assert not pipeline.spare_core()


def test_the_first_batch_is_smaller(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer idles until the first batch is stored, so that batch is smaller (`FIRST`);
    the objects of every batch are checked once: by the saving thread while the writer writes
    when every batch is prepared (`claim` not called: none is missing), else by `claim`."""
    monkeypatch.setattr(pipeline, "FIRST", 5)
    paths = files(tmp_path / "src", 30)
    real_claim, claimed = pipeline.claim, []

    def counted(*args: Any, **options: Any) -> None:
        claimed.append(len(args[2]))
        real_claim(*args, **options)

    monkeypatch.setattr(pipeline, "claim", counted)
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert small_batches == ["5", "10", "10", "5"]
    assert claimed == ([] if small_batches.prepared else [30])
    assert ll.Artifact.filter().count() == 30 and all(a.created for a in saved)
    assert verify(instance).ok


COMPARED_OUT = {"id", "uid", "stem", "key", "created_at"}  # drawn, given, or the clock's


def test_prepared_records_are_the_records_write_batch_writes(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records the saving thread builds (artifacts/newrows.py) hold every column as the
    one-thread save's `write_batch` writes them, from the same files under other keys; their
    audit entries verify and the objects are the same."""
    from lakeline.models import Artifact

    paths = files(tmp_path / "src", 30)
    piped = ll.save([ll.Artifact(p, key=f"piped/{p.name}") for p in paths])
    assert small_batches == ["10"] * 3
    monkeypatch.setattr(pipeline, "spare_core", lambda: False)  # one thread: `write_batch`
    alone = ll.save([ll.Artifact(p, key=f"alone/{p.name}") for p in paths])
    assert small_batches[3:] == ["main:30"]
    columns = [c.key for c in Artifact.__table__.columns if c.key not in COMPARED_OUT]
    for a, b in zip(piped, alone, strict=True):
        a, b = ll.Artifact.get(a.uid), ll.Artifact.get(b.uid)
        assert {c: getattr(a, c) for c in columns} == {c: getattr(b, c) for c in columns}
        assert a.uid.endswith("0000") and a.stem != b.stem and a.is_latest
    assert len({a.stem for a in piped}) == 30
    assert verify(instance).ok


def test_batches_with_a_key_held_are_written_from_their_plans(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys some record holds (the writer's survey read them): their batches are written by
    `write_batch` (a new version of that record), the others prepared; one latest per key."""
    old = files(tmp_path / "old", 30, "old")
    before = ll.save([ll.Artifact(old[i], key=f"k/f{i:02d}.txt") for i in (5, 25)])
    small_batches.clear()  # that save's
    prepared: list[int] = []
    real = newrows.write

    def counted(session: Any, batch: newrows.Prepared) -> Any:
        prepared.append(len(batch.plans))
        return real(session, batch)

    monkeypatch.setattr(newrows, "write", counted)
    paths = files(tmp_path / "src", 50)
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert small_batches == ["10"] * 5
    assert prepared == ([10] * 3 if small_batches.prepared else [])
    for i, held in zip((5, 25), before, strict=True):
        assert saved[i].stem == held.stem and saved[i].uid != held.uid and saved[i].is_latest
        assert ll.Artifact.get(held.uid).is_latest is False
    assert ll.Artifact.filter(is_latest=True).count() == 50
    assert ll.Artifact.filter(is_latest=None).count() == 52 and verify(instance).ok


def test_a_reference_storage_in_the_way_writes_plans(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reference recorded at a local path (its reference storage exists): no batch is
    prepared, and the file saved at that path fills the reference in (one record)."""
    paths = files(tmp_path / "src", 30)
    reference = ll.Artifact.reference(paths[17], key="k/f17.txt").save()
    small_batches.clear()  # that save's
    prepared: list[int] = []
    real = newrows.write
    monkeypatch.setattr(newrows, "write", lambda s, b: prepared.append(len(b.plans)) or real(s, b))
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert small_batches == ["10"] * 3 and prepared == []
    assert saved[17].uid == reference.uid and ll.Artifact.get(reference.uid).available
    assert ll.Artifact.filter().count() == 30 and verify(instance).ok


def test_a_key_of_a_later_batch_waits_for_the_save(
    instance: Instance, tmp_path: Path, small_batches: Batches
) -> None:
    """The writer locks every key of the save before its first batch (what the prepared
    batches rely on: nobody writes those keys before the commit): another save of a key of
    batch 3, started once batch 1 is stored, waits for the commit and is its next version."""
    from lakeline import checkpoints
    from statements import until_waiting_on_a_lock

    paths = files(tmp_path / "src", 30)
    other = files(tmp_path / "other", 1, "other")[0]
    outcome: list[Any] = []
    threads: list[threading.Thread] = []

    def second() -> None:
        try:
            outcome.append(ll.Artifact(other, key="k/f25.txt").save())
        except Exception as exc:  # the assertion below says what
            outcome.append(exc)

    def start_once() -> None:
        if not threads:
            threads.append(threading.Thread(target=second))
            threads[0].start()
            until_waiting_on_a_lock(instance.engine, threads[0], "the other save of k/f25.txt")

    with checkpoints.at("save.batch", start_once):
        saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    threads[0].join(60)
    assert not threads[0].is_alive() and isinstance(outcome[0], ll.Artifact)
    assert outcome[0].stem == saved[25].stem and outcome[0].is_latest
    assert ll.Artifact.get(saved[25].uid).is_latest is False
    assert small_batches[:3] == ["10"] * 3 and verify(instance).ok


def test_an_object_removed_before_the_objects_are_locked_is_stored_again(
    instance: Instance, tmp_path: Path, small_batches: Batches
) -> None:
    """An object of a written batch removed once every file is stored (what a `gc` could do
    before the save holds the objects' locks): the saving thread's check of the objects finds
    it gone, `claim` says which record needs it, and the save is retried, storing it again;
    every record's object holds its bytes."""
    from lakeline import checkpoints

    paths = files(tmp_path / "src", 30)
    root = Path(instance.storage.root)
    removed: list[Path] = []

    def remove_one() -> None:
        if not removed:
            target = next(p for p in objects(instance) if p.read_bytes() == b"file 3")
            target.unlink()
            removed.append(target)

    with checkpoints.at("save.stored", remove_one):
        saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert removed and removed[0].read_bytes() == b"file 3"  # stored again
    assert small_batches[:3] == ["10"] * 3 and small_batches[3:] == ["main:30"]  # the retry
    for artifact, path in zip(saved, paths, strict=True):
        assert (root / artifact.store_key).read_bytes() == path.read_bytes()
    assert ll.Artifact.filter().count() == 30 and verify(instance).ok


def test_the_survey_reads_exactly_the_keys_held(instance: Instance, tmp_path: Path) -> None:
    """The writer's survey sends the keys as one text of lines and reads the held ones back
    so: keys with commas, braces, quotes, spaces, non-ASCII letters and one a prefix of
    another come back exactly; keys that cannot be lines (a line break, a NUL) give no survey
    (every batch then goes to `write_batch`, which says what is wrong)."""
    if instance.dialect != "postgresql":
        pytest.skip("the survey is the PostgreSQL pipeline's")
    odd = ["a,b {c}.txt", "q\"uote's.txt", "dir/sp ace.txt", "é/ü.txt"]
    for i, key in enumerate(odd):
        ll.Artifact(files(tmp_path / f"s{i}", 1, key)[0], key=key).save()
    asked = [*odd, "dir/sp", "dir/sp ace.txt.txt", "never/saved.txt"]
    with instance.sessions.write() as session:
        found = newrows.survey(session, asked, ["/"])
        assert found is not None and found.held == frozenset(odd)
        assert found.references is False
        assert newrows.survey(session, ["a\nb.txt", "c.txt"], []) is None
        assert newrows.survey(session, ["a\x00b.txt"], []) is None


def test_a_delete_of_a_resaved_key_meanwhile_does_not_deadlock(
    instance: Instance, tmp_path: Path, small_batches: Batches
) -> None:
    """A delete of the record of a key the save's last batch writes a new version of, while
    that batch is written: the delete removes the record, then locks its object; the batch
    reads that record as the key's latest and marks it so no longer. Written under the
    objects' locks, the batch waited for the delete's row while the delete waited for the
    save's objects: a deadlock, the delete failing. The objects are locked early only when
    every batch is new records (no row of another to wait for); both now succeed."""
    from sqlalchemy import text

    paths = files(tmp_path / "src", 30)
    (tmp_path / "old.txt").write_bytes(paths[3].read_bytes())  # an object of the save
    old = ll.Artifact(tmp_path / "old.txt", key="k/f25.txt").save()
    small_batches.clear()  # that save's
    outcome: list[Any] = []
    threads: list[threading.Thread] = []

    def delete() -> None:
        try:
            ll.Artifact.get(old.uid).delete()
            outcome.append("deleted")
        except Exception as exc:  # the assertion below says what
            outcome.append(exc)

    def delete_once(plans: Sequence[Any]) -> None:
        if not threads and any(p.artifact.key == "k/f25.txt" for p in plans):
            threads.append(threading.Thread(target=delete))
            threads[0].start()
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            with instance.engine.connect() as conn:  # the delete's end, or its wait
                while threads[0].is_alive() and not conn.execute(waiting).scalar():
                    conn.rollback()
                    threads[0].join(0.05)

    small_batches.before = delete_once  # type: ignore[method-assign]
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    threads[0].join(60)
    assert not threads[0].is_alive() and outcome == ["deleted"]
    assert saved[25].is_latest and ll.Artifact.filter(key="k/f25.txt").count() == 1
    root = Path(instance.storage.root)
    for artifact, path in zip(saved, paths, strict=True):  # the deleted one's object: stored
        assert (root / artifact.store_key).read_bytes() == path.read_bytes()
    assert ll.Artifact.filter(is_latest=True).count() == 30 and verify(instance).ok


def test_objects_are_checked_early_once_the_batches_of_plans_are_written(
    instance: Instance, tmp_path: Path, small_batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first batch handed over as plans (its survey not read yet), the others prepared: no
    batch of plans is written under the objects' locks, taken once it is written; the saving
    thread then checks the objects (`claim` not called)."""
    if not small_batches.prepared:
        pytest.skip("the prepared batches' case")
    fixture_hand_over, real_claim = pipeline.Writer.hand_over, pipeline.claim
    writers: list[pipeline.Writer] = []
    claimed: list[int] = []
    locked: list[tuple[int, bool]] = []  # (batch size, whether the objects were locked)

    def first_as_plans(writer: pipeline.Writer, plans: Sequence[Any]) -> Any:
        writers.append(writer)
        return plans if len(writers) == 1 else fixture_hand_over(writer, plans)

    monkeypatch.setattr(pipeline.Writer, "hand_over", first_as_plans)
    monkeypatch.setattr(pipeline, "claim", lambda *a, **o: claimed.append(1) or real_claim(*a, **o))

    def before(plans: Sequence[Any]) -> None:
        locked.append((len(plans), writers[0].objects_locked))

    small_batches.before = before  # type: ignore[method-assign]
    paths = files(tmp_path / "src", 30)
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert small_batches == ["10"] * 3 and claimed == [] and writers[0].objects_locked
    assert locked[0] == (10, False)  # the batch of plans
    assert ll.Artifact.filter().count() == 30 and all(a.created for a in saved)
    assert verify(instance).ok
