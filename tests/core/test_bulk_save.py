"""The bulk save path: paths resolved by the kernel, small files written and fingerprinted in
one go, records filled without attribute events: the same records as before, clean."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from faults import run_paused
from lakeline.artifacts.transfer import PARTIAL, write_local
from lakeline.cli import cli
from lakeline.errors import PathNotFound, UnsupportedPath
from lakeline.instance import Instance
from lakeline.storage import roots
from lakeline.storage.hashing import SMALL
from lakeline.storage.keys import object_key
from lakeline.storage.roots import resolve_existing
from sqlalchemy import inspect


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """real/sub/f.txt, a symlink `link` -> real, and a symlink loop `loop` <-> `loop2`."""
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "sub" / "f.txt").write_text("bytes")
    (tmp_path / "real" / "top.txt").write_text("top")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    return tmp_path


@pytest.mark.parametrize("kernel", [True, False], ids=["proc-fd", "realpath"])
@pytest.mark.parametrize(
    "given",
    [
        "link/sub/f.txt",  # through a symlinked folder
        "real/sub/f.txt/",  # a trailing slash on a file: realpath drops it
        "link/sub/../top.txt",  # `..` after a symlink: the target's parent
        "link/sub",  # a folder
        "RELATIVE:link/sub/f.txt",  # relative to the working directory
        "FILE:link/sub/f.txt",  # a file:// URL
    ],
)
def test_resolve_existing_agrees_with_realpath(
    tree: Path, monkeypatch: pytest.MonkeyPatch, given: str, kernel: bool
) -> None:
    monkeypatch.setattr(roots, "_PROC_FD", kernel and roots._PROC_FD)
    if given.startswith("RELATIVE:"):
        monkeypatch.chdir(tree)
        text = given.removeprefix("RELATIVE:")
    elif given.startswith("FILE:"):
        text = f"file://{tree}/{given.removeprefix('FILE:')}"
    else:
        text = f"{tree}/{given}"
    expected = os.path.realpath(text.removeprefix("file://"))
    location, st = resolve_existing(text)
    assert location == expected
    assert (st.st_ino, st.st_mode) == (os.stat(expected).st_ino, os.stat(expected).st_mode)


@pytest.mark.parametrize("kernel", [True, False], ids=["proc-fd", "realpath"])
def test_resolve_existing_refuses_missing_paths_and_loops(
    tree: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    monkeypatch.setattr(roots, "_PROC_FD", kernel and roots._PROC_FD)
    with pytest.raises(FileNotFoundError):
        resolve_existing(str(tree / "link" / "nothing.txt"))
    with pytest.raises(OSError) as raised:
        resolve_existing(str(tree / "real" / "top.txt" / "below"))
    assert raised.value.errno == errno.ENOTDIR
    if kernel:
        with pytest.raises(OSError) as raised:
            resolve_existing(str(tree / "loop"))
        assert raised.value.errno == errno.ELOOP
    else:
        with pytest.raises(UnsupportedPath, match="symlink loop"):
            resolve_existing(str(tree / "loop"))


def test_resolve_existing_without_proc_falls_back_to_realpath(tree: Path, tmp_path: Path) -> None:
    """Where /proc/self/fd cannot be read (not mounted, hidden in a sandbox) the path is
    resolved by realpath instead of failing with the readlink's OSError."""
    no_proc = str(tmp_path / "no-proc")  # a folder that does not exist: readlink fails
    for path in (tree / "link" / "sub" / "f.txt", tree / "real" / "top.txt", tree / "link"):
        resolved, st = resolve_existing(str(path), proc_fd=no_proc)
        assert resolved == os.path.realpath(path)
        assert (st.st_ino, st.st_mode) == (os.stat(path).st_ino, os.stat(path).st_mode)
    with pytest.raises(FileNotFoundError):
        resolve_existing(str(tree / "link" / "nothing.txt"), proc_fd=no_proc)


def test_artifact_paths_through_the_kernel(instance: Instance, tree: Path) -> None:
    """`Artifact(path)` records the resolved location; bad paths get their one-line error."""
    artifact = ll.Artifact(tree / "link" / "sub" / "f.txt", key="k/f.txt")
    assert artifact._source == str(tree / "real" / "sub" / "f.txt")
    with pytest.raises(UnsupportedPath, match="symlink loop"):
        ll.Artifact(tree / "loop", key="k/loop")
    with pytest.raises(PathNotFound, match="does not exist"):
        ll.Artifact(tree / "link" / "gone.txt", key="k/gone.txt")


