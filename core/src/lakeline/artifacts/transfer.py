"""Moving bytes into storage atomically: write beside the target, then rename into place."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from lakeline import checkpoints
from lakeline.errors import NotEnoughSpace, PathNotFound, SourceChanged, StorageError
from lakeline.storage.hashing import (
    SMALL,
    Digest,
    copy_file,
    copy_folder,
    copy_local_file,
    read_small,
)
from lakeline.storage.roots import protocol_of, strip_protocol

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

PARTIAL = ".partial"  # bytes being written; `lakeline gc` removes old ones
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _no_space(exc: BaseException, what: str) -> NotEnoughSpace | None:
    """NotEnoughSpace when `exc` is a full file system (or quota) met while storing `what`
    (the partial bytes are removed by then), else None."""
    if not isinstance(exc, OSError) or exc.errno not in _FULL:
        return None
    return NotEnoughSpace(
        f"no space left to store {what} ({exc.strerror}): nothing was stored; free space "
        "there, then save again"
    )


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.urandom(4).hex()}.partial")


def remove_local(path: Path) -> None:
    """Remove a file or folder if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


SMALL_FILE = 1 << 20


def _copy_file(source: str, target: str) -> None:
    """Copy a file's bytes to `target`, a fresh name: small files in one read and one write
    (shutil.copyfile's checks cost more than copying 100 bytes), others by shutil."""
    with open(source, "rb") as src:
        data = src.read() if os.fstat(src.fileno()).st_size <= SMALL_FILE else None
    if data is None:
        shutil.copyfile(source, target)
        return
    with open(target, "xb") as dst:
        dst.write(data)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def put_local(source: str, target: Path, *, move: bool = False, link: bool = False) -> None:
    """Copy (or move, or hard-link where the filesystem allows) a local file or folder to
    `target` atomically."""
    final = os.fspath(target)
    folder = os.path.dirname(final)
    if not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(final)}.{os.urandom(4).hex()}.partial")
    try:
        if move:
            shutil.move(source, tmp)
            is_dir = os.path.isdir(tmp)
        elif link:
            is_dir = os.path.isdir(source)
            if is_dir:
                shutil.copytree(source, tmp, copy_function=_link_or_copy)
            else:
                _link_or_copy(source, tmp)
        else:
            is_dir = os.path.isdir(source)
            if is_dir:
                shutil.copytree(source, tmp)
            else:
                _copy_file(source, tmp)
        if is_dir or os.path.isdir(final):
            remove_local(target)  # rename replaces a file with a file, not folders
        os.replace(tmp, final)
    except BaseException as exc:
        remove_local(Path(tmp))
        full = _no_space(exc, f"{source} in {folder}")
        if full is not None:
            raise full from exc
        raise


def stage(
    source: str,
    source_fs: AbstractFileSystem,
    is_dir: bool,
    folder: str,
    keep: Callable[[int], bool] | None = None,
) -> tuple[str | bytes, Digest]:
    """Copy `source` to a temporary name in local `folder`, hashing the bytes as they are
    written: (temporary path, digest of exactly those bytes). A small local file is read
    into memory instead when `keep(size)` allows (its bytes are returned, not a path: bytes
    already stored need no copy at all). A source that changed during the copy is copied
    once more, then refused (`SourceChanged`)."""
    return _staged(source, folder, _stage_once, source, source_fs, is_dir, folder, keep)


def stage_local(source: str, folder: str) -> tuple[str | bytes, Digest]:
    """`stage` of the local file `source` without a filesystem object (the file worker
    imports no fsspec): a small one read into memory, a larger one copied into `folder`."""
    return _staged(source, folder, _stage_local, source, folder, None)


def _staged(
    source: str, folder: str, once: Callable[..., tuple[str | bytes, Digest]], *args: Any
) -> tuple[str | bytes, Digest]:
    """`once(*args)` (a copy of `source` into `folder`), again if the source changed
    meanwhile; its errors said as a save says them."""
    for attempt in range(2):
        try:
            return once(*args)
        except SourceChanged:
            if attempt:
                raise
        except FileNotFoundError as exc:
            gone = str(exc.filename or source)
            if isinstance(exc, PathNotFound) or gone.startswith(folder):
                raise  # said already (a broken link in a folder), or the spool folder
            raise PathNotFound(
                f"{gone} was removed after its Artifact was made: make it again, then save"
            ) from None
        except IsADirectoryError:  # said without the path by os.read
            raise SourceChanged(
                f"{source} is a folder now, a file when its Artifact was made: make it "
                "again, then save"
            ) from None
        except OSError as exc:
            full = _no_space(exc, f"{source} in {folder}")
            if full is not None:
                raise full from exc
            raise
    raise AssertionError("unreachable")


