"""Reading artifacts: a local path (cached and verified for remote storage), load, open.

Every read checks the stored bytes cheaply first: their size, and the mtime or ETag recorded
at save time (`store_tag`); an object in `.lakeline/objects/` must also sit at the address of
the record's hash. When the tag differs but the size agrees, the bytes are hashed: the same
hash refreshes the tag (a file touched, an object rewritten with the same bytes), another
one is an `IntegrityProblem`. Remote bytes are hashed in full when downloaded to the cache;
cached copies carry a fixed mtime, so a cached copy that was written to is downloaded again.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.config import cache_dir
from lakeline.errors import (
    ArtifactUnavailable,
    IntegrityProblem,
    LakelineError,
    UnreadableArtifact,
    UnsupportedObject,
)
from lakeline.storage.hashing import DIR_HASH, Fingerprint, fingerprint, hash_file, hash_folder
from lakeline.storage.keys import OBJECTS_PREFIX
from lakeline.storage.roots import join, protocol_of, strip_protocol

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from lakeline.instance import Instance
    from lakeline.models import Artifact, Storage

log = logging.getLogger(__name__)
CACHED_MTIME_NS = 1_000_000_000 * 10**9  # cached copies carry this mtime (2001-09-09)


def _label(artifact: Artifact) -> str:
    return f"artifact {artifact.uid} ({artifact.key or 'no key'})"


def _hash(fs: AbstractFileSystem, path: str, artifact: Artifact) -> str:
    if artifact.hash_type == DIR_HASH:
        return hash_folder(fs, path).hash
    return hash_file(fs, path).hash


def _verify(path: Path, artifact: Artifact) -> None:
    from fsspec.implementations.local import LocalFileSystem

    if _hash(LocalFileSystem(), str(path), artifact) != artifact.hash:
        raise IntegrityProblem(
            f"downloaded bytes of {_label(artifact)} do not match its recorded "
            f"{artifact.hash_type} hash: the stored object changed or is corrupt"
        )


def _addressed(artifact: Artifact) -> bool:
    """Whether the record's hash is the one its content-addressed object is named after."""
    key = artifact.store_key
    if artifact.in_place or not key.startswith(OBJECTS_PREFIX + "/") or not artifact.hash:
        return True
    return key.rsplit("/", 1)[-1].startswith(artifact.hash)


def _misaddressed(artifact: Artifact) -> str:
    return f"the recorded hash of {_label(artifact)} is not the one its object is stored under"


def stored_problem(artifact: Artifact, instance: Instance, *, full: bool = False) -> str | None:
    """What is wrong with an artifact's stored bytes (in `instance`), or None. The cheap check
    (size, tag, content address) unless `full`: then the bytes are hashed. A tag that alone
    differs is settled by hashing, and refreshed when the hash agrees."""
    storage = instance.storage_by_id(artifact.storage_id)
    fs = instance.fs(storage)
    location = join(storage.root, artifact.store_key)
    path = strip_protocol(location)
    if not _addressed(artifact):
        return _misaddressed(artifact)
    try:
        stored = fingerprint(fs, path, is_dir=artifact.n_files is not None)
    except FileNotFoundError:
        return f"the bytes of {_label(artifact)} are missing at {location}"
    if artifact.size is not None and stored.size != artifact.size:
        return (
            f"the bytes of {_label(artifact)} at {location} changed since it was saved "
            f"({stored.size} bytes, {artifact.size} recorded)"
        )
    if not full and (artifact.store_tag is None or stored.tag == artifact.store_tag):
        return None
    if artifact.hash is None or _hash(fs, path, artifact) != artifact.hash:
        return (
            f"the bytes of {_label(artifact)} at {location} do not match its recorded "
            f"{artifact.hash_type} hash: they changed since it was saved"
        )
    if stored.tag != artifact.store_tag:
        _retag(artifact, stored, instance)
    return None


def _retag(artifact: Artifact, stored: Fingerprint, instance: Instance) -> None:
    """Record the tag of bytes that were hashed and found right (best effort: a read-only
    database role or instance keeps the old tag, and reads keep hashing)."""
    from sqlalchemy import update
    from sqlalchemy.orm.attributes import set_committed_value

    from lakeline.models import Artifact as Model

    try:
        with instance.sessions.write() as session:
            session.execute(
                update(Model).where(Model.id == artifact.id).values(store_tag=stored.tag)
            )
    except Exception as exc:
        log.debug("could not refresh the store tag of %s: %s", artifact.uid, exc)
        return
    set_committed_value(artifact, "store_tag", stored.tag)


def _check(artifact: Artifact, instance: Instance) -> None:
    problem = stored_problem(artifact, instance)
    if problem is not None:
        raise IntegrityProblem(problem)


def require_bytes(artifact: Artifact, instance: Instance) -> None:
    """Raise `ArtifactUnavailable` for a reference (unless its bytes were saved since this
    object was loaded: then the object takes on the record's new state)."""
    if artifact.available is not False:
        return
    from sqlalchemy.orm.attributes import set_committed_value

    from lakeline.artifacts.locate import artifact_url
    from lakeline.artifacts.reference import unavailable_message
    from lakeline.models import Artifact

    if artifact.id is not None:
        with instance.sessions.read() as session:
            record = session.get(Artifact, artifact.id)
        if record is not None and record.available:
            for column in Artifact.__table__.columns:
                set_committed_value(artifact, column.key, getattr(record, column.key))
            return
    raise ArtifactUnavailable(unavailable_message(artifact, artifact_url(artifact, instance)))


