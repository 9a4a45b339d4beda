"""Where an artifact's bytes are: storage roots, URLs and filesystems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeline.storage.keys import REFERENCE_STORAGE
from lakeline.storage.roots import filesystem, join, protocol_of, relative_key

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from lakeline.models import Artifact, Storage


def fs_for_location(location: str, *, normalized: bool = False) -> AbstractFileSystem:
    """The filesystem for a location, with the options of the storage that contains it.

    `normalized=True`: `location` already went through `normalize_root`.
    """
    from lakeline.instance import current

    instance = current()
    for storage in instance.storages():
        if storage.type == REFERENCE_STORAGE:
            continue
        if (
            location == storage.root
            or relative_key(location, storage.root, normalized=normalized) is not None
        ):
            return instance.fs(storage)
    return filesystem(location)


def storage_containing(location: str, *, normalized: bool = False) -> tuple[Storage, str] | None:
    """(storage, key inside it) when `location` lies inside a registered storage root
    (reference storages, which hold no files, never count).

    `normalized=True`: `location` already went through `normalize_root`.
    """
    from lakeline.instance import current

    best: tuple[Storage, str] | None = None
    for storage in current().storages():
        if storage.type == REFERENCE_STORAGE or protocol_of(storage.root) != protocol_of(location):
            continue
        key = relative_key(location, storage.root, normalized=normalized)
        if key is not None and (best is None or len(storage.root) > len(best[0].root)):
            best = (storage, key)
    return best


def artifact_url(artifact: Artifact) -> str:
    """Full location of the artifact's bytes (local path or URL)."""
    from lakeline.instance import current

    storage = current().storage_by_id(artifact.storage_id)
    return join(storage.root, artifact.store_key)


def artifact_path(artifact: Artifact) -> str:
    """Where the artifact's bytes are; `ArtifactUnavailable` for a reference."""
    from lakeline.artifacts.access import require_bytes

    require_bytes(artifact)
    return artifact_url(artifact)
