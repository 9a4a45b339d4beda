"""Large saves whose files a worker process stores (artifacts/filework.py, offload.py): a real
`python -I` subprocess reads, hashes and stores each file while this process writes the
records, on SQLite (one thread) and PostgreSQL (the writer thread). Batches of 10 here."""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.access.audit import entries, verify
from lakeline.artifacts import offload, pipeline
from lakeline.artifacts.sweep import find_garbage, remove_garbage
from lakeline.artifacts.transfer import PARTIAL
from lakeline.errors import PathNotFound, StorageError
from lakeline.instance import Instance
from test_bulk_pipeline import files, objects

SMALL = """
from lakeline.artifacts import pipeline
pipeline.BATCH = pipeline.FIRST = 10
pipeline.MIN_FILES = 20
pipeline.spare_core = lambda: True
"""


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Saves of 20 files or more go to the worker, in batches of 10; returns what each
    large save's `job_for` answered (a job, or None: stored in this process)."""
    monkeypatch.setattr(pipeline, "BATCH", 10)
    monkeypatch.setattr(pipeline, "FIRST", 10)
    monkeypatch.setattr(pipeline, "MIN_FILES", 20)
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)  # the test machine is busy
    answered: list[object] = []
    real = offload.job_for

    def spied(*args: Any) -> offload.Job | None:
        job = real(*args)
        answered.append(job)
        return job

    monkeypatch.setattr(offload, "job_for", spied)
    yield answered
    offload.end()


def worker_pid() -> int:
    assert offload._worker is not None
    return offload._worker.process.pid


def reaped(pid: int) -> bool:
    """Whether child `pid` was waited for (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not os.path.exists(f"/proc/{pid}")
    return False


def test_the_worker_stores_what_a_save_in_one_process_stores(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same files saved in this process, then under other keys by the worker (whose
    objects are there: compared and taken), then new files by the worker and again in this
    process: the same hashes, store keys and objects; each hash is that of its object's
    bytes, each tag its object's mtime."""
    paths = files(tmp_path / "src", 27)
    (tmp_path / "src" / "empty.csv").write_bytes(b"")
    (tmp_path / "src" / "big.tar.gz").write_bytes(os.urandom(300_000))
    (tmp_path / "src" / "raw.bin").write_bytes(bytes(range(256)) * 3)
    paths += [tmp_path / "src" / n for n in ("empty.csv", "big.tar.gz", "raw.bin")]
    monkeypatch.setattr(pipeline, "OFFLOAD", False)
    alone = ll.save([ll.Artifact(p, key=f"one/{p.name}") for p in paths])
    monkeypatch.setattr(pipeline, "OFFLOAD", True)
    taken = ll.save([ll.Artifact(p, key=f"two/{p.name}") for p in paths])
    assert jobs[-1] is not None and len(jobs) == 2 and jobs[0] is None
    for a, b in zip(alone, taken, strict=True):
        assert (a.hash, a.store_key, a.store_tag, a.size) == (
            b.hash,
            b.store_key,
            b.store_tag,
            b.size,
        )
        assert b.created and b.key.startswith("two/")

    fresh = files(tmp_path / "new", 30, "new")
    by_worker = ll.save([ll.Artifact(p, key=f"three/{p.name}") for p in fresh])
    assert jobs[-1] is not None
    monkeypatch.setattr(pipeline, "OFFLOAD", False)
    in_process = ll.save([ll.Artifact(p, key=f"four/{p.name}") for p in fresh])
    root = Path(instance.storage.root)
    for artifact, again, path in zip(by_worker, in_process, fresh, strict=True):
        data = (root / artifact.store_key).read_bytes()
        assert data == path.read_bytes()
        assert artifact.hash == hashlib.sha256(data).hexdigest() == again.hash
        assert artifact.store_key == again.store_key and artifact.store_tag == again.store_tag
        assert artifact.store_tag == f"m:{(root / artifact.store_key).stat().st_mtime_ns}"
    assert ll.Artifact.filter().count() == 4 * 30 and verify(instance).ok
    assert not list(root.rglob(f"*{PARTIAL}"))


def test_a_file_missing_mid_batch_names_it_and_leaves_nothing(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """File 25 of 50 was removed after its Artifact was made: the save fails with the error a
    save in this process gives, no record, no audit entry, none of the 25 objects the worker
    stored before; the worker stays and the next save works."""
    paths = files(tmp_path / "src", 50)
    before = len(entries(instance))
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    paths[25].unlink()
    with pytest.raises(PathNotFound, match=str(paths[25])) as by_worker:
        ll.save(artifacts)
    assert jobs[-1] is not None
    pid = worker_pid()
    assert ll.Artifact.filter().count() == 0 and len(entries(instance)) == before
    assert objects(instance) == [] and all(a.id is None for a in artifacts)
    monkeypatch.setattr(pipeline, "OFFLOAD", False)
    with pytest.raises(PathNotFound) as in_process:
        ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths[:25]] + [artifacts[25]])
    assert str(by_worker.value) == str(in_process.value)
    monkeypatch.setattr(pipeline, "OFFLOAD", True)
    paths[25].write_text("back")
    assert len(ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])) == 50
    assert worker_pid() == pid and ll.Artifact.filter().count() == 50 and verify(instance).ok


