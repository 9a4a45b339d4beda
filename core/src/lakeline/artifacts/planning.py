"""Planning a save: what each artifact's save will do (`Plan`), its file read, hashed and
copied (or hashed where it stays) before any record is written (`artifacts/save.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from lakeline.artifacts.describe import unreadable
from lakeline.artifacts.keying import note_link
from lakeline.artifacts.locate import fs_for_location, storage_containing
from lakeline.artifacts.reference import default_key, reference_root
from lakeline.artifacts.store import Budget, copy_hashed, spool_folder
from lakeline.artifacts.store import discard as _discard
from lakeline.db.rows import fill_new
from lakeline.errors import InvalidKey, LakelineError
from lakeline.storage.hashing import FILE_HASH, Digest, hash_file, hash_folder, hash_in_place
from lakeline.storage.keys import INTERNAL_PREFIX, object_key, validate_key
from lakeline.storage.roots import filesystem, protocol_of, strip_protocol
from lakeline.values import has_surrogate

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsspec import AbstractFileSystem

    from lakeline.instance import Instance
    from lakeline.models import Artifact, Storage


_UNKNOWN = object()  # `contained` not given: looked up


@dataclass
class Plan:
    """What saving one artifact will do."""

    artifact: Artifact
    digest: Digest | None  # None: a reference (nothing was read)
    storage: Storage | None  # None: a reference placed in the reference storage of `ref_place`
    store_key: str
    in_place: bool
    # makes the filesystem the source is read with (None: a reference); see `source_fs`
    source_fs_maker: Callable[[], AbstractFileSystem] | None
    result: Artifact | None = None
    uploaded: bool = False
    key_given: bool = True  # False: the key was derived (path in a storage root) or is None
    # (reference storage root, store key there) of the source location: where a reference to
    # the same data may have been recorded (None for staged objects)
    ref_place: tuple[str, str] | None = None
    # the copy hashed on its way in (a temporary file, or a small file's bytes), until it is
    # placed at store_key
    tmp: str | bytes | None = None
    used_only: bool = False  # a step only used it (no producer in this save): `keying.may_be`
    # recorded in place through a symlink, its key the link's path (`keying.note_link`): the
    # record's `through_link`, never in its hash
    through_link: bool = False
    named: dict[str, int] | None = None  # `keying._named` of records at its place, by key

    @property
    def source_fs(self) -> AbstractFileSystem | None:
        """The filesystem the source is read with, made when first asked for: a local file
        hashed where it is needs none (fsspec's import is ~13 ms of a fresh process)."""
        return None if self.source_fs_maker is None else self.source_fs_maker()


def _plan(
    instance: Instance,
    artifact: Artifact,
    budget: Budget | None = None,
    spool: str | None = None,
    before: tuple[int, ...] | None = None,
    contained: tuple[Storage, str] | object | None = _UNKNOWN,
) -> Plan:
    """`spool`: `spool_folder(instance)`, when the caller read it once for many plans;
    `before`, `contained`: see `plan_file`."""
    source = artifact._source
    # describe.prepare normalised the sources it was given; staged objects are in the cache
    normalized = not artifact._staged
    if artifact._staged:
        contained = None
    elif contained is _UNKNOWN:
        contained = storage_containing(source, instance, normalized=True)
    assert contained is None or isinstance(contained, tuple)
    key_given = vars(artifact).get("key") is not None  # a new record: its own dict
    if contained is not None:
        storage, key_in_root = contained
        if key_in_root.partition("/")[0] == INTERNAL_PREFIX:
            raise InvalidKey(f"{source} lies in lakeline's internal folder; give another path")
        if has_surrogate(key_in_root):  # its place is its path: no database text holds it
            raise InvalidKey(
                f"{source!r} cannot be recorded where it is: its name holds a lone surrogate (a "
                "byte UTF-8 cannot decode); rename it, or save a copy under a key"
            )
        if not key_given:  # derived: set without the ORM's events (a new object, ~3 us)
            fill_new(artifact, {"key": validate_key(key_in_root)})
    else:
        storage = instance.storage
    local = protocol_of(source) == "local"
    make_fs: Callable[[], AbstractFileSystem]
    if local and contained is None and normalized:  # no storage's options to read it with
        make_fs = partial(filesystem, source)
    else:
        make_fs = partial(fs_for_location, source, instance, normalized=normalized)
    path = source if local else strip_protocol(source)
    is_dir = artifact._source_is_dir
    tmp: str | bytes | None = None
    linked = False
    if contained is not None:  # stays where it is: hashed (again if it changed meanwhile)
        # a local file is read with os (its storage's filesystem is fsspec's local one)
        fs = None if local and not is_dir else make_fs()
        digest, stored = hash_in_place(fs, path, is_dir, before)
        fill_new(artifact, {"store_tag": stored.tag})  # a new object: no attribute events
        given = artifact.key if key_given and local else None
        if given is not None and given != contained[1]:  # a link's record, or a keyed save
            linked = note_link(instance, contained[0], contained[1], given, source)
    elif artifact._staged:  # lakeline serialised it: nobody else writes it
        fs = make_fs()
        digest = hash_folder(fs, path) if is_dir else hash_file(fs, path)
    else:
        spool = spool or spool_folder(instance)
        tmp, digest = copy_hashed(path, make_fs(), is_dir, spool, budget)
    if is_dir and digest.n_files == 0:
        _discard(tmp)
        raise LakelineError(f"folder {source} is empty: there is nothing to save")
    store_key = contained[1] if contained else object_key(digest.hash, artifact.suffix)
    return Plan(
        artifact,
        digest,
        storage,
        store_key,
        in_place=contained is not None,
        source_fs_maker=make_fs,
        key_given=key_given,
        ref_place=None if artifact._staged else _ref_place(source),
        tmp=tmp,
        used_only=vars(artifact).get("_used_only", False),
        through_link=linked,
    )


def _ref_place(source: str) -> tuple[str, str] | None:
    """`reference_root(source)`, or None for a path with undecodable bytes (a lone surrogate,
    os.fsdecode's): no database text holds one, so no reference can be recorded there (and
    a statement looking for one fails to encode)."""
    return None if has_surrogate(source) else reference_root(source)


def _plan_reference(instance: Instance, artifact: Artifact) -> Plan:
    """A reference: inside a registered storage root it is placed there (key defaulting to
    its path in the root, as for files); elsewhere in the reference storage of its scheme."""
    location = artifact._source
    key_given = artifact.key is not None
    ref_place = reference_root(location)
    contained = storage_containing(location, instance, normalized=True)
    if contained is None:
        return Plan(
            artifact,
            None,
            None,
            ref_place[1],
            in_place=True,
            source_fs_maker=None,
            key_given=key_given,
            ref_place=ref_place,
        )
    storage, key_in_root = contained
    key = default_key(location, key_in_root)
    if not key_given:
        artifact.key = key
    return Plan(
        artifact,
        None,
        storage,
        key_in_root,
        in_place=True,
        source_fs_maker=None,
        key_given=key_given,
        ref_place=ref_place,
    )


def plan_file(
    artifact: Artifact,
    instance: Instance,
    before: tuple[int, ...] | None = None,
    contained: tuple[Storage, str] | object | None = _UNKNOWN,
) -> Plan:
    """Read (hash, and copy unless it stays in place) one new file artifact now, for a later
    `save_artifacts(..., planned=)` (the batching Recorder hashes files when reported).
    `before`: its (size, mtime_ns, ctime_ns, inode), stat'ed just now: not read again;
    `contained`: `storage_containing` of its location, when the caller just read it. A file
    it may not read: `describe.unreadable` (describe_new's `read_now` left that to it)."""
    budget = None if isinstance(contained, tuple) else Budget()  # in place: nothing copied
    return plan_read(instance, artifact, budget, before=before, contained=contained)


def plan_read(
    instance: Instance,
    artifact: Artifact,
    budget: Budget | None = None,
    spool: str | None = None,
    before: tuple[int, ...] | None = None,
    contained: tuple[Storage, str] | object | None = _UNKNOWN,
) -> Plan:
    """`_plan`, a file it may not open raising `describe.unreadable` naming it (`os.access`
    may call readable a file whose open fails: root on NFS with root_squash, sysfs)."""
    try:
        return _plan(instance, artifact, budget, spool, before, contained)
    except PermissionError as exc:
        if exc.filename != artifact._source:  # not the file's read (a copy's folder, ...)
            raise
        raise unreadable(artifact._source) from None


def plan_stored(
    storage: Storage, artifact: Artifact, made: list[Plan], result: tuple[bytes, int, int, bool]
) -> Plan:
    """The plan of a local file the file worker stored into local `storage` (its default
    storage) as `result` says: (sha256, size, the object's mtime_ns, whether it wrote it). As
    `_plan` of a file outside every storage root, once copied and placed (`store.upload`)."""
    digest, size, mtime_ns, written = result
    hash_hex = digest.hex()
    source = artifact._source
    own = vars(artifact)
    plan = Plan(
        artifact,
        Digest(hash_hex, FILE_HASH, size, None),
        storage,
        object_key(hash_hex, own.get("suffix") or ""),
        in_place=False,
        source_fs_maker=partial(filesystem, source),
        key_given=own.get("key") is not None,
        ref_place=_ref_place(source),
        uploaded=written,
    )
    made.append(plan)
    fill_new(artifact, {"store_tag": f"m:{mtime_ns}"})  # a new object: no attribute events
    return plan
