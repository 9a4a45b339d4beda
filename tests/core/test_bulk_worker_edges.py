"""Edges of the file worker of large saves (artifacts/filework.py, offload.py), each a bug
found once: the worker's process state against the saving process's (umask, file name
encoding, the modules it imports), its lifetime (the saver killed, a worker that cannot
start or is killed early, ended twice), the objects it takes, odd sources. Real worker,
real databases."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
import test_bulk_worker as bulk
from lakeline import checkpoints
from lakeline.access.audit import verify
from lakeline.artifacts import offload, pipeline
from lakeline.errors import SourceChanged, StorageError
from lakeline.instance import Instance
from lakeline.storage.hashing import SMALL
from lakeline.storage.keys import OBJECTS_PREFIX, object_key
from test_bulk_worker import files

jobs = bulk.jobs  # the fixture: saves of 20 files go to the worker, in batches of 10


def modes(instance: Instance, saved: list[ll.Artifact]) -> set[int]:
    root = Path(instance.storage.root)
    return {stat.S_IMODE((root / a.store_key).stat().st_mode) for a in saved}


def test_objects_take_the_umask_the_saving_process_has_now(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process sets a stricter umask after its worker started (at its first large save):
    the worker's objects get the modes a save in this process gives, not those of the umask
    the worker inherited when it started."""
    ll.save([ll.Artifact(p, key=f"a/{p.name}") for p in files(tmp_path / "a", 25, "a")])
    assert jobs[-1] is not None
    previous = os.umask(0o077)
    try:
        by_worker = ll.save([ll.Artifact(p, key=f"b/{p.name}") for p in files(tmp_path / "b", 25)])
        assert jobs[-1] is not None
        monkeypatch.setattr(pipeline, "OFFLOAD", False)
        alone = ll.save([ll.Artifact(p, key=f"c/{p.name}") for p in files(tmp_path / "c", 25, "c")])
    finally:
        os.umask(previous)
    assert modes(instance, alone) == {0o600} == modes(instance, by_worker)