def _blocking(paths: list[Path], at: int) -> None:
    """File `at` becomes a FIFO nobody writes: the worker's read of it waits for good."""
    paths[at].unlink()
    os.mkfifo(paths[at])


def test_a_worker_killed_mid_save_leaves_nothing_and_the_next_save_starts_another(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    """kill -9 of the worker once two batches are written (its read of file 25 hangs, so it
    is mid-job): the save fails and says so, nothing is saved, the objects it reported are
    removed and those it stored after (files 20-24, not reported yet) are the unreferenced
    objects `lakeline gc` finds; the worker is waited for; the next save starts another."""
    paths = files(tmp_path / "src", 50)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    _blocking(paths, 25)
    reached: list[int] = []

    def kill() -> None:
        reached.append(worker_pid())
        if len(reached) == 2:
            os.kill(reached[0], signal.SIGKILL)

    with (
        checkpoints.at("save.batch", kill),
        pytest.raises(StorageError, match=r"ended during the save \(killed by signal 9\)"),
    ):
        ll.save(artifacts)
    assert reaped(reached[0]) and ll.Artifact.filter().count() == 0
    left = objects(instance)
    assert len(left) <= 5
    expected = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths[20:25]}
    assert {p.name.split(".")[0] for p in left} <= expected
    garbage = find_garbage(instance, grace_s=0)
    assert sorted(g.store_key for g in garbage) == sorted(
        str(p.relative_to(instance.storage.root)) for p in left
    )
    remove_garbage(instance, garbage)
    assert objects(instance) == []

    paths[25].unlink()
    paths[25].write_text("a file again")
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert worker_pid() != reached[0] and len(saved) == 50 and verify(instance).ok


def test_ctrl_c_mid_save_leaves_nothing_and_keeps_the_worker(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    """An interrupt once two batches are written: nothing saved, every object the worker
    stored removed (it is stopped and tells which), and the same worker serves the next save."""
    paths = files(tmp_path / "src", 60)
    reached: list[int] = []

    def interrupt() -> None:
        reached.append(1)
        if len(reached) == 2:
            raise KeyboardInterrupt

    with checkpoints.at("save.batch", interrupt), pytest.raises(KeyboardInterrupt):
        ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    pid = worker_pid()
    assert ll.Artifact.filter().count() == 0 and objects(instance) == []
    assert len(ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])) == 60
    assert worker_pid() == pid and verify(instance).ok


def test_ctrl_c_while_the_worker_hangs_on_a_file_kills_it(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interrupt arrives while this process waits for a worker whose read hangs: the
    worker does not stop within `DRAIN_S`, so it is killed; what it reported is removed, the
    save raises the interrupt, the next save starts another worker."""
    monkeypatch.setattr(offload, "DRAIN_S", 0.2)
    paths = files(tmp_path / "src", 50)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    _blocking(paths, 25)
    reached: list[int] = []

    def alarm(*_: Any) -> None:
        raise KeyboardInterrupt

    def arm() -> None:
        reached.append(worker_pid())
        if len(reached) == 2:  # the next batch waits on the hanging read
            signal.setitimer(signal.ITIMER_REAL, 0.3)

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        with checkpoints.at("save.batch", arm), pytest.raises(KeyboardInterrupt):
            ll.save(artifacts)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert reaped(reached[0]) and ll.Artifact.filter().count() == 0
    assert len(objects(instance)) <= 5  # files 20-24: stored, never reported (`gc`)
    paths[25].unlink()
    paths[25].write_text("a file again")
    assert len(ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])) == 50
    assert worker_pid() != reached[0]


def test_no_worker_below_the_threshold_or_for_files_in_a_storage_root(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    offload.end()
    ll.save([ll.Artifact(p, key=f"few/{p.name}") for p in files(tmp_path / "src", 19)])
    assert offload._worker is None and jobs == []
    inside = files(Path(instance.storage.root) / "in-place", 25)
    saved = ll.save([ll.Artifact(p) for p in inside])
    assert jobs == [None] and all(a.store_key.startswith("in-place/") for a in saved)


def test_sqlite_pipelines_only_saves_short_enough_for_its_write_lock(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's write lock lasts a pipelined save's whole file work: past the files or bytes
    bound the save stores its files first (no worker job), and saves all the same."""
    offload.end()
    monkeypatch.setattr(pipeline, "SQLITE_MAX_BYTES", 20 * 6)  # twenty files of "file N"
    saved = ll.save([ll.Artifact(p, key=f"big/{p.name}") for p in files(tmp_path / "big", 25)])
    sqlite = instance.dialect == "sqlite"
    # SQLite: asked, not eligible (stored in this process); PostgreSQL holds no such lock
    assert len(jobs) == 1 and (jobs[0] is None) == sqlite
    assert len(saved) == 25 and all(a.id is not None for a in saved)
    monkeypatch.setattr(pipeline, "SQLITE_MAX_BYTES", 1 << 20)
    monkeypatch.setattr(pipeline, "SQLITE_MAX_FILES", 20)
    ll.save([ll.Artifact(p, key=f"many/{p.name}") for p in files(tmp_path / "many", 25)])
    assert len(jobs) == 2 and (jobs[1] is None) == sqlite
    monkeypatch.setattr(pipeline, "SQLITE_MAX_FILES", 25)
    ll.save([ll.Artifact(p, key=f"fits/{p.name}") for p in files(tmp_path / "fits", 25)])
    assert jobs[-1] is not None


def test_no_worker_for_remote_storage(
    s3_instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    offload.end()
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in files(tmp_path / "src", 25)])
    assert len(saved) == 25 and jobs == [None] and offload._worker is None


