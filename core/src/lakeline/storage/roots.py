"""Storage roots: normalising locations and getting an fsspec filesystem for them."""

from __future__ import annotations

import errno
import importlib
import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.errors import StorageError, UnsupportedPath

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

_fs_cache: dict[tuple[str, str], AbstractFileSystem] = {}
_fs_lock = threading.Lock()


def protocol_of(location: str) -> str:
    """`local` for paths and file:// URLs, else the URL's scheme (`s3`, `gs`, ...)."""
    if "://" not in location:
        return "local"
    scheme = location.split("://", 1)[0].lower()
    return "local" if scheme == "file" else scheme


def normalize_root(root: str | os.PathLike[str]) -> str:
    """An absolute local path, or a `scheme://bucket/prefix` URL, without trailing slash."""
    text = os.fspath(root)
    if not text:
        raise StorageError("the storage root is empty: give a folder or a URL like s3://bucket")
    if protocol_of(text) == "local":
        if text.startswith("file://"):
            text = text[len("file://") :]
        return _resolve_local(text)
    scheme, rest = text.split("://", 1)
    rest = rest.strip("/")
    if not rest:
        raise StorageError(f"storage root {text!r} names no bucket")
    return f"{scheme.lower()}://{rest}"


def _resolve_local(text: str) -> str:
    """`str(Path(text).expanduser().resolve())` without building three Paths per call.

    Paths that Path would first tidy (`~`, `//`, `.` segments) take the pathlib route: realpath
    alone treats some of them differently around symlink loops.
    """
    if text.startswith(("~", "./")) or "//" in text or "/./" in text or text.endswith("/."):
        try:
            return str(Path(text).expanduser().resolve())
        except RuntimeError:  # Path.resolve's word for a symlink loop
            raise UnsupportedPath(f"{text} is a symlink loop: it never reaches a file") from None
    resolved = os.path.realpath(text)
    try:
        os.stat(resolved)  # as Path.resolve: a symlink loop is an error, not a path
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsupportedPath(f"{text} is a symlink loop: it never reaches a file") from None
    return resolved


_PROC_FD = os.path.isdir("/proc/self/fd") and hasattr(os, "O_PATH")
_O_PATH = (os.O_PATH | os.O_CLOEXEC) if _PROC_FD else 0


def resolve_existing(
    text: str, *, proc_fd: str = "/proc/self/fd", known: os.stat_result | None = None
) -> tuple[str, os.stat_result]:
    """`normalize_root(text)` of a local path that must exist, and its stat: on Linux the
    kernel resolves it once (an `O_PATH` descriptor, read back from `proc_fd`), where
    `os.path.realpath` costs an lstat per folder level in Python. OSError when it does not
    exist (ELOOP for a symlink loop); paths pathlib would first tidy take `normalize_root`,
    and so does every path when `proc_fd` cannot be read (/proc not mounted or hidden in a
    sandbox; tests pass a missing folder to force it). `known`: the path's stat (or lstat:
    a symlink's own is ignored) the caller took just now, returned as its stat, not taken
    again (the path is still opened: one that is gone since raises)."""
    if text.startswith("file://"):
        text = text[len("file://") :]
    if known is not None and stat.S_ISLNK(known.st_mode):
        known = None  # a symlink's own lstat: its target is stat'ed
    tidy = (
        text.startswith(("~", "./"))
        or "//" in text
        or ("/." in text and ("/./" in text or text.endswith("/.")))
    )
    if _PROC_FD and text and not tidy:
        stripped = text.rstrip("/") or "/"  # as realpath: `file.txt/` names file.txt
        fd = os.open(stripped, _O_PATH)
        try:
            st = os.fstat(fd) if known is None else known
            resolved = os.readlink(f"{proc_fd}/{fd}")
        except OSError:
            resolved = ""  # no /proc to ask: realpath below
        finally:
            os.close(fd)
        if resolved.startswith("/") and not resolved.endswith(" (deleted)"):
            return resolved, st
    location = normalize_root(text)
    return location, os.stat(location)  # the path may be gone: stat'ed, `known` or not


_EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3"}  # fsspec protocol -> lakeline's extra


def _make_filesystem(protocol: str, options: dict[str, Any]) -> AbstractFileSystem:
    import fsspec

    if protocol in ("gs", "gcs") and options.get("endpoint_url"):
        # A GCS emulator (or other endpoint) speaks only the JSON API: gcsfs's default class
        # first asks Google's gRPC control plane for the bucket layout, which there waits
        # a minute to fail. The plain JSON-API class is what an emulator serves.
        plain: Any = importlib.import_module("gcsfs.core").GCSFileSystem  # untyped
        fs: AbstractFileSystem = plain(**options)
        return fs
    return fsspec.filesystem("file" if protocol == "local" else protocol, **options)


def filesystem(root: str, storage_options: dict[str, Any] | None = None) -> AbstractFileSystem:
    """The (cached) fsspec filesystem serving `root`."""
    import json

    protocol = protocol_of(root)
    if not storage_options and (fs := _fs_cache.get((protocol, ""))) is not None:
        return fs  # the common case, read without the lock (a dict read is atomic)
    options = dict(storage_options or {})
    cache_key = (protocol, json.dumps(options, sort_keys=True, default=str) if options else "")
    with _fs_lock:
        fs = _fs_cache.get(cache_key)
        if fs is None:
            try:
                fs = _make_filesystem(protocol, options)
            except ImportError as exc:
                extra = _EXTRAS.get(protocol, protocol)
                raise StorageError(
                    f"no filesystem for {protocol}:// storage: {exc}. "
                    f"Install the matching extra: `pip install 'lakeline[{extra}]'`"
                ) from exc
            _fs_cache[cache_key] = fs
    return fs


def join(root: str, key: str) -> str:
    """The full location of `key` inside `root` (roots ending in `/`, such as `/` and the
    `scheme://` roots of reference storages, take the key as it is)."""
    if not key:
        return root
    return f"{root}{key}" if root.endswith("/") else f"{root}/{key}"


def relative_key(location: str, root: str, *, normalized: bool = False) -> str | None:
    """`location`'s key inside `root`, or None when it lies outside.

    `normalized=True` says `location` already went through `normalize_root` (saves resolving
    a local path again, which costs a system call per folder level).
    """
    protocol = protocol_of(location)
    if protocol != protocol_of(root):
        return None
    if not normalized:
        location = normalize_root(location) if protocol == "local" else location.rstrip("/")
    return key_in_root(location, root)


def key_in_root(location: str, root: str) -> str | None:
    """`relative_key` of a normalized `location` and a root of the same protocol (the caller
    compared the protocols once)."""
    prefix = root if root.endswith("/") else root + "/"
    return location[len(prefix) :] if location.startswith(prefix) else None


def strip_protocol(location: str) -> str:
    """The path fsspec methods take: local paths as they are, `bucket/key` for object stores."""
    return location if protocol_of(location) == "local" else location.split("://", 1)[1]