@cache
def _local_fs() -> type[AbstractFileSystem]:
    """fsspec's local filesystem class (imported once: an import statement per file costs
    ~0.6 us; fsspec stays out of `import lakeline`)."""
    from fsspec.implementations.local import LocalFileSystem

    local: type[AbstractFileSystem] = LocalFileSystem
    return local


def _stage_once(
    source: str,
    source_fs: AbstractFileSystem,
    is_dir: bool,
    folder: str,
    keep: Callable[[int], bool] | None,
) -> tuple[str | bytes, Digest]:
    if keep is not None and not is_dir and isinstance(source_fs, _local_fs()):
        return _stage_local(source, folder, keep)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.urandom(8).hex()}{PARTIAL}")
    try:
        if is_dir:
            return tmp, copy_folder(source_fs, source, tmp)
        return tmp, copy_file(source_fs, source, tmp)
    except BaseException:
        remove_local(Path(tmp))
        raise


def _stage_local(
    source: str, folder: str, keep: Callable[[int], bool] | None
) -> tuple[str | bytes, Digest]:
    """A local file: in memory when small and `keep(size)` allows (None: always), else
    copied to a temporary name in `folder`."""
    read = read_small(source, SMALL)
    if read is not None:
        data, digest = read
        if keep is None or keep(len(data)):
            return data, digest
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.urandom(8).hex()}{PARTIAL}")
    try:
        if read is not None:
            with open(tmp, "xb") as handle:
                handle.write(read[0])
            return tmp, read[1]
        return tmp, copy_local_file(source, tmp)
    except BaseException:
        remove_local(Path(tmp))
        raise


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class _Names:
    """Temporary names unique in this process without a system call each: a random part
    drawn once per process (again after a fork) and a counter (`next` is atomic under the
    GIL). Another process draws another random part; a name met anyway is refused by
    O_EXCL, never overwritten."""

    def __init__(self) -> None:
        self.reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        from itertools import count

        self.prefix = os.urandom(6).hex()
        self.counter = count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


_tmp_name = _Names()


def write_local(data: bytes, target: str) -> os.stat_result:
    """Write `data` to the local path `target` atomically (a `.partial` sibling renamed into
    place; its folder made when missing) and return the written file's stat (a rename keeps
    size and mtime: no stat after it)."""
    tmp, stat = _write_partial(data, target)
    try:
        os.replace(tmp, target)
    except BaseException:
        remove_local(Path(tmp))
        raise
    return stat


def _write_partial(data: bytes, target: str) -> tuple[str, os.stat_result]:
    """`data` in a new `.partial` sibling of the local path `target` (its folder made when
    missing): that file's name and stat; nothing is left when writing fails."""
    folder, sep, name = target.rpartition("/")
    tmp = f"{folder}{sep}.{name}.{_tmp_name()}{PARTIAL}"
    try:
        fd = os.open(tmp, _NEW_FILE, 0o666)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, _NEW_FILE, 0o666)
    try:
        try:
            return tmp, _write_all(fd, data)
        finally:
            os.close(fd)
    except BaseException:
        remove_local(Path(tmp))
        raise


# an unnamed file (O_TMPFILE) linked into place: one system call fewer than a named one
# renamed, and none to look for an object there first (Linux; else `_tmpfile` turns False)
_TMPFILE = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | getattr(os, "O_CLOEXEC", 0)
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT, errno.EXDEV)


class _Unnamed:
    """Whether this process makes new objects as unnamed files, and the directory handle
    `os.link` needs to follow /proc/self/fd/N (any directory: that path is absolute)."""

    def __init__(self) -> None:
        self.ok = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
        self.anchor = -1

    def dir_fd(self) -> int:
        if self.anchor < 0:  # inherited by a fork: still a directory, and /proc/self is its own
            self.anchor = os.open("/", os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        return self.anchor


_unnamed = _Unnamed()


def create_local(data: bytes, target: str) -> os.stat_result | None:
    """Write `data` to the local path `target` unless something is there already (then
    None, and that is left as it is): atomically, as `write_local`, its folder made when
    missing. Returns the written file's stat."""
    if _unnamed.ok:
        folder = target.rpartition("/")[0]
        try:
            try:
                fd = os.open(folder, _TMPFILE, 0o666)
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
                fd = os.open(folder, _TMPFILE, 0o666)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED or not os.path.isdir(folder):
                raise
            _unnamed.ok = False  # a filesystem without unnamed files: named ones from now on
        else:
            try:
                stat = _write_all(fd, data)
                try:
                    os.link(f"/proc/self/fd/{fd}", target, src_dir_fd=_unnamed.dir_fd())
                except FileExistsError:
                    return None  # the unnamed file goes with its descriptor
                except OSError as exc:
                    if exc.errno not in _UNSUPPORTED or not os.path.isdir(folder):
                        raise
                    _unnamed.ok = False
                else:
                    return stat
            finally:
                os.close(fd)
    return _write_named(data, target)


def _write_named(data: bytes, target: str) -> os.stat_result | None:
    """`create_local` with a named file: linked into place, not renamed, so that what
    another saver put there meanwhile stays (its record's tag is its mtime); renamed only
    where the filesystem has no hard links."""
    if os.access(target, os.F_OK):  # no exception for a new object (the usual case)
        return None
    tmp, stat = _write_partial(data, target)
    try:
        checkpoints.reach("object.written")
        try:
            os.link(tmp, target)
        except FileExistsError:
            return None
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):  # gone after a rename
            os.unlink(tmp)  # after a link: the object's second name
    return stat


