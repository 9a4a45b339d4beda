"""Listing a local folder strictly: every regular file, or a clear error — never a part.

`os.walk` (and fsspec's `find` on local paths) skip folders they cannot read, list a FIFO or
a device as a file (reading it then hangs or never ends) and follow a symlink loop until the
path is too long. A folder is saved whole or not at all, so here any of those is an error.
"""

from __future__ import annotations

import errno
import os
import stat

from lakeline.errors import PathNotFound, StorageError, UnsupportedPath

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file that is neither a regular file nor a folder is, in words."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"  # pragma: no cover - doors, whiteouts


def not_a_file(path: str, mode: int) -> UnsupportedPath:
    """The error for a FIFO, device or socket where a file was expected."""
    return UnsupportedPath(
        f"{path} is {kind_of(mode)}, not a regular file or folder: lakeline saves files and "
        "folders (copy the data into a file first)"
    )


def stat_entry(path: str) -> os.stat_result:
    """`os.stat` (following symlinks) with a clear error for loops, dangling links and
    permissions."""
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsupportedPath(f"{path} is a symlink loop: it never reaches a file") from None
        if exc.errno == errno.ENOENT and os.path.islink(path):
            target = os.readlink(path)
            raise PathNotFound(
                f"{path} is a broken symlink (to {target}): fix or remove it"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise PathNotFound(f"{path} cannot be read: permission denied") from None
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def local_files(root: str) -> list[tuple[str, str]]:
    """(relative path, full path) of every file under the local folder `root`, sorted.

    Symlinks are followed (to files and folders), as when the folder is copied; a link back
    into a folder it lies in is a loop. Raises PathNotFound for an unreadable folder or file
    or a dangling link, UnsupportedPath for a FIFO, device, socket or symlink loop.
    """
    base = root.rstrip("/") or "/"
    found: list[tuple[str, str]] = []
    top = stat_entry(base)

    def visit(folder: str, prefix: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            with os.scandir(folder) as entries:
                names = [entry.name for entry in entries]
        except PermissionError:
            raise PathNotFound(
                f"cannot read the folder {folder}: permission denied (a folder is saved whole "
                "or not at all: fix its permissions)"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot read the folder {folder}: {exc.strerror or exc}") from exc
        for name in names:
            full = os.path.join(folder, name)
            info = stat_entry(full)
            if stat.S_ISDIR(info.st_mode):
                identity = (info.st_dev, info.st_ino)
                if identity in ancestors:
                    raise UnsupportedPath(
                        f"{full} is a symlink loop: it leads back to a folder that contains it"
                    )
                visit(full, f"{prefix}{name}/", ancestors | {identity})
            elif stat.S_ISREG(info.st_mode):
                if not os.access(full, os.R_OK):
                    raise PathNotFound(f"{full} cannot be read: permission denied")
                found.append((f"{prefix}{name}", full))
            else:
                raise not_a_file(full, info.st_mode)

    visit(base, "", frozenset({(top.st_dev, top.st_ino)}))
    return sorted(found)
