"""Deleting artifacts: the record always; owned bytes when no other record references them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from lakeline.errors import DoesNotExist, LakelineError
from lakeline.models import Artifact, CollectionArtifact
from lakeline.storage.roots import join

if TYPE_CHECKING:
    from lakeline.models import Storage

log = logging.getLogger(__name__)


def delete_artifact(artifact: Artifact, *, delete_bytes: bool = True) -> None:
    """Delete one artifact version; the previous version becomes the latest again.

    Bytes registered in place (a file inside a storage root) are never removed: lakeline
    did not create them; nor is anything a reference names. Uploaded bytes are removed once
    no record references them.
    """
    from lakeline.instance import current

    if artifact.id is None:
        raise LakelineError("this artifact was never saved: there is nothing to delete")
    instance = current()
    with instance.sessions.write() as session:
        record = session.get(Artifact, artifact.id)
        if record is None:
            raise DoesNotExist(f"artifact {artifact.uid} no longer exists")
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
        if record.is_latest:
            previous = session.scalars(
                select(Artifact.id)
                .where(Artifact.stem == record.stem, Artifact.id != record.id)
                .order_by(Artifact.uid.desc())
                .limit(1)
            ).first()
        else:
            previous = None
        session.execute(delete(Artifact).where(Artifact.id == record.id))
        if previous is not None:
            session.execute(update(Artifact).where(Artifact.id == previous).values(is_latest=True))
        storage: Storage = instance.storage_by_id(record.storage_id)
        store_key, in_place = record.store_key, record.in_place
        if not record.available:  # a reference: lakeline holds no bytes to remove
            return
    if delete_bytes and not in_place:
        with instance.sessions.read() as session:
            still_used = session.execute(
                select(Artifact.id)
                .where(Artifact.storage_id == storage.id, Artifact.store_key == store_key)
                .limit(1)
            ).first()
        if still_used is None:
            from lakeline.artifacts.transfer import remove

            try:
                remove(join(storage.root, store_key), instance.fs(storage))
            except OSError as exc:  # the record is gone; orphaned bytes are only wasted space
                log.warning("could not remove %s: %s", join(storage.root, store_key), exc)