def cache(artifact: Artifact, instance: Instance) -> str:
    """A local path to the bytes of `artifact` (a record of `instance`); remote bytes are
    downloaded once and verified."""
    from lakeline.lineage.usage import note_use

    require_bytes(artifact, instance)
    path = _cached_path(artifact, instance)
    note_use(artifact, instance)
    return path


def _cached_path(artifact: Artifact, instance: Instance) -> str:
    from lakeline.artifacts.transfer import remove_local

    storage = instance.storage_by_id(artifact.storage_id)
    location = join(storage.root, artifact.store_key)
    if protocol_of(location) == "local":
        _check(artifact, instance)
        return location
    if not _addressed(artifact):
        raise IntegrityProblem(_misaddressed(artifact))
    local = cache_dir() / storage.uid / artifact.store_key
    if local.exists():
        if _cached_intact(local, artifact):
            return str(local)
        log.warning("the cached copy %s was changed: downloading it again", local)
        remove_local(local)
    return _download(instance.fs(storage), storage, location, local, artifact)


def _download(
    fs: AbstractFileSystem, storage: Storage, location: str, local: Path, artifact: Artifact
) -> str:
    from lakeline.artifacts.transfer import remove_local

    if not fs.exists(strip_protocol(location)):
        raise IntegrityProblem(f"the bytes of {_label(artifact)} are missing at {location}")
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        fs.get(strip_protocol(location), str(tmp), recursive=artifact.n_files is not None)
        _verify(tmp, artifact)
        for file in [tmp] if tmp.is_file() else [p for p in tmp.rglob("*") if p.is_file()]:
            os.utime(file, ns=(CACHED_MTIME_NS, CACHED_MTIME_NS))
        os.replace(tmp, local)
    finally:
        remove_local(tmp)
    return str(local)


def _cached_intact(local: Path, artifact: Artifact) -> bool:
    """Whether a cached copy is as it was downloaded: the recorded size, and no file written
    since (each keeps the fixed mtime the download gave it)."""
    files = [local] if local.is_file() else [p for p in local.rglob("*") if p.is_file()]
    stats = [f.stat() for f in files]
    if any(st.st_mtime_ns != CACHED_MTIME_NS for st in stats):
        return False
    return artifact.size is None or sum(st.st_size for st in stats) == artifact.size


def _format(artifact: Artifact) -> Any:
    from lakeline.formats.registry import for_suffix

    return for_suffix(artifact.suffix)


def load(artifact: Artifact, instance: Instance, **kwargs: Any) -> Any:
    """The artifact as an in-memory object, through its format plugin."""
    require_bytes(artifact, instance)
    fmt = _format(artifact)
    if fmt is None or fmt.load is None:
        raise UnsupportedObject(
            f"no format loads {artifact.suffix or 'suffix-less'!r} files: use .cache() for a "
            "local path, or .open() for a file handle"
        )
    path = cache(artifact, instance)
    return _through(fmt, "load", artifact, lambda: fmt.load(path, **kwargs))


def _through(fmt: Any, verb: str, artifact: Artifact, call: Any) -> Any:
    """Run a format's load/open; a library's failure to read becomes one `UnreadableArtifact`
    line naming the artifact and the format (a file of the wrong format under a suffix, a
    corrupt file). Lakeline's own errors and a wrong call (TypeError) pass through."""
    try:
        return call()
    except (LakelineError, TypeError):
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableArtifact(
            f"cannot {verb} artifact {artifact.uid} ({artifact.key}) as {fmt.name}: the bytes "
            f"are not a readable {fmt.name} ({type(exc).__name__}: {detail})"
        ) from exc


def open_artifact(artifact: Artifact, instance: Instance, **kwargs: Any) -> Any:
    """A lazy handle on the artifact (streams from remote storage where the format can)."""
    from lakeline.lineage.usage import note_use

    require_bytes(artifact, instance)
    note_use(artifact, instance)
    fmt = _format(artifact)
    storage = instance.storage_by_id(artifact.storage_id)
    fs = instance.fs(storage)
    location = join(storage.root, artifact.store_key)
    _check(artifact, instance)  # a stat, or a HEAD request: size and mtime or ETag as saved
    if fmt is None or fmt.open is None:
        if artifact.n_files is not None:
            raise UnsupportedObject(
                f"no format opens {artifact.suffix or 'suffix-less'!r} folders: use .cache()"
            )
        return fs.open(strip_protocol(location), "rb")
    if fmt.open_needs_local or protocol_of(location) == "local":
        from fsspec.implementations.local import LocalFileSystem

        path = cache(artifact, instance)
        return _through(fmt, "open", artifact, lambda: fmt.open(path, LocalFileSystem(), **kwargs))
    remote = strip_protocol(location)
    return _through(fmt, "open", artifact, lambda: fmt.open(remote, fs, **kwargs))
