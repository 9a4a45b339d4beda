"""Content hashes: sha256 of files (chunked) and of folders (over their files' hashes)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

CHUNK = 1 << 20
FILE_HASH = "sha256"
DIR_HASH = "sha256-dir"


class Digest(NamedTuple):
    """What hashing a file or folder learns: digest, algorithm, total size, number of files."""

    hash: str
    hash_type: str
    size: int
    n_files: int | None


def hash_local_file(path: str) -> Digest:
    """sha256 of a local file, streamed."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        size = handle.tell()
    return Digest(digest.hexdigest(), FILE_HASH, size, None)


def hash_file(fs: AbstractFileSystem, path: str) -> Digest:
    """sha256 of a file on any fsspec filesystem, read in 1 MiB chunks."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
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


def hash_folder(fs: AbstractFileSystem, path: str) -> Digest:
    """A folder's hash: sha256 over its sorted files' relative paths and sha256 digests."""
    outer = hashlib.sha256()
    size = 0
    files = list_files(fs, path)
    for rel, full in files:
        inner = hash_file(fs, full)
        size += inner.size
        outer.update(f"{rel}\0{inner.hash}\n".encode())
    return Digest(outer.hexdigest(), DIR_HASH, size, len(files))
