"""Where an artifact's bytes are: storage roots, URLs and filesystems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeline.storage.keys import REFERENCE_STORAGE
from lakeline.storage.roots import filesystem, join, protocol_of, relative_key

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from lakeline.instance import Instance
    from lakeline.models import Artifact, Storage


def fs_for_location(
    location: str, instance: Instance, *, normalized: bool = False
) -> AbstractFileSystem:
    """The filesystem for a location, with the options of the storage of `instance` that
    contains it.

    `normalized=True`: `location` already went through `normalize_root`.
    """
    for storage in instance.storages():
        if storage.type == REFERENCE_STORAGE:
            continue
        if (
            location == storage.root
            or relative_key(location, storage.root, normalized=normalized) is not None
        ):
            return instance.fs(storage)
    return filesystem(location)


def storage_containing(
    location: str, instance: Instance, *, normalized: bool = False
) -> tuple[Storage, str] | None:
    """(storage, key inside it) when `location` lies inside a storage root registered in
    `instance` (reference storages, which hold no files, never count).

    `normalized=True`: `location` already went through `normalize_root`.
    """
    best: tuple[Storage, str] | None = None
    for storage in instance.storages():
        if storage.type == REFERENCE_STORAGE or protocol_of(storage.root) != protocol_of(location):
            continue
        key = relative_key(location, storage.root, normalized=normalized)
        if key is not None and (best is None or len(storage.root) > len(best[0].root)):
            best = (storage, key)
    return best


def artifact_url(artifact: Artifact, instance: Instance) -> str:
    """Full location of the bytes of `artifact`, a record of `instance` (path or URL)."""
    storage = instance.storage_by_id(artifact.storage_id)
    return join(storage.root, artifact.store_key)


def artifact_path(artifact: Artifact, instance: Instance) -> str:
    """Where the artifact's bytes are; `ArtifactUnavailable` for a reference."""
    from lakeline.artifacts.access import require_bytes

    require_bytes(artifact, instance)
    return artifact_url(artifact, instance)