def test_write_local_makes_the_folder_and_returns_the_stat(tmp_path: Path) -> None:
    target = tmp_path / "objects" / "ab" / "abc.txt"
    written = write_local(b"x" * 100, str(target))
    assert target.read_bytes() == b"x" * 100
    st = os.stat(target)
    assert (written.st_size, written.st_mtime_ns, written.st_ino) == (
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
    )
    assert [p.name for p in target.parent.iterdir()] == ["abc.txt"]  # no .partial left
    with pytest.raises(IsADirectoryError):
        write_local(b"y", str(tmp_path / "objects"))
    assert not [p for p in (tmp_path / "objects").iterdir() if p.name.endswith(PARTIAL)]


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
def test_create_local_writes_a_new_object_and_leaves_one_there(
    tmp_path: Path, unnamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create_local writes where nothing is (its folder made, no .partial left, the stat
    its tag is made of) and leaves what is there as it is: None, to be compared. "named":
    as on a filesystem without unnamed files (O_TMPFILE), a named file renamed."""
    from lakeline.artifacts import transfer

    if unnamed and not transfer._unnamed.ok:
        pytest.skip("no O_TMPFILE or /proc here")
    monkeypatch.setattr(transfer._unnamed, "ok", unnamed)
    target = tmp_path / "objects" / "ab" / "abc.txt"
    written = transfer.create_local(b"x" * 100, str(target))
    assert written is not None and target.read_bytes() == b"x" * 100
    st = os.stat(target)
    assert (written.st_size, written.st_mtime_ns, written.st_ino) == (
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
    )
    assert transfer.create_local(b"y" * 100, str(target)) is None
    assert target.read_bytes() == b"x" * 100 and os.stat(target).st_ino == st.st_ino
    assert [p.name for p in target.parent.iterdir()] == ["abc.txt"]  # nothing else left
    assert transfer._unnamed.ok is unnamed


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
def test_new_saved_and_changed_objects_in_one_save(
    instance: Instance, tmp_path: Path, unnamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One save of files whose objects are new, stored already (a record's), and left with
    changed bytes of the same size, in an order that has upload() guess wrong both ways
    (written where something is; looked for where nothing is): each record holds its own
    bytes at its address, verify passes."""
    from lakeline.artifacts import transfer

    if unnamed and not transfer._unnamed.ok:
        pytest.skip("no O_TMPFILE or /proc here")
    monkeypatch.setattr(transfer._unnamed, "ok", unnamed)
    texts = {f"{i}.txt": f"bytes of file {i:03d}" for i in range(8)}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    ll.Artifact(tmp_path / "1.txt", key="old/1.txt").save()
    ll.Artifact(tmp_path / "2.txt", key="old/2.txt").save()
    gone = ll.Artifact(tmp_path / "5.txt", key="old/5.txt").save()
    changed = Path(instance.storage.root) / gone.store_key
    gone.delete(permanent_bytes=False)
    changed.write_text("bytes of file XXX")  # the same size, other bytes
    saved = ll.save([ll.Artifact(tmp_path / n, key=f"new/{n}") for n in texts])
    for artifact, text in zip(saved, texts.values(), strict=True):
        stored = Path(instance.storage.root) / artifact.store_key
        assert stored.read_text() == text
        assert artifact.store_tag == f"m:{stored.stat().st_mtime_ns}"
    assert CliRunner().invoke(cli, ["verify", "--all"]).exit_code == 0


def test_temporary_names_are_unique_in_a_process_and_its_fork(tmp_path: Path) -> None:
    """write_local's temporary names are drawn without a system call each (a random part
    per process and a counter): a forked child (a worker of a process pool) must not draw
    the parent's next names, or two processes storing the same object would both create
    the same .partial and one save would fail (O_EXCL)."""
    from lakeline.artifacts import transfer

    names = {transfer._tmp_name() for _ in range(1000)}
    assert len(names) == 1000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next names, to the parent
        os.write(write, " ".join(transfer._tmp_name() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    assert status == 0 and len(child) == 3
    parent = [transfer._tmp_name() for _ in range(3)]
    assert not set(child) & (set(parent) | names)
    target = tmp_path / "ab" / "abc.txt"  # and the names still make dot files beside it
    write_local(b"x", str(target))
    assert [p.name for p in target.parent.iterdir()] == ["abc.txt"]


def test_bulk_save_records_are_the_stored_bytes_and_clean(
    instance: Instance, tmp_path: Path
) -> None:
    """A batch beyond the small-save fold: each record's hash, size and store tag are those
    of its stored object, the objects are clean detached records, edits save, and saving the
    same files again with new objects returns the same records."""
    folder = tmp_path / "files"
    folder.mkdir()
    paths = []
    for i in range(40):
        path = folder / f"f{i:02d}.txt"
        path.write_text(f"file {i} of a bulk save " * 4)
        paths.append(path)
    saved = ll.save([ll.Artifact(p, key=f"bulk/{p.name}") for p in paths])
    root = Path(instance.storage.root)
    for artifact, path in zip(saved, paths, strict=True):
        stored = root / artifact.store_key
        data = stored.read_bytes()
        assert data == path.read_bytes()
        assert artifact.hash == hashlib.sha256(data).hexdigest()
        assert artifact.size == len(data)
        assert artifact.store_tag == f"m:{stored.stat().st_mtime_ns}"
        state = inspect(artifact)
        assert state.detached and not state.modified
        assert Path(artifact.cache()).read_bytes() == data  # the read check trusts the tag
    assert not list(root.rglob(f"*{PARTIAL}"))

    again = ll.save([ll.Artifact(p, key=f"bulk/{p.name}") for p in paths])
    assert [a.id for a in again] == [a.id for a in saved]
    assert [a.uid for a in again] == [a.uid for a in saved]
    assert not any(a.created for a in again)
    assert all(inspect(a).detached and not inspect(a).modified for a in again)
    assert ll.Artifact.filter(key__startswith="bulk/").count() == 40

    again[3].description = "edited after a bulk save"
    again[3].save()
    assert ll.Artifact.get(again[3].uid).description == "edited after a bulk save"


def test_a_large_file_saves_with_the_hash_of_its_stored_copy(
    instance: Instance, tmp_path: Path
) -> None:
    """Beyond the small-file size: copied by the kernel and hashed from the copy."""
    data = b"".join(i.to_bytes(8, "little") * 1024 for i in range(SMALL // 8192 + 2))
    (tmp_path / "large.bin").write_bytes(data)
    artifact = ll.Artifact(tmp_path / "large.bin", key="big/large.bin").save()
    stored = Path(instance.storage.root) / artifact.store_key
    assert stored.read_bytes() == data
    assert artifact.hash == hashlib.sha256(data).hexdigest() and artifact.size == len(data)
    assert artifact.store_tag == f"m:{stored.stat().st_mtime_ns}"


def test_metadata_given_twice_in_one_save_is_kept(instance: Instance, tmp_path: Path) -> None:
    """The same file twice in one `ll.save`, the second time with a description and a kind: one
    record, which takes them on, as a second save on its own would (they were dropped when the
    record matched was itself new in that save)."""
    path = tmp_path / "a.txt"
    path.write_text("hello")
    first, second = ll.save(
        [ll.Artifact(path, key="a.txt"), ll.Artifact(path, key="a.txt", description="second")]
    )
    assert first.uid == second.uid and second.description == "second"
    assert ll.Artifact.get(key="a.txt").description == "second"
    again = ll.Artifact(path, key="a.txt", description="third").save()
    assert again.uid == first.uid and ll.Artifact.get(key="a.txt").description == "third"


STAGE_PAST_THE_LIMIT = """
import resource
import signal
import sys

from fsspec.implementations.local import LocalFileSystem
from lakeline.artifacts.transfer import stage

source, folder, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    stage(source, LocalFileSystem(), False, folder, lambda size: False)  # no room in memory
except OSError as exc:
    print(exc.errno)
    sys.exit(3)
"""


@pytest.mark.parametrize("size", [SMALL // 4, SMALL * 2], ids=["small-file", "large-file"])
def test_a_failed_stage_leaves_no_partial(tmp_path: Path, size: int) -> None:
    """A copy into the spool folder that fails midway (a real short write: RLIMIT_FSIZE in a
    subprocess) removes its `.partial`: small files written from memory (the save's memory
    budget spent) as well as large ones copied by the kernel."""
    import subprocess
    import sys

    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(size))
    folder = tmp_path / "spool"
    script = tmp_path / "stage.py"
    script.write_text(STAGE_PAST_THE_LIMIT)
    done = subprocess.run(
        [sys.executable, str(script), str(source), str(folder), str(size // 2)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == str(errno.EFBIG)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("size", [10, SMALL * 2], ids=["small-file", "large-file"])
def test_a_source_removed_before_the_save_is_named(
    instance: Instance, tmp_path: Path, size: int
) -> None:
    """A file removed between `Artifact(path)` and its save: PathNotFound naming it (not the
    bare FileNotFoundError of the copy), no record, and nothing left in the storage."""
    folder = tmp_path / "files"
    folder.mkdir()
    paths = [folder / f"f{i}.bin" for i in range(3)]
    for path in paths:
        path.write_bytes(os.urandom(size))
    artifacts = [ll.Artifact(p, key=f"gone/{p.name}") for p in paths]
    paths[1].unlink()
    with pytest.raises(PathNotFound, match=rf"^{paths[1]} was removed after its Artifact was made"):
        ll.save(artifacts)
    assert ll.Artifact.filter(key__startswith="gone/").count() == 0
    objects = Path(instance.storage.root) / ".lakeline" / "objects"
    assert not objects.exists() or not [p for p in objects.rglob("*") if p.is_file()]


def test_a_root_registered_after_a_save_is_seen_by_the_next(
    instance: Instance, tmp_path: Path
) -> None:
    """The save reads the storage roots once per loading of the storages (not per file):
    a root registered (or a reference root made real) after a save counts at the next."""
    (tmp_path / "root").mkdir()
    inside = tmp_path / "root" / "in.txt"
    inside.write_text("in")
    first = ll.Artifact(str(inside), key="copied.txt").save()
    assert not first.in_place
    ref = ll.Artifact.reference(tmp_path / "later" / "gone.txt").save()
    instance.register_storage(tmp_path / "root")
    again = ll.save([ll.Artifact(str(inside)), ll.Artifact(str(inside), key="in.txt")])
    assert all(a.in_place and a.key == "in.txt" for a in again)
    assert instance.register_storage("/").id == ref.storage_id  # the reference root, made real
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "gone.txt").write_text("here now")
    elsewhere = tmp_path / "later" / "other.txt"
    elsewhere.write_text("other")
    (placed,) = ll.save([ll.Artifact(str(elsewhere))])
    assert placed.in_place and placed.storage_id == ref.storage_id
    assert placed.key == str(elsewhere).lstrip("/")


def test_unsaved_is_whether_the_id_is_none(instance: Instance, tmp_path: Path) -> None:
    from lakeline.db.session import unsaved

    source = tmp_path / "u.txt"
    source.write_text("u")
    new = ll.Artifact(str(source), key="u.txt")
    assert unsaved(new) and new.id is None
    saved = new.save()
    assert not unsaved(saved)
    loaded = ll.Artifact.get(key="u.txt")
    assert inspect(loaded).detached and not unsaved(loaded)
    other = ll.Artifact(str(source), key="v.txt")
    other.id = None  # type: ignore[assignment]  # as a failed save leaves it
    assert unsaved(other)


def test_the_same_bytes_under_two_keys_in_one_save_are_stored_once(
    instance: Instance, tmp_path: Path
) -> None:
    """Two files with the same bytes in one save: the second finds the object the first
    stored and takes it as it is, so both records hold the stored object's tag (the second
    wrote it again before, and the first record's tag was stale: its first read hashed the
    object again)."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("the same bytes")
    first, second = ll.save([ll.Artifact(tmp_path / n, key=n) for n in ("a.txt", "b.txt")])
    stored = Path(instance.storage.root) / first.store_key
    assert second.store_key == first.store_key
    assert first.store_tag == second.store_tag == f"m:{stored.stat().st_mtime_ns}"


def _left_behind(instance: Instance, data: bytes) -> Path:
    """An object at the address of `data`, as a save killed before its commit leaves it."""
    address = object_key(hashlib.sha256(data).hexdigest(), ".txt")
    stored = Path(instance.storage.root) / address
    write_local(data, str(stored))
    return stored


def test_bytes_stored_without_a_record_are_taken_as_they_are(
    instance: Instance, tmp_path: Path
) -> None:
    """A local object whose bytes a save would store, there already though no record points
    to it (a killed save left it): the save takes it (a stat; no query, no second copy)."""
    left = _left_behind(instance, b"left by a killed save")
    before = left.stat()
    (tmp_path / "c.txt").write_bytes(b"left by a killed save")
    saved = ll.Artifact(tmp_path / "c.txt", key="c.txt").save()
    assert Path(instance.storage.root) / saved.store_key == left
    after = left.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert saved.store_tag == f"m:{before.st_mtime_ns}"
    assert Path(saved.cache()).read_bytes() == b"left by a killed save"


def _save_paused_at(pause: object, point: str, path: str, key: str) -> None:
    import lakeline as ll
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at(point, pause.hold):  # type: ignore[attr-defined]
        ll.Artifact(path, key=key).save()


def test_gc_removing_the_bytes_a_save_took_as_stored_has_it_store_them_again(
    instance: Instance, tmp_path: Path
) -> None:
    """The save takes an object left without a record, then (before its records are written)
    `lakeline gc` removes that object, unreferenced still: the save's check under the
    object's lock finds it gone and stores the bytes again, from the source."""
    left = _left_behind(instance, b"bytes gc takes away")
    (tmp_path / "d.txt").write_bytes(b"bytes gc takes away")
    os.environ["LAKELINE_INSTANCE"] = instance.name
    process, pause = run_paused(_save_paused_at, "save.stored", str(tmp_path / "d.txt"), "d.txt")
    try:
        assert pause.reached()
        gone = CliRunner().invoke(cli, ["gc", "--grace", "0", "--yes"])
        assert gone.exit_code == 0 and "removed 1 items" in gone.output, gone.output
        assert not left.exists()
    finally:
        pause.release()
        process.join(120)
    assert process.exitcode == 0
    saved = ll.Artifact.get(key="d.txt")
    assert left.read_bytes() == b"bytes gc takes away"
    assert saved.store_tag == f"m:{left.stat().st_mtime_ns}"
    assert CliRunner().invoke(cli, ["verify", "--all"]).exit_code == 0


@pytest.mark.parametrize("size", [15, SMALL * 2], ids=["in-memory", "copied"])
def test_bytes_left_without_a_record_that_changed_are_stored_again(
    instance: Instance, tmp_path: Path, size: int
) -> None:
    """An object no record references whose bytes changed since they were stored (the same
    size: a record deleted with its bytes kept, the object then written to): a save of the
    bytes its address names stores them again instead of taking the changed ones (a stat
    took them: the new record's tag then vouched for the wrong bytes)."""
    right = (b"the right bytes" * (size // 15 + 1))[:size]
    wrong = b"the wrong bytes" + right[15:]
    (tmp_path / "e.txt").write_bytes(right)
    first = ll.Artifact(tmp_path / "e.txt", key="e.txt").save()
    stored = Path(instance.storage.root) / first.store_key
    first.delete(permanent_bytes=False)
    stored.write_bytes(wrong)
    saved = ll.Artifact(tmp_path / "e.txt", key="e2.txt").save()
    assert Path(instance.storage.root) / saved.store_key == stored
    assert stored.read_bytes() == right
    assert saved.store_tag == f"m:{stored.stat().st_mtime_ns}"
    assert CliRunner().invoke(cli, ["verify", "--all"]).exit_code == 0


@pytest.mark.parametrize("size", [15, SMALL * 2], ids=["in-memory", "copied"])
def test_the_same_bytes_under_two_keys_are_stored_once_whatever_their_size(
    instance: Instance, tmp_path: Path, size: int
) -> None:
    """As above for a file copied to a temporary name rather than read into memory: the
    second plan takes the object the first stored in this save (no second rename)."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_bytes(b"x" * size)
    first, second = ll.save([ll.Artifact(tmp_path / n, key=n) for n in ("a.txt", "b.txt")])
    stored = Path(instance.storage.root) / first.store_key
    assert first.store_tag == second.store_tag == f"m:{stored.stat().st_mtime_ns}"
