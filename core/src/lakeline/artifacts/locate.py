"""Where an artifact's bytes are: storage roots, URLs and filesystems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeline.storage.keys import REFERENCE_STORAGE
from lakeline.storage.roots import filesystem, join, key_in_root, protocol_of, relative_key

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from lakeline.instance import Instance
    from lakeline.models import Artifact, Storage


Root = tuple["Storage", str, str]  # (storage, its root, the root's protocol)


def _roots(instance: Instance) -> list[Root]:
    """`instance`'s storages that hold files, with their roots and protocols as plain values:
    read once per loading of the storages, not once per artifact of a bulk save (an ORM
    attribute read costs ~0.5 us, and every path checks every storage)."""
    storages = instance.storages_by_id()
    cached: tuple[object, list[Root]] | None = instance.__dict__.get("_roots")
    if cached is not None and cached[0] is storages:
        return cached[1]
    roots = [
        (s, s.root, protocol_of(s.root)) for s in storages.values() if s.type != REFERENCE_STORAGE
    ]
    instance.__dict__["_roots"] = (storages, roots)
    return roots


def fs_for_location(
    location: str, instance: Instance, *, normalized: bool = False
) -> AbstractFileSystem:
    """The filesystem for a location, with the options of the storage of `instance` that
    contains it.

    `normalized=True`: `location` already went through `normalize_root`.
    """
    protocol = protocol_of(location)
    for storage, root, root_protocol in _roots(instance):
        if location == root:
            return instance.fs(storage)
        if normalized:  # relative_key's test, its protocol read once
            inside = root_protocol == protocol and key_in_root(location, root) is not None
        else:
            inside = relative_key(location, root) is not None
        if inside:
            return instance.fs(storage)
    return filesystem(location)


def storage_containing(
    location: str, instance: Instance, *, normalized: bool = False
) -> tuple[Storage, str] | None:
    """(storage, key inside it) when `location` lies inside a storage root registered in
    `instance` (reference storages, which hold no files, never count).

    `normalized=True`: `location` already went through `normalize_root`.
    """
    roots = _roots(instance)
    folder, _, name = location.rpartition("/")
    if not normalized or not name:
        return _containing(location, roots, normalized=normalized)
    # the root holding a normalized `folder/name` is the one holding any file of `folder`
    # (the longest root that is `folder` or above it): found once a folder, while the roots
    # are the same list (a storage registered or loaded again makes a new one)
    cached: tuple[object, dict[str, tuple[Storage, int] | None]] | None = instance.__dict__.get(
        "_containing"
    )
    if cached is None or cached[0] is not roots:
        cached = instance.__dict__["_containing"] = (roots, {})
    folders = cached[1]
    found = folders.get(folder, _UNSEEN)
    if found is _UNSEEN:
        best = _containing(location, roots, normalized=True)
        if len(folders) >= _FOLDERS:
            folders.clear()
        found = folders[folder] = None if best is None else (best[0], len(location) - len(best[1]))
    if found is None:
        return None
    assert isinstance(found, tuple)
    return found[0], location[found[1] :]


_UNSEEN = object()
_FOLDERS = 10_000  # folders whose storage is remembered (all forgotten past it)


def _containing(
    location: str, roots: list[Root], *, normalized: bool
) -> tuple[Storage, str] | None:
    """`storage_containing`, by looking at every root."""
    best: tuple[Storage, str] | None = None
    longest = -1
    protocol = protocol_of(location)
    for storage, root, root_protocol in roots:
        if root_protocol != protocol:
            continue
        key = key_in_root(location, root) if normalized else relative_key(location, root)
        if key is not None and len(root) > longest:
            best, longest = (storage, key), len(root)
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
