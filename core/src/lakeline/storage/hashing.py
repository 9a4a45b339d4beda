"""Content hashes: sha256 of files (chunked) and of folders (over their files' hashes).

Bytes that are copied into storage are hashed as they are copied (one read, and the hash is
the hash of what was written); files registered where they are get a stat before and after
hashing, so a file that changed meanwhile is read again or refused. Fingerprints (size plus
mtime or ETag) let a read check cheaply that the stored bytes are still the ones saved.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from lakeline import checkpoints
from lakeline.errors import SourceChanged

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

CHUNK = 1 << 20
SMALL = 1 << 20  # files up to this size are read and written in one call
FILE_HASH = "sha256"
DIR_HASH = "sha256-dir"
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class Digest(NamedTuple):
    """What hashing a file or folder learns: digest, algorithm, total size, number of files."""

    hash: str
    hash_type: str
    size: int
    n_files: int | None


class Fingerprint(NamedTuple):
    """A cheap description of stored bytes: total size and a tag (`m:<mtime_ns>` of a local
    file or the newest file of a folder; `e:<etag>` of an object, or a digest of a folder's)."""

    size: int
    tag: str | None


# an empty sha256 copied: OpenSSL 3 looks the digest up again at each `hashlib.sha256()`
# (~1 us); a copy of one made once skips that (the batching Recorder hashes a file a call)
_SHA256 = hashlib.sha256()


def hash_local_file(path: str, size: int | None = None) -> Digest:
    """sha256 of a local file, streamed; one read when `size` (its stat's, a hint) says it
    is small (file_digest's 256 KiB buffer costs more than hashing a small file): the bytes
    read are `size` bytes, or more or fewer than it (then read to the end). The caller's
    stat after it (`_steady`) vouches that the file still holds as many, unchanged."""
    if size is not None and size < SMALL:
        sha = _SHA256.copy()
        fd = os.open(path, _READ)  # no file object
        try:
            chunk = os.read(fd, size + 1)  # one more: a file that grew shows
            sha.update(chunk)
            total = len(chunk)
            if total != size:  # grew, shrank or a short read: to the end, whatever it is now
                while chunk := os.read(fd, CHUNK):
                    sha.update(chunk)
                    total += len(chunk)
        finally:
            os.close(fd)
        return Digest(sha.hexdigest(), FILE_HASH, total, None)
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        size = handle.tell()
    return Digest(digest.hexdigest(), FILE_HASH, size, None)


def _is_local(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def hash_file(fs: AbstractFileSystem, path: str) -> Digest:
    """sha256 of a file on any fsspec filesystem, read in 1 MiB chunks."""
    if _is_local(fs):
        return hash_local_file(path)
    sha = hashlib.sha256()
    size = 0
    with fs.open(path, "rb", block_size=CHUNK) as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return Digest(sha.hexdigest(), FILE_HASH, size, None)


def list_files(fs: AbstractFileSystem, path: str) -> list[tuple[str, str]]:
    """(relative path, full path) of every file under folder `path`, sorted (local folders:
    strictly, see `storage.walk`)."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        from lakeline.storage.walk import local_files

        return local_files(path)
    base = path.rstrip("/")
    found = []
    for full in fs.find(base):
        rel = full[len(base) :].lstrip("/") if full.startswith(base) else full
        found.append((rel, full))
    return sorted(found)


def _folder_digest(parts: list[tuple[str, Digest]]) -> Digest:
    outer = hashlib.sha256()
    for rel, inner in parts:
        outer.update(f"{rel}\0{inner.hash}\n".encode())
    return Digest(outer.hexdigest(), DIR_HASH, sum(d.size for _, d in parts), len(parts))


def hash_folder(fs: AbstractFileSystem, path: str) -> Digest:
    """A folder's hash: sha256 over its sorted files' relative paths and sha256 digests."""
    return _folder_digest([(rel, hash_file(fs, full)) for rel, full in list_files(fs, path)])


# -- reading a file that may change --------------------------------------------------------------


def _state(fs: AbstractFileSystem | None, path: str) -> tuple[Any, ...]:
    """What changes when a file is written: size, mtime, ctime and inode (local, or `fs`
    None); size and ETag or modification time (object stores)."""
    if fs is None or _is_local(fs):
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    fs.invalidate_cache(path)
    info = fs.info(path)
    return (info.get("size"), remote_tag(info))


def _changed(path: str) -> SourceChanged:
    return SourceChanged(
        f"{path} changed while it was being saved (read twice): save it once it is complete"
    )


def _steady(
    read: Callable[[tuple[Any, ...]], Digest],
    fs: AbstractFileSystem | None,
    path: str,
    before: tuple[Any, ...] | None = None,
) -> tuple[Digest, tuple[Any, ...]]:
    """`read(state before)` (hashing or copying `path`), repeated once if the file changed
    meanwhile; with the file's state after it. `before`: its state taken just before (a
    stat the caller made anyway), else read here."""
    for _ in range(2):
        before = _state(fs, path) if before is None else before
        digest = read(before)
        checkpoints.reach("source.read")
        after = _state(fs, path)
        if before == after and after[0] == digest.size:
            return digest, after
        before = None
    raise _changed(path)


def _local_in_place(path: str, before: tuple[Any, ...] | None) -> tuple[Digest, Fingerprint]:
    """`hash_in_place` of a local file: `_steady` over `hash_local_file`, written out (the
    batching Recorder hashes a file a call: no closure, no state tuples)."""
    for _ in range(2):
        if before is None:
            st = os.stat(path)
            before = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        try:
            digest = hash_local_file(path, before[0])
        except IsADirectoryError:  # os.read says it without the path
            raise SourceChanged(
                f"{path} is a folder now, a file when it was stat'ed: record it again"
            ) from None
        checkpoints.reach("source.read")
        after = os.stat(path)  # the path's, not the descriptor's: a file renamed over shows
        if (
            after.st_size == before[0] == digest.size
            and after.st_mtime_ns == before[1]
            and after.st_ctime_ns == before[2]
            and after.st_ino == before[3]
        ):
            return digest, Fingerprint(digest.size, f"m:{after.st_mtime_ns}")
        before = None
    raise _changed(path)


def _reader(fs: AbstractFileSystem, path: str) -> Callable[[tuple[Any, ...]], Digest]:
    return lambda _: hash_file(fs, path)


def hash_in_place(
    fs: AbstractFileSystem | None,
    path: str,
    is_dir: bool,
    before: tuple[Any, ...] | None = None,
) -> tuple[Digest, Fingerprint]:
    """Hash a file or folder that stays where it is, and fingerprint it: each file is read
    again if it changed while it was hashed, then refused (`SourceChanged`). `before`: a
    local file's (size, mtime_ns, ctime_ns, inode) stat'ed just before (the batching
    Recorder's), so its state is not read twice; its fingerprint is the state after.
    `fs` None: a local file, read with os (no fsspec)."""
    if not is_dir:
        if fs is None or _is_local(fs):
            return _local_in_place(path, before)
        digest, _ = _steady(lambda _: hash_file(fs, path), fs, path)
        return digest, fingerprint(fs, path, is_dir=False)
    if fs is None:
        from lakeline.storage.roots import filesystem

        fs = filesystem(path)
    for _ in range(2):
        files = list_files(fs, path)
        parts = [(rel, _steady(_reader(fs, full), fs, full)[0]) for rel, full in files]
        if list_files(fs, path) == files:
            digest = _folder_digest(parts)
            return digest, fingerprint(fs, path, is_dir=True)
    raise _changed(path)


# -- copying while hashing -----------------------------------------------------------------------


def _pump(src: IO[bytes], dst: IO[bytes]) -> tuple[str, int]:
    """Copy `src` to `dst`, hashing every byte written; (sha256 hex, size)."""
    sha = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while n := src.readinto(view):  # type: ignore[attr-defined]
        chunk = view[:n]
        sha.update(chunk)
        dst.write(chunk)
        size += n
    return sha.hexdigest(), size


def read_small(path: str, limit: int) -> tuple[bytes, Digest] | None:
    """The bytes and digest of local file `path` if it holds at most `limit` bytes (one
    read), else None; `SourceChanged` if it changed while it was read."""
    fd = os.open(path, _READ)  # no buffered file object
    try:
        before = os.fstat(fd)
        size = before.st_size
        if size > limit:
            return None
        data = os.read(fd, size + 1)  # one more: a file that grew shows
        while len(data) < size and (more := os.read(fd, 1 << 16)):
            data += more  # a short read before the end (never for a local file in practice)
    finally:
        os.close(fd)
    checkpoints.reach("source.read")
    after = os.stat(path)
    if (
        after.st_mtime_ns != before.st_mtime_ns
        or after.st_ctime_ns != before.st_ctime_ns
        or after.st_ino != before.st_ino
        or after.st_size != len(data)
    ):  # as _stat_key, without two tuples a file
        raise _changed(path)
    return data, Digest(hashlib.sha256(data).hexdigest(), FILE_HASH, len(data), None)


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def copy_local_file(source: str, target: str) -> Digest:
    """Copy local file `source` to the new file `target` and hash the bytes written: small
    files in one read (hashed in memory), larger ones copied by the kernel (`sendfile`) and
    then hashed from the copy, which only this process writes (from the page cache: as fast
    as hashing the source, and faster than a hashing copy loop, whose user-space writes the
    kernel throttles on a disk). `SourceChanged` if `source` changed during the copy."""
    before = os.stat(source)
    if before.st_size <= SMALL:
        with open(source, "rb") as src:
            data = src.read()
        with open(target, "xb") as dst:
            dst.write(data)
        digest = Digest(hashlib.sha256(data).hexdigest(), FILE_HASH, len(data), None)
    else:
        shutil.copyfile(source, target)  # sendfile on Linux; an inode swap shows in the stat
        digest = hash_local_file(target)
    checkpoints.reach("source.read")
    after = os.stat(source)
    if _stat_key(before) != _stat_key(after) or after.st_size != digest.size:
        raise _changed(source)
    return digest


def copy_file(fs: AbstractFileSystem, source: str, target: str) -> Digest:
    """Copy a file of any filesystem to the new local file `target`, hashing as it goes."""
    if _is_local(fs):
        return copy_local_file(source, target)
    before = _state(fs, source)
    with fs.open(source, "rb", block_size=CHUNK) as src, open(target, "xb") as dst:
        hexdigest, size = _pump(src, dst)
    checkpoints.reach("source.read")
    if _state(fs, source) != before or before[0] != size:
        raise _changed(source)
    return Digest(hexdigest, FILE_HASH, size, None)


def copy_folder(fs: AbstractFileSystem, source: str, target: str) -> Digest:
    """Copy a folder to the new local folder `target`, hashing each file as it is copied."""
    files = list_files(fs, source)
    os.makedirs(target)
    parts = []
    for rel, full in files:
        dest = os.path.join(target, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        parts.append((rel, copy_file(fs, full, dest)))
    if list_files(fs, source) != files:
        raise _changed(source)
    return _folder_digest(parts)


# -- fingerprints --------------------------------------------------------------------------------


def remote_tag(info: dict[str, Any]) -> str | None:
    """The tag of an object from what the store says of it (a listing, HEAD or PUT reply)."""
    for name in ("ETag", "etag", "md5Hash", "mtime", "LastModified", "last_modified", "updated"):
        value = info.get(name)
        if value is not None:
            text = str(value)
            return (
                f"e:{text}" if len(text) <= 64 else f"e:{hashlib.sha256(text.encode()).hexdigest()}"
            )
    return None


def _walk(path: str) -> Iterator[os.stat_result]:
    for folder, _dirs, names in os.walk(path):
        for name in names:
            yield os.stat(os.path.join(folder, name))


def fingerprint(fs: AbstractFileSystem, path: str, *, is_dir: bool) -> Fingerprint:
    """Size and tag of stored bytes (FileNotFoundError when they are gone)."""
    if _is_local(fs):
        if not is_dir:
            st = os.stat(path)
            return Fingerprint(st.st_size, f"m:{st.st_mtime_ns}")
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        stats = list(_walk(path))
        newest = max((st.st_mtime_ns for st in stats), default=0)
        return Fingerprint(sum(st.st_size for st in stats), f"m:{newest}")
    fs.invalidate_cache(path)
    if not is_dir:
        info = fs.info(path)
        return Fingerprint(int(info["size"]), remote_tag(info))
    found = fs.find(path, detail=True)
    if not found:
        raise FileNotFoundError(path)
    outer = hashlib.sha256()
    for name in sorted(found):
        outer.update(f"{name}\0{remote_tag(found[name])}\n".encode())
    return Fingerprint(sum(int(i["size"]) for i in found.values()), f"e:{outer.hexdigest()[:32]}")
