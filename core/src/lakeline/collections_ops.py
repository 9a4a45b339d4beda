"""Saving, listing and deleting collections: ordered, versioned sets of saved artifacts."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from lakeline.db.errors import foreign_key_violation, retryable
from lakeline.db.session import check_own, stamp
from lakeline.errors import LakelineError, MissingReference
from lakeline.ids import new_stem, suffix_index, versioned_uid
from lakeline.models import Artifact, Collection, CollectionArtifact

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lakeline.instance import Instance

RETRIES = 5  # as a save's (db/errors.py)


def members_hash(artifacts: Sequence[Artifact]) -> str:
    """A collection's identity: sha256 over its members' uids, in order."""
    return hashlib.sha256("\n".join(a.uid for a in artifacts).encode()).hexdigest()


def collection_key(key: str | None) -> str | None:
    """A collection's key, validated as artifact keys are (None: no key)."""
    from lakeline.storage.keys import validate_key

    return None if key is None else validate_key(key)


def check_members(artifacts: Sequence[Artifact]) -> list[Artifact]:
    """The members as a list; each must be a saved Artifact."""
    members = list(artifacts)
    if not members:
        raise LakelineError("a collection needs at least one artifact")
    for member in members:
        if not isinstance(member, Artifact):
            raise TypeError(f"collections hold Artifacts, got {type(member).__name__}")
        if member.id is None:
            raise LakelineError(f"save artifact {member.key or member} before adding it")
    return members


def save_collection(
    collection: Collection, members: Sequence[Artifact], instance: Instance
) -> Collection:
    """Write the collection and its ordered members (records of `instance`) into `instance`
    in one transaction (idempotent by key)."""
    for member in members:
        check_own(member, instance)
    digest = members_hash(members)
    for attempt in range(RETRIES):
        try:
            with instance.sessions.write() as session:
                stmt = select(Collection).where(Collection.hash == digest)
                stmt = stmt.where(
                    Collection.key.is_(None)
                    if collection.key is None
                    else Collection.key == collection.key
                )
                existing = session.scalars(stmt.order_by(Collection.is_latest.desc())).first()
                if existing is not None:
                    _adopt(collection, existing)
                    stamp(collection, instance)
                    return collection
                previous = None
                if collection.key is not None:
                    previous = session.scalars(
                        select(Collection).where(
                            Collection.key == collection.key, Collection.is_latest.is_(True)
                        )
                    ).first()
                if previous is None:
                    stem, index = new_stem(), 0
                else:
                    stem = previous.stem
                    top = session.scalar(
                        select(func.max(Collection.uid)).where(Collection.stem == stem)
                    )
                    index = suffix_index(str(top)[-4:]) + 1
                    session.execute(
                        update(Collection)
                        .where(Collection.id == previous.id)
                        .values(is_latest=False)
                    )
                    collection.description = collection.description or previous.description
                collection.stem, collection.uid = stem, versioned_uid(stem, index)
                collection.is_latest, collection.hash = True, digest
                collection.created_by_id = instance.user.id
                session.add(collection)
                session.flush()
                session.add_all(
                    CollectionArtifact(
                        collection_id=collection.id, position=position, artifact_id=member.id
                    )
                    for position, member in enumerate(members)
                )
            return collection
        except IntegrityError as exc:
            # retried: another writer saved the same key or version first (a retry sees it);
            # a member deleted since it was loaded fails every attempt alike
            if attempt == RETRIES - 1 or not retryable(exc):
                if foreign_key_violation(exc):
                    raise _gone(members, instance) from exc
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _gone(members: Sequence[Artifact], instance: Instance) -> MissingReference:
    """The error for a save whose members' foreign key refused: the members no longer saved."""
    with instance.sessions.read() as session:
        ids = {m.id for m in members}
        present = set(session.scalars(select(Artifact.id).where(Artifact.id.in_(ids))))
    gone = [m for m in members if m.id not in present]
    named = ", ".join(f"artifact {m.uid} ({m.key or 'no key'})" for m in gone[:3])
    return MissingReference(
        f"cannot save the collection: {named or 'a member'} no longer exists (deleted since it "
        "was loaded); nothing was saved"
    )


def _adopt(target: Collection, source: Collection) -> None:
    for column in Collection.__table__.columns:
        setattr(target, column.key, getattr(source, column.key))
    make_transient_to_detached(target)


def collection_members(collection: Collection, instance: Instance) -> list[Artifact]:
    """The collection's artifacts (it is a record of `instance`), in order."""
    with instance.sessions.read() as session:
        stmt = (
            select(Artifact)
            .join(CollectionArtifact, CollectionArtifact.artifact_id == Artifact.id)
            .where(CollectionArtifact.collection_id == collection.id)
            .order_by(CollectionArtifact.position)
        )
        return list(session.scalars(stmt))


def delete_collection(collection: Collection, instance: Instance) -> None:
    """Delete this collection version (its artifacts stay); the previous becomes latest."""
    if collection.id is None:
        raise LakelineError("this collection was never saved: there is nothing to delete")
    check_own(collection, instance)
    with instance.sessions.write() as session:
        record = session.get(Collection, collection.id)
        if record is None:
            raise LakelineError(f"collection {collection.uid} no longer exists")
        session.execute(
            delete(CollectionArtifact).where(CollectionArtifact.collection_id == record.id)
        )
        session.execute(delete(Collection).where(Collection.id == record.id))
        if record.is_latest:
            previous = session.scalar(
                select(Collection.id)
                .where(Collection.stem == record.stem)
                .order_by(Collection.uid.desc())
                .limit(1)
            )
            if previous is not None:
                session.execute(
                    update(Collection).where(Collection.id == previous).values(is_latest=True)
                )
