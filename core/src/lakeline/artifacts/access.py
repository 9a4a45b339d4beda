"""Reading artifacts: a local path (cached and verified for remote storage), load, open."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.config import cache_dir
from lakeline.errors import ArtifactUnavailable, IntegrityProblem, UnsupportedObject
from lakeline.storage.hashing import DIR_HASH, hash_folder, hash_local_file
from lakeline.storage.roots import join, protocol_of, strip_protocol

if TYPE_CHECKING:
    from lakeline.models import Artifact


def _verify(path: Path, artifact: Artifact) -> None:
    if artifact.hash_type == DIR_HASH:
        from fsspec.implementations.local import LocalFileSystem

        digest = hash_folder(LocalFileSystem(), str(path))
    else:
        digest = hash_local_file(str(path))
    if digest.hash != artifact.hash:
        raise IntegrityProblem(
            f"downloaded bytes of artifact {artifact.uid} ({artifact.key}) do not match its "
            f"recorded {artifact.hash_type} hash: the stored object changed or is corrupt"
        )


def require_bytes(artifact: Artifact) -> None:
    """Raise `ArtifactUnavailable` for a reference (unless its bytes were saved since this
    object was loaded: then the object takes on the record's new state)."""
    if artifact.available is not False:
        return
    from sqlalchemy.orm.attributes import set_committed_value

    from lakeline.artifacts.locate import artifact_url
    from lakeline.artifacts.reference import unavailable_message
    from lakeline.instance import current
    from lakeline.models import Artifact

    if artifact.id is not None:
        with current().sessions.read() as session:
            record = session.get(Artifact, artifact.id)
        if record is not None and record.available:
            for column in Artifact.__table__.columns:
                set_committed_value(artifact, column.key, getattr(record, column.key))
            return
    raise ArtifactUnavailable(unavailable_message(artifact, artifact_url(artifact)))


def cache(artifact: Artifact) -> str:
    """A local path to the artifact's bytes; remote bytes are downloaded once and verified."""
    from lakeline.lineage.usage import note_use

    require_bytes(artifact)
    path = _cached_path(artifact)
    note_use(artifact)
    return path


def _cached_path(artifact: Artifact) -> str:
    from lakeline.artifacts.transfer import remove_local
    from lakeline.instance import current

    instance = current()
    storage = instance.storage_by_id(artifact.storage_id)
    location = join(storage.root, artifact.store_key)
    if protocol_of(location) == "local":
        if not os.path.exists(location):
            raise IntegrityProblem(
                f"the bytes of artifact {artifact.uid} ({artifact.key}) are missing at {location}"
            )
        return location
    local = cache_dir() / storage.uid / artifact.store_key
    if local.exists():
        return str(local)
    fs = instance.fs(storage)
    if not fs.exists(strip_protocol(location)):
        raise IntegrityProblem(
            f"the bytes of artifact {artifact.uid} ({artifact.key}) are missing at {location}"
        )
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        fs.get(strip_protocol(location), str(tmp), recursive=artifact.n_files is not None)
        _verify(tmp, artifact)
        os.replace(tmp, local)
    finally:
        remove_local(tmp)
    return str(local)


def _format(artifact: Artifact) -> Any:
    from lakeline.formats.registry import for_suffix

    return for_suffix(artifact.suffix)


def load(artifact: Artifact, **kwargs: Any) -> Any:
    """The artifact as an in-memory object, through its format plugin."""
    require_bytes(artifact)
    fmt = _format(artifact)
    if fmt is None or fmt.load is None:
        raise UnsupportedObject(
            f"no format loads {artifact.suffix or 'suffix-less'!r} files: use .cache() for a "
            "local path, or .open() for a file handle"
        )
    return fmt.load(cache(artifact), **kwargs)


def open_artifact(artifact: Artifact, **kwargs: Any) -> Any:
    """A lazy handle on the artifact (streams from remote storage where the format can)."""
    from lakeline.instance import current
    from lakeline.lineage.usage import note_use

    require_bytes(artifact)
    note_use(artifact)
    fmt = _format(artifact)
    instance = current()
    storage = instance.storage_by_id(artifact.storage_id)
    fs = instance.fs(storage)
    location = join(storage.root, artifact.store_key)
    if fmt is None or fmt.open is None:
        if artifact.n_files is not None:
            raise UnsupportedObject(
                f"no format opens {artifact.suffix or 'suffix-less'!r} folders: use .cache()"
            )
        return fs.open(strip_protocol(location), "rb")
    if fmt.open_needs_local or protocol_of(location) == "local":
        from fsspec.implementations.local import LocalFileSystem

        return fmt.open(cache(artifact), LocalFileSystem(), **kwargs)
    return fmt.open(strip_protocol(location), fs, **kwargs)
