"""Keys of files registered in place without a key: a location keeps its records' key.

A file inside a storage root that is saved without a key gets its path in the root as its
key. Two roots may hold the same path (two workflow folders, each with `data/s1.csv`): those
are different files, never one artifact nor versions of one another. So, inside the save's
transaction (`artifacts/save.py`):

- a location that already has records keeps their key (the one keyed by the location first,
  then the newest record's): new bytes there are the next version of that record, the same
  bytes are that record; but never a link's record (`may_be`: a record made through a
  symlink, its target's place with the link's path as key; marked so at its save since
  migration 0028, `through_link`; for older records, the path its key names in a registered
  folder is, now, that very file), nor an older one with another producer whose key names
  another entry there (a link since changed);
- a location without records takes its path in the root, unless that key is held by a record
  at another location (or by another location of the same batch): then the key is qualified
  by the root's own folders, nearest first (`projB/data/s1.csv`, `runs/projB/data/s1.csv`,
  ...), the first one nobody else holds.

An unavailable record elsewhere with the file's key and hash is the exception: it is a
reference waiting for these bytes, and the save fills it in (`places.promote`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from lakeline.db.rows import chunks, one_of
from lakeline.models import Artifact
from lakeline.storage.keys import validate_key
from lakeline.storage.roots import protocol_of, strip_protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.artifacts.places import Place, Places
    from lakeline.artifacts.save import Plan
    from lakeline.instance import Instance
    from lakeline.models import Storage

__all__ = ["located", "qualified_keys", "settle_keys"]


def located(plan: Plan) -> bool:
    """Whether `plan`'s identity is its location: in place inside a registered root, with the
    key derived from its path there."""
    return (
        plan.in_place
        and not plan.key_given
        and plan.storage is not None
        and plan.artifact.key is not None
    )


def may_be(plan: Plan, row: Artifact, session: Session) -> int:
    """How well `row`, a record at a located `plan`'s place, stands for that file: 2 keyed
    by the place (its path in the root, or qualified by the root's folders); 1 a file saved
    there under a key (a keyed save: `ll.Artifact(path, key=K)` in place); 0, never, a link's
    record (it stands for the link, and its producer made the link, not the file).

    Since migration 0028 a record says which it is (`through_link`, set at its save by
    `note_link`'s look, whatever the link became since). A record from before (NULL) is
    asked of the file system: a link's if the path its key names in a local root is that
    file now (`_named`) or this process recorded it so (`note_link`); with a producer also
    0 where its key names another entry (a link since changed, or a key naming another
    file), unless `plan` is that producer's own (a step re-recording its keyed save): taken,
    it would say its producer made the file. In a storage without symlinks (a bucket), such
    a record is 0 for a file a step only used (the rule before the file system was asked)."""
    assert plan.storage is not None
    if row.key == plan.store_key or row.key in qualified_keys(plan.storage.root, plan.store_key):
        return 2
    marked = row.through_link
    if marked is not None:  # told at its save (0028): a link's record, or a keyed save
        return 0 if marked else 1
    if (plan.storage.id, plan.store_key, row.key) in _links(session):
        return 0  # a link's record when it was recorded (the link may be gone now)
    producer = row.run_id
    if protocol_of(plan.storage.root) != "local":
        return 0 if plan.used_only and producer is not None else 1
    named = _named(plan, row, session)
    claims = producer is not None and producer != vars(plan.artifact).get("run_id")
    return 0 if named == LINK or (named == OTHER and claims) else 1


NOTHING, LINK, OTHER = 0, 1, 2  # what a record's key names in the local roots, `_named`


def _named(plan: Plan, row: Artifact, session: Session) -> int:
    """What `<root>/<row's key>` is now in the first local root (`plan`'s own first) where it
    is anything: LINK (the very file at `plan`'s place: through a symlink, of the entry or a
    folder above it), OTHER (another file, a symlink elsewhere or dangling), else NOTHING.
    An lstat per root until one finds an entry (and two stats then), once per record and
    plan: only records at a file's place under another key are asked about (rare)."""
    assert plan.storage is not None and row.key is not None
    if plan.named is None:
        plan.named = {}
    found = plan.named.get(row.key)  # by key: rows are read anew when a write is retried
    if found is not None:
        return found
    roots = _local_roots(plan.storage.root, session.info.get("lakeline_instance"))
    found = _names(roots, row.key, plan.artifact._source)
    plan.named[row.key] = found
    return found


def _names(roots: list[str], key: str, source: str) -> int:
    """What `<root>/<key>` is in the first of `roots` where it is anything (`_named`)."""
    for root in roots:
        path = f"{root}/{key}"
        try:
            os.lstat(path)
        except (OSError, ValueError):  # nothing there (or a name no path can hold)
            continue
        try:
            same = os.path.samestat(os.stat(path), os.stat(source))
        except OSError:  # a dangling symlink
            same = False
        return LINK if same else OTHER
    return NOTHING


def note_link(instance: Instance, storage: Storage, store_key: str, key: str, source: str) -> bool:
    """Whether a file in place in local `storage` at `store_key`, recorded under another given
    `key`, is named by that key through a symlink now (`_names`: the link, or a linked folder
    above it): its new record is then marked `through_link` (migration 0028), and `instance`
    remembers for its life that a record there under `key` is a link's (one from before 0028,
    found as the same record, has no mark): `may_be` never takes it for the file, also once
    the link is gone (Snakemake's temp() removes it once its readers ran). An lstat per local
    root: only files recorded under a key other than their path in the root are asked about.
    A file this process found so before is still a link's (a failed flush's file planned
    again once the link is gone); a key qualified by the root's folders names the file by its
    own path in an outer root, through no symlink (review57)."""
    links: set[tuple[int, str, str]] = instance.__dict__.setdefault(_LINKS, set())
    noted = (storage.id, store_key, key)
    if noted in links:
        return True
    if key in qualified_keys(storage.root, store_key):
        return False
    roots = _local_roots(storage.root, instance)
    if _names(roots, key, source) != LINK:
        return False
    links.add(noted)
    return True


_LINKS = "_link_records"  # where an Instance keeps the (storage id, store key, key) of links


def _links(session: Session) -> set[tuple[int, str, str]]:
    instance = session.info.get("lakeline_instance")
    return _NONE if instance is None else instance.__dict__.get(_LINKS, _NONE)


_NONE: set[tuple[int, str, str]] = set()


def _local_roots(own: str, instance: Instance | None) -> list[str]:
    """`own` root, then the instance's other local storage roots (a link's record lies in its
    target's storage, keyed by its path in the workflow folder), without a trailing "/"."""
    from lakeline.artifacts.locate import _roots

    roots = [strip_protocol(own).rstrip("/")]
    if instance is not None:
        for _, root, protocol in _roots(instance):
            path = strip_protocol(root).rstrip("/")
            if protocol == "local" and path not in roots:
                roots.append(path)
    return roots


def _place(plan: Plan) -> Place:
    assert plan.storage is not None
    return (plan.storage.id, plan.store_key)


def _at(record: Artifact, place: Place) -> bool:
    return bool(record.in_place) and (record.storage_id, record.store_key) == place


def qualified_keys(root: str, key: str) -> list[str]:
    """`key` prefixed with the folders of `root`, nearest first (`/a/projB` + `x.csv`:
    `projB/x.csv`, `a/projB/x.csv`); for a bucket URL the bucket is the last folder."""
    path = root if protocol_of(root) == "local" else strip_protocol(root)
    folders = [part for part in path.strip("/").split("/") if part]
    return ["/".join([*folders[len(folders) - n :], key]) for n in range(1, len(folders) + 1)]


def settle_keys(
    session: Session,
    plans: Sequence[Plan],
    latest: dict[str | None, Artifact],
    places: Places,
    read_keys: Callable[[list[str]], None],
) -> None:
    """Give each located plan the key its location keeps, or a key no other location holds.

    `latest` maps keys to their latest records as read so far; `read_keys(keys)` locks and
    reads the records of keys not read yet into `latest` (and the caller's other maps).
    """
    todo = [plan for plan in plans if located(plan)]
    if not todo:
        return
    unread: list[str] = []
    fresh: list[Plan] = []  # plans at locations without records
    where: dict[int, Place] = {}  # each plan's place, by id(plan): made once (ORM reads)
    for plan in todo:
        place = where[id(plan)] = _place(plan)
        rows = [
            (fit, row)
            for row in places.at.get(place, ())
            if row.key is not None and (fit := may_be(plan, row, session))
        ]
        if not rows:
            fresh.append(plan)
            continue
        _, newest = max(rows, key=lambda pair: (pair[0], pair[1].id or 0))
        if newest.key is not None and newest.key != plan.artifact.key:
            plan.artifact.key = newest.key
            if newest.key not in latest:
                unread.append(newest.key)
    if unread:
        read_keys(sorted(set(unread)))
    claimed: dict[str, Place] = {}  # keys this batch gives to a location
    fresh_ids = {id(plan) for plan in fresh}
    for plan in todo:
        if id(plan) not in fresh_ids and plan.artifact.key is not None:
            claimed.setdefault(plan.artifact.key, where[id(plan)])
    clashing: list[Plan] = []
    for plan in fresh:
        key = plan.artifact.key
        assert key is not None
        holder = latest.get(key)
        place = where[id(plan)]
        taken = claimed.get(key, place) != place or (
            holder is not None and not _at(holder, place) and not _awaits(holder, plan)
        )
        if taken:
            clashing.append(plan)
        else:
            claimed[key] = place
    if not clashing:
        return
    options = {id(plan): _options(plan) for plan in clashing}
    held = _held(session, sorted({key for keys in options.values() for key in keys}))
    for plan in clashing:
        for key in options[id(plan)]:
            if key not in held and key not in claimed and key not in latest:
                plan.artifact.key = key
                claimed[key] = _place(plan)
                break
        else:  # every folder of the root is taken: keep the path, say where it lives
            raise_clash(plan)


def _awaits(holder: Artifact, plan: Plan) -> bool:
    """`holder` is a reference waiting for `plan`'s bytes (same hash): the save fills it in."""
    digest = plan.digest
    return (
        not holder.available
        and digest is not None
        and holder.hash == digest.hash
        and holder.hash_type == digest.hash_type
    )


def _options(plan: Plan) -> list[str]:
    assert plan.storage is not None and plan.artifact.key is not None
    return [validate_key(key) for key in qualified_keys(plan.storage.root, plan.artifact.key)]


def _held(session: Session, keys: list[str]) -> set[str]:
    """Which of `keys` some record already has."""
    found: set[str] = set()
    for chunk in chunks(keys):
        stmt = select(Artifact.key).where(one_of(session, Artifact.key, chunk)).distinct()
        found.update(key for key in session.scalars(stmt) if key is not None)
    return found


def raise_clash(plan: Plan) -> None:
    from lakeline.errors import InvalidKey

    raise InvalidKey(
        f"{plan.artifact._source}: its key {plan.artifact.key!r} and every key qualified by "
        "its folders belong to other files: give it a key"
    )