def pipes() -> set[str]:
    """The pipes this process has open ("pipe:[inode]"); the database's sockets and files,
    which `disconnect` closes too, are not counted."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            found.add(f"{fd} {target}")
    return found


def test_the_worker_ends_with_the_instance_leaving_no_descriptor_or_zombie(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    offload.end()
    gc.collect()  # an earlier test's unreachable Popen closes its pipes now, not mid-test
    before = pipes()
    ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in files(tmp_path / "src", 30)])
    pid = worker_pid()
    assert len(pipes() - before) == 2  # its two pipes' ends
    ll.disconnect()
    assert offload._worker is None and reaped(pid)
    assert not pipes() - before  # none left open (one of `before` closing is not ours)


def test_a_process_exits_cleanly_with_its_worker(
    instance: Instance, tmp_path: Path, lakeline_home: Path
) -> None:
    """A script saving with the worker and exiting without disconnecting: exit 0, the worker
    ended with it (not left running)."""
    files(tmp_path / "src", 30)
    script = SMALL + textwrap.dedent(f"""
        import lakeline as ll
        from pathlib import Path
        from lakeline.artifacts import offload
        ll.connect("test")
        paths = sorted(Path({str(tmp_path / "src")!r}).iterdir())
        ll.save([ll.Artifact(p, key=f"k/{{p.name}}") for p in paths])
        print(offload._worker.process.pid)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    assert not os.path.exists(f"/proc/{pid}")  # waited for at the script's exit
    assert ll.Artifact.filter().count() == 30


def test_two_processes_saving_the_same_files_at_once(
    instance: Instance, tmp_path: Path, lakeline_home: Path
) -> None:
    """Both save the same 60 files under the same keys, each with its worker: both succeed,
    one record a file, every object holds its record's bytes, no temporary copy left."""
    paths = files(tmp_path / "src", 60)
    script = SMALL + textwrap.dedent(f"""
        import lakeline as ll
        from pathlib import Path
        ll.connect("test")
        paths = sorted(Path({str(tmp_path / "src")!r}).iterdir())
        ll.save([ll.Artifact(p, key=f"k/{{p.name}}") for p in paths])
    """)
    running = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in running:
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
    root = Path(instance.storage.root)
    saved = ll.Artifact.filter(key__startswith="k/").all()
    assert len(saved) == 60
    by_key = {f"k/{p.name}": p for p in paths}
    for artifact in saved:
        data = (root / artifact.store_key).read_bytes()
        assert data == by_key[artifact.key].read_bytes()
        assert artifact.hash == hashlib.sha256(data).hexdigest()
        assert artifact.store_tag == f"m:{(root / artifact.store_key).stat().st_mtime_ns}"
    assert not list(root.rglob(f"*{PARTIAL}")) and verify(instance).ok


def test_sqlite_writers_wait_for_a_save_with_the_worker_within_the_busy_timeout(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    """SQLite: the save holds the write lock from its first batch to its commit (its writes
    overlap the worker's file work); another writer waits (busy_timeout) and then writes."""
    import sqlite3

    if instance.dialect != "sqlite":
        pytest.skip("PostgreSQL's writers of other keys never wait on each other")
    paths = files(tmp_path / "src", 50)
    outcome: list[object] = []
    started = threading.Event()

    def other_writer() -> None:
        other = sqlite3.connect(str(instance.engine.url.database), timeout=60)
        try:
            started.set()
            other.execute("BEGIN IMMEDIATE")
            outcome.append(other.execute("SELECT count(*) FROM artifacts").fetchone()[0])
            other.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            outcome.append(str(exc))
        finally:
            other.close()

    thread = threading.Thread(target=other_writer)
    reached: list[int] = []

    def start_other() -> None:
        reached.append(1)
        if len(reached) == 2:  # batch 1 written: the save holds the lock
            thread.start()
            started.wait()

    with checkpoints.at("save.batch", start_other):
        ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    thread.join()
    assert jobs[-1] is not None
    # it got the lock after the save's commit: it saw every record
    assert outcome == [50]