# a filesystem without hard links (FAT, some network and FUSE ones) says so with one of these
_NO_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS)


def _write_all(fd: int, data: bytes) -> os.stat_result:
    """Write `data` to the open file `fd`; its stat after."""
    written = os.write(fd, data)
    if written < len(data):  # a short write (never for a small local file, in practice)
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]
    return os.fstat(fd)


def place(tmp: str | bytes, target: str, target_fs: AbstractFileSystem | None) -> Any:
    """Put the bytes `stage` wrote (or read) at `target` (a full location): a rename in
    local storage (the temporary name is gone after), an upload elsewhere (the caller
    removes `tmp`). Returns what the object store answered to a PUT of bytes (its ETag), or
    the stat of bytes written to a local file."""
    try:
        if isinstance(tmp, bytes):
            if protocol_of(target) == "local":
                return write_local(tmp, target)
            assert target_fs is not None  # a remote target: its filesystem
            return target_fs.pipe_file(strip_protocol(target), tmp)
        if protocol_of(target) == "local":
            if os.path.isdir(tmp) or os.path.isdir(target):
                remove_local(Path(target))  # rename replaces a file with a file, not folders
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(tmp, target)
        else:
            assert target_fs is not None
            target_fs.put(tmp, strip_protocol(target), recursive=os.path.isdir(tmp))
    except OSError as exc:
        full = _no_space(exc, f"bytes at {target}")
        raise (full or StorageError(f"cannot store bytes at {target}: {exc}")) from exc
    return None


def place_new(data: bytes, target: str) -> os.stat_result | None:
    """`create_local`, its errors as `place` says them."""
    try:
        return create_local(data, target)
    except OSError as exc:
        full = _no_space(exc, f"bytes at {target}")
        raise (full or StorageError(f"cannot store bytes at {target}: {exc}")) from exc


def put(
    source: str, source_fs: AbstractFileSystem, target: str, target_fs: AbstractFileSystem
) -> None:
    """Store `source` at `target` (full locations); object stores write each object whole."""
    local_source = protocol_of(source) == "local"
    try:
        if protocol_of(target) == "local":
            if local_source:
                put_local(source, Path(target))
            else:
                tmp = _tmp_sibling(Path(target))
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                try:
                    source_fs.get(strip_protocol(source), str(tmp), recursive=True)
                    os.replace(tmp, target)
                except BaseException:
                    remove_local(tmp)
                    raise
        elif local_source:
            target_fs.put(source, strip_protocol(target), recursive=os.path.isdir(source))
        elif type(source_fs) is type(target_fs):
            target_fs.copy(strip_protocol(source), strip_protocol(target), recursive=True)
        else:
            with source_fs.open(strip_protocol(source), "rb") as src:
                target_fs.pipe_file(strip_protocol(target), src.read())
    except OSError as exc:
        raise StorageError(f"cannot store {source} at {target}: {exc}") from exc


def remove(location: str, fs: AbstractFileSystem) -> None:
    """Remove a stored file or folder (missing is fine)."""
    if protocol_of(location) == "local":
        remove_local(Path(location))
        return
    path = strip_protocol(location)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def holding(target: str, data: bytes) -> os.stat_result | None:
    """The stat of the local file `target` when it holds exactly `data`, else None (a stat
    alone would take changed bytes of the same size: hash = bytes)."""
    try:
        fd = os.open(target, _READ)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not S_ISREG(st.st_mode) or st.st_size != len(data):
            return None
        read = b""
        while len(read) <= len(data):  # one more byte: a file grown since the fstat
            part = os.read(fd, len(data) + 1 - len(read))
            if not part:
                break
            read += part
        return st if read == data else None
    except OSError:
        return None
    finally:
        os.close(fd)


_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