def test_the_saving_process_killed_mid_save_its_worker_ends_quietly(
    instance: Instance, tmp_path: Path, lakeline_home: Path
) -> None:
    """kill -9 of a process mid-save: its worker, finding its results' pipe closed, ends
    without a traceback on the terminal they shared (here: their stderr, read to its end,
    which the worker holds until it exits)."""
    files(tmp_path / "src", 2000)
    script = bulk.SMALL + textwrap.dedent(f"""
        import os
        from pathlib import Path
        import lakeline as ll
        from lakeline import checkpoints
        from lakeline.artifacts import offload
        ll.connect("test")
        paths = sorted(Path({str(tmp_path / "src")!r}).iterdir())

        def kill():
            print(offload._worker.process.pid, flush=True)
            os.kill(os.getpid(), 9)

        with checkpoints.at("save.batch", kill):
            ll.save([ll.Artifact(p, key=f"k/{{p.name}}") for p in paths])
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL and done.stdout.strip().isdigit()
    assert done.stderr == ""
    assert ll.Artifact.filter().count() == 0


def test_a_file_grown_large_is_not_stored_as_an_object_of_other_bytes(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    """A file grew past `SMALL` after its Artifact was made (the worker copies it instead of
    reading it) and an object of the same size but other bytes lies at its address (a
    damaged one no record references): it is replaced, not taken; the record's hash is its
    object's bytes'."""
    paths = files(tmp_path / "src", 25)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    grown = os.urandom(SMALL + 4096)
    paths[7].write_bytes(grown)
    digest = hashlib.sha256(grown).hexdigest()
    damaged = Path(instance.storage.root) / object_key(digest, ".txt")
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(bytes(len(grown)))
    saved = ll.save(artifacts)
    assert jobs[-1] is not None
    assert saved[7].hash == digest and saved[7].store_key == object_key(digest, ".txt")
    assert damaged.read_bytes() == grown
    assert verify(instance).ok


def test_a_worker_that_cannot_start_fails_one_save_not_every_one(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sys.executable` is no Python (an embedding host as uwsgi, a frozen app): the worker
    it starts ends before it answers. That save fails and says so, nothing saved; the
    process's next saves store their files themselves (each save starting another worker
    that dies, failing for good, is what it did)."""
    offload.end()
    monkeypatch.setattr(offload, "_unbootable", [])
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    paths = files(tmp_path / "src", 30)
    with pytest.raises(StorageError, match=r"ended before it answered \(exit 1\)"):
        ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert ll.Artifact.filter().count() == 0 and not offload.available()
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert len(saved) == 30 and jobs[-1] is None and verify(instance).ok


def test_a_file_turned_folder_is_named_by_the_error(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """File 4 of 30 became a folder after its Artifact was made: the save fails naming it
    (os.read's IsADirectoryError names no path), with or without the worker; nothing saved,
    no object left."""
    paths = files(tmp_path / "src", 30)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    paths[4].unlink()
    paths[4].mkdir()
    (paths[4] / "inside.txt").write_text("x")
    for offloaded in (True, False):
        monkeypatch.setattr(pipeline, "OFFLOAD", offloaded)
        with pytest.raises(SourceChanged, match=f"{paths[4]} is a folder now"):
            ll.save(artifacts)
        assert (jobs[-1] is not None) is offloaded
        assert ll.Artifact.filter().count() == 0 and not any(
            p.is_file() for p in (Path(instance.storage.root) / OBJECTS_PREFIX).rglob("*")
        )


def odd_files(folder: Path, n: int) -> list[str]:
    """`n` files whose names hold a byte UTF-8 cannot decode, a newline, quotes, a space,
    other scripts, 200 characters; as os.fsdecode gives them (lone surrogates)."""
    folder.mkdir()
    names = [b"latin\xe9", b"new\nline", b"q'\"uote s", "\u00e9\u4e2d".encode()]
    names += [b"x" * 200 + b"%d" % i for i in range(n - len(names))]
    paths = []
    for i, name in enumerate(names[:n]):
        path = os.path.join(os.fsencode(folder), name)
        with open(path, "wb") as handle:
            handle.write(b"odd %d" % i)
        paths.append(os.fsdecode(path))
    return paths


def test_files_with_undecodable_bytes_in_their_names_are_saved(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    """A file whose name is no UTF-8 (lone surrogates once decoded) saved under a key: by
    the worker (batches of 10 look for references at the sources' places in one statement)
    and in a small save; no statement sends the undecodable path (it failed with a bare
    UnicodeEncodeError from the driver)."""
    root = Path(instance.storage.root)
    for name, n in (("many", 30), ("few", 2)):
        paths = odd_files(tmp_path / name, n)
        saved = ll.save([ll.Artifact(p, key=f"{name}/{i}") for i, p in enumerate(paths)])
        assert (jobs[-1] is not None) if n >= 20 else len(jobs) == 1
        for artifact, path in zip(saved, paths, strict=True):
            data = (root / artifact.store_key).read_bytes()
            assert data == Path(path).read_bytes()
            assert artifact.hash == hashlib.sha256(data).hexdigest()
    assert ll.Artifact.filter().count() == 32 and verify(instance).ok


def test_the_worker_opens_the_files_this_process_names_under_a_latin1_locale(
    instance: Instance, tmp_path: Path, lakeline_home: Path
) -> None:
    """PYTHONUTF8=1 under a Latin-1 locale (as set where the locale cannot be changed): the
    process encodes file names as UTF-8; a worker started with `-I` (which drops PYTHONUTF8)
    encoded them as Latin-1, other bytes: "café" was not found ("removed after its Artifact
    was made"), or another file of that name was read."""
    locales = tmp_path / "locales"
    locales.mkdir()
    made = (
        subprocess.run(
            ["localedef", "-i", "en_US", "-f", "ISO-8859-1", str(locales / "en_US.ISO-8859-1")],
            capture_output=True,
        )
        if shutil.which("localedef")
        else None
    )
    if made is None or not (locales / "en_US.ISO-8859-1").is_dir():
        pytest.skip("no localedef to make a Latin-1 locale with")
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(30):
        (folder / f"caf\u00e9 {i}").write_text(f"caf\u00e9 {i}")
    script = bulk.SMALL + textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import lakeline as ll
        assert sys.getfilesystemencoding() == "utf-8" and sys.flags.utf8_mode
        ll.connect("test")
        paths = sorted(Path({str(folder)!r}).iterdir())
        ll.save([ll.Artifact(p, key=f"k/{{i}}") for i, p in enumerate(paths)])
    """)
    env = {**os.environ, "LOCPATH": str(locales), "LC_ALL": "en_US.ISO-8859-1", "PYTHONUTF8": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    root = Path(instance.storage.root)
    saved = ll.Artifact.filter(key__startswith="k/").all()
    assert len(saved) == 30
    for artifact in saved:
        data = (root / artifact.store_key).read_bytes()
        assert artifact.hash == hashlib.sha256(data).hexdigest()
        assert data.decode().startswith("caf\u00e9 ")


def test_an_object_dated_before_1970_is_taken(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    """An object already stored with the bytes of file 3 and an mtime before 1970 (a
    storage restored from an archive that dated it so): the worker takes it, its record's
    tag is that mtime (the result's mtime did not fit an unsigned field: the worker died
    with a struct.error, and every save of those bytes after it)."""
    paths = files(tmp_path / "src", 25)
    data = paths[3].read_bytes()
    there = Path(instance.storage.root) / object_key(hashlib.sha256(data).hexdigest(), ".txt")
    there.parent.mkdir(parents=True)
    there.write_bytes(data)
    os.utime(there, ns=(0, -(10**9)))
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert jobs[-1] is not None
    assert saved[3].store_tag == f"m:{-(10**9)}" and verify(instance).ok


def test_the_worker_imports_the_standard_library_before_the_folder_of_lakeline(
    instance: Instance, tmp_path: Path, lakeline_home: Path
) -> None:
    """lakeline imported from a folder after the standard library on sys.path (a
    site-packages) that also holds a module named as a standard one (a backport): the
    worker imports the same lakeline and the standard module, as this process does (it put
    that folder first on its path: the backport's `struct` failed it at start)."""
    import lakeline

    packages = tmp_path / "site-packages"
    packages.mkdir()
    (packages / "lakeline").symlink_to(Path(lakeline.__file__).parent)
    (packages / "struct.py").write_text('raise ImportError("a backport, not the standard one")')
    files(tmp_path / "src", 30)
    setup = textwrap.dedent(f"""
        import os, sys
        ours = os.path.realpath({str(Path(lakeline.__file__).parent.parent)!r})
        sys.path[:] = [p for p in sys.path if os.path.realpath(p) != ours]
        sys.path.append({str(packages)!r})
    """)
    script = (
        setup
        + bulk.SMALL
        + textwrap.dedent(f"""
        import lakeline as ll
        from pathlib import Path
        from lakeline.artifacts import offload
        assert ll.__file__.startswith({str(packages)!r}), ll.__file__
        ll.connect("test")
        paths = sorted(Path({str(tmp_path / "src")!r}).iterdir())
        ll.save([ll.Artifact(p, key=f"k/{{p.name}}") for p in paths])
        print(offload._worker.answered)
    """)
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.split() == ["True"], done.stderr
    assert ll.Artifact.filter(key__startswith="k/").count() == 30


def test_a_worker_ended_twice_closes_no_descriptor_of_the_process(
    instance: Instance, tmp_path: Path, jobs: list[object]
) -> None:
    """The worker killed mid-save (its pipes closed then), files opened after (the lowest
    free descriptors: its pipes' numbers), then `disconnect` ends the worker again: the
    files stay open (its pipes' numbers were closed a second time: two of them were)."""
    paths = files(tmp_path / "src", 50)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    bulk._blocking(paths, 25)
    reached: list[int] = []

    def kill() -> None:
        reached.append(bulk.worker_pid())
        if len(reached) == 2:
            os.kill(reached[0], signal.SIGKILL)

    with (
        checkpoints.at("save.batch", kill),
        pytest.raises(StorageError, match="ended during the save"),
    ):
        ll.save(artifacts)
    opened = [os.open(tmp_path / f"mine{i}", os.O_CREAT | os.O_WRONLY) for i in range(4)]
    try:
        ll.disconnect()
        for fd in opened:
            os.fstat(fd)  # EBADF when closed under us
    finally:
        for fd in opened:
            with contextlib.suppress(OSError):
                os.close(fd)


def test_a_worker_killed_before_it_answered_is_not_taken_for_one_that_cannot_start(
    instance: Instance, tmp_path: Path, jobs: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the worker hangs on the save's first file (nothing answered yet): it is
    killed; the process's next large save still goes to a worker (only a worker that exits
    by itself before answering means none can start here)."""
    monkeypatch.setattr(offload, "DRAIN_S", 0.2)
    monkeypatch.setattr(offload, "_unbootable", [])
    paths = files(tmp_path / "src", 30)
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    bulk._blocking(paths, 0)

    def alarm(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(KeyboardInterrupt):
            ll.save(artifacts)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert jobs[-1] is not None and ll.Artifact.filter().count() == 0
    assert offload.available()
    paths[0].unlink()
    paths[0].write_text("a file again")
    saved = ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert len(saved) == 30 and jobs[-1] is not None
