"""Deleting artifacts: the record always; owned bytes when no other record references them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from lakeline import checkpoints
from lakeline.db.errors import foreign_key_violation, with_retries
from lakeline.errors import DoesNotExist, LakelineError
from lakeline.models import Artifact, CollectionArtifact
from lakeline.storage.roots import join, protocol_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance
    from lakeline.models import Storage

log = logging.getLogger(__name__)


def delete_artifact(artifact: Artifact, instance: Instance, *, delete_bytes: bool = True) -> None:
    """Delete one artifact version; the previous version becomes the latest again.

    Bytes registered in place (a file inside a storage root) are never removed: lakeline
    did not create them; nor is anything a reference names. Uploaded bytes are removed once
    no record references them, in the same transaction, under the lock a save of the same
    bytes takes (so a save racing this delete never ends with a record without bytes).
    Refused (LakelineError, nothing deleted) when the record is in a collection, or when its
    previous version would become the latest under a key another artifact's latest holds
    now (an older key of the stem: the latest's was edited since).
    """
    from lakeline.db.session import check_own

    if artifact.id is None:
        raise LakelineError("this artifact was never saved: there is nothing to delete")
    check_own(artifact, instance)

    def attempt() -> list[tuple[str, str]]:
        trash: list[tuple[str, str]] = []
        try:
            _delete_record(instance, artifact, delete_bytes, trash)
        except BaseException:
            _put_back(trash)
            raise
        return trash

    def raced(exc: BaseException) -> bool:
        # a foreign key refused the DELETE: a collection of the record committed after this
        # transaction's snapshot (REPEATABLE READ; READ COMMITTED reads it after the wait):
        # the next attempt sees it and refuses as for any member
        return instance.dialect == "postgresql" and foreign_key_violation(exc)

    _empty(with_retries(attempt, raced))


def _delete_record(
    instance: Instance, artifact: Artifact, delete_bytes: bool, trash: list[tuple[str, str]]
) -> None:
    """One attempt, in one transaction: the keys' locks, then the rows, then the objects'
    locks (`_unreferenced`), the order a save takes them in. On PostgreSQL the key of the
    caller's copy is locked before anything is read, then the keys of the record and of the
    version that becomes the latest, when they differ (a key edited meanwhile): a save of
    either key marks one of them (on SQLite the write lock serializes writers already)."""
    from sqlalchemy.orm.attributes import instance_dict

    from lakeline.db.locks import lock_keys
    from lakeline.db.rows import is_postgres

    with instance.sessions.write() as session:
        postgres = is_postgres(session)
        locked: set[str] = set()
        known = instance_dict(artifact).get("key")
        if postgres and known is not None:
            lock_keys(session, "artifact", [known])
            locked.add(known)
        while True:  # read under the locks: what the record and the latest version are now
            # its row locked too (PostgreSQL): a collection being saved with it (its foreign
            # key's lock on the row) commits first, and the check below sees its membership
            record = session.get(
                Artifact, artifact.id, populate_existing=True, with_for_update=True
            )
            if record is None:
                raise DoesNotExist(f"artifact {artifact.uid} no longer exists")
            previous = None
            if record.is_latest:
                previous = session.execute(
                    select(Artifact.id, Artifact.uid, Artifact.key)
                    .where(Artifact.stem == record.stem, Artifact.id != record.id)
                    .order_by(Artifact.uid.desc())
                    .limit(1)
                ).first()
            keys = {record.key, None if previous is None else previous.key}
            keys.discard(None)
            if not postgres or keys <= locked:
                break
            more = sorted(str(k) for k in keys - locked)
            lock_keys(session, "artifact", more)  # then read again
            locked.update(more)
        member = session.scalars(
            select(CollectionArtifact.collection_id).where(
                CollectionArtifact.artifact_id == record.id
            )
        ).first()
        if member is not None:
            raise LakelineError(
                f"artifact {record.uid} belongs to a collection (id {member}): delete the "
                "collection or save a new version without it first"
            )
        if previous is not None and previous.key not in (None, record.key):
            _key_free(session, record, previous.uid, previous.key)
        session.execute(delete(Artifact).where(Artifact.id == record.id))
        checkpoints.reach("delete.deleted")
        if previous is not None:
            session.execute(
                update(Artifact).where(Artifact.id == previous.id).values(is_latest=True)
            )
        storage: Storage = instance.storage_by_id(record.storage_id)
        if delete_bytes and record.available and not record.in_place:
            # a reference holds no bytes; in-place files are not lakeline's to remove
            doomed = _unreferenced(session, storage, [record.store_key])
            _take_away(instance, storage, doomed, trash)


def _key_free(session: Session, record: Artifact, uid: str, key: str) -> None:
    """LakelineError when `key`, an older key of `record`'s stem (the latest's was edited),
    names another artifact's latest version now: version `uid` cannot become the latest
    under it (read under the keys' locks)."""
    holder = session.scalars(
        select(Artifact.uid).where(
            Artifact.key == key, Artifact.is_latest.is_(True), Artifact.stem != record.stem
        )
    ).first()
    if holder is not None:
        raise LakelineError(
            f"artifact {record.uid} cannot be deleted: its previous version {uid} would become "
            f"the latest under key {key!r}, which names artifact {holder} now; delete that "
            "artifact or give it another key first"
        )


def _unreferenced(session: Session, storage: Storage, store_keys: Sequence[str]) -> list[str]:
    """Lock `store_keys`' objects (as a save does before relying on one) and return those no
    record references. Committed saves are seen; a save that commits after this transaction
    finds the objects gone and stores them again."""
    from lakeline.artifacts.store import object_lock
    from lakeline.db.locks import lock_keys
    from lakeline.db.rows import one_of

    keys = sorted(set(store_keys))
    lock_keys(session, "object", [object_lock(storage.id, key) for key in keys])
    stmt = select(Artifact.store_key).where(
        Artifact.storage_id == storage.id, one_of(session, Artifact.store_key, keys)
    )
    used = set(session.scalars(stmt.distinct()))
    return [key for key in keys if key not in used]


def _take_away(
    instance: Instance, storage: Storage, store_keys: Sequence[str], trash: list[tuple[str, str]]
) -> None:
    """Inside the transaction: move local objects to a temporary name, noted in `trash` as
    (temporary, original) to empty after the commit or put back if it fails; remove remote
    objects (a failed commit then leaves records without bytes: `lakeline verify` finds them)."""
    from lakeline.artifacts.transfer import PARTIAL, remove

    fs = instance.fs(storage)
    for key in store_keys:
        location = join(storage.root, key)
        try:
            if protocol_of(location) == "local":
                if os.path.lexists(location):
                    away = os.path.join(
                        os.path.dirname(location),
                        f".{os.path.basename(location)}.{os.urandom(4).hex()}{PARTIAL}",
                    )
                    os.replace(location, away)
                    trash.append((away, location))
            else:
                remove(location, fs)
        except OSError as exc:  # unreferenced bytes are only wasted space: gc retries
            log.warning("could not remove %s: %s", location, exc)


def _empty(trash: Sequence[tuple[str, str]]) -> None:
    from lakeline.artifacts.transfer import remove_local

    for away, _ in trash:
        remove_local(Path(away))


def remove_unreferenced(
    instance: Instance, storage: Storage, store_keys: Sequence[str]
) -> list[str]:
    """Remove the objects among `store_keys` that no record references, under the lock a
    save takes on them; returns the store keys removed."""
    from lakeline.db.rows import chunks

    removed: list[str] = []
    for chunk in chunks(sorted(set(store_keys))):
        trash: list[tuple[str, str]] = []
        try:
            with instance.sessions.write() as session:
                doomed = _unreferenced(session, storage, chunk)
                _take_away(instance, storage, doomed, trash)
        except BaseException:
            _put_back(trash)
            raise
        _empty(trash)
        removed.extend(doomed)
    return removed


def _put_back(trash: Sequence[tuple[str, str]]) -> None:
    """Undo `_take_away` of local objects when the transaction did not commit."""
    for away, location in trash:
        if not os.path.lexists(location):
            os.replace(away, location)
