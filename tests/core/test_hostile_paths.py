"""Paths that are not plain files or folders: FIFOs, devices, symlink loops, unreadable parts.

Each is refused with one clear error before anything is stored, never a hang or a silently
partial folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import LakelineError, PathNotFound, UnsupportedPath
from lakeline.instance import Instance


def _folder(root: Path) -> Path:
    folder = root / "run1"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a\n")
    (folder / "sub" / "b.txt").write_text("b\n")
    return folder


def _nothing_saved(instance: Instance) -> None:
    assert ll.Artifact.filter(is_latest=None).count() == 0
    objects = Path(instance.storage.root, ".lakeline", "objects")
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))


def test_a_fifo_is_refused_not_read_forever(instance: Instance, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(UnsupportedPath, match=r"pipe\.txt is a FIFO \(named pipe\), not a"):
        ll.Artifact(fifo, key="pipe.txt")
    _nothing_saved(instance)


def test_a_device_is_refused(instance: Instance) -> None:
    with pytest.raises(UnsupportedPath, match="/dev/zero is a character device"):
        ll.Artifact("/dev/zero", key="zero")
    _nothing_saved(instance)


def test_a_fifo_inside_a_folder_is_refused(instance: Instance, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.mkfifo(folder / "sub" / "pipe")
    with pytest.raises(UnsupportedPath, match=r"run1/sub/pipe is a FIFO"):
        ll.Artifact(folder, key="run1").save()
    _nothing_saved(instance)


def test_a_folder_registered_in_place_with_a_fifo_is_refused(
    instance: Instance, tmp_path: Path
) -> None:
    root = Path(instance.storage.root)
    folder = _folder(root)
    os.mkfifo(folder / "pipe")
    with pytest.raises(UnsupportedPath, match="is a FIFO"):
        ll.Artifact(folder).save()
    assert ll.Artifact.filter(is_latest=None).count() == 0


def test_symlink_loops_are_clear_errors(instance: Instance, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "sub" / "up").symlink_to("..")  # a folder that contains itself
    with pytest.raises(UnsupportedPath, match=r"run1/sub/up is a symlink loop"):
        ll.Artifact(folder, key="run1").save()
    (folder / "sub" / "up").unlink()
    (folder / "self").symlink_to("self")  # a link that points to itself
    with pytest.raises(UnsupportedPath, match=r"run1/self is a symlink loop"):
        ll.Artifact(folder, key="run1").save()
    with pytest.raises(UnsupportedPath, match=r"self is a symlink loop"):
        ll.Artifact(folder / "self", key="self")
    (folder / "self").unlink()
    (folder / "gone").symlink_to("nowhere")
    with pytest.raises(PathNotFound, match=r"run1/gone is a broken symlink"):
        ll.Artifact(folder, key="run1").save()
    _nothing_saved(instance)
    (folder / "gone").unlink()
    (folder / "linked").symlink_to(folder / "sub")  # a link to a folder elsewhere: followed
    saved = ll.Artifact(folder, key="run1").save()
    assert saved.n_files == 3


def test_a_folder_hash_is_unchanged_by_the_stricter_listing(tmp_path: Path) -> None:
    from fsspec.implementations.local import LocalFileSystem
    from lakeline.storage.hashing import hash_folder, list_files

    folder = _folder(tmp_path)
    (folder / ".hidden").write_text("h\n")
    (folder / "empty").mkdir()
    fs = LocalFileSystem()
    expected = sorted((full[len(str(folder)) :].lstrip("/"), full) for full in fs.find(str(folder)))
    assert list_files(fs, str(folder)) == expected
    assert hash_folder(fs, str(folder)).n_files == 3


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="lakeline-test-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    import shutil

    shutil.rmtree(path)


def test_an_unreadable_subfolder_is_an_error_not_a_partial_folder(shared_tmp: Path) -> None:
    """Hashing decides what a folder holds (in place or uploaded): it must see every file.
    Root reads everything, so the listing runs in a child process as `nobody`."""
    from fsspec.implementations.local import LocalFileSystem
    from lakeline.storage.hashing import hash_folder

    folder = _folder(shared_tmp)
    for path in (folder, folder / "sub"):
        path.chmod(0o755)
    (folder / "sub" / "b.txt").chmod(0o644)
    (folder / "a.txt").chmod(0o644)
    (folder / "sub").chmod(0o300)  # not listable by others
    if os.geteuid() != 0:
        (folder / "sub").chmod(0o000)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            digest = hash_folder(LocalFileSystem(), str(folder))
            message = f"no error: {digest.n_files} files"
        except LakelineError as exc:
            message = f"{type(exc).__name__}: {exc}"
        except BaseException as exc:
            message = f"raw {type(exc).__name__}: {exc}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(child, 0)
    assert message.startswith("PathNotFound: cannot read the folder"), message
    assert "run1/sub" in message and "permission" in message.lower()


def test_an_unreadable_subfolder_fails_the_save(instance: Instance, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "sub").chmod(0)
    try:
        if os.access(folder / "sub", os.R_OK):
            pytest.skip("running with privileges that read any file (root): see the test above")
        with pytest.raises(PathNotFound, match="cannot read the folder"):
            ll.Artifact(folder, key="run1").save()
    finally:
        (folder / "sub").chmod(0o755)
    _nothing_saved(instance)
