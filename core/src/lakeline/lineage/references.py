"""What the Recorder records for data it cannot read: references, and records of files that
are gone from disk but were registered while they existed."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from lakeline.artifacts.locate import storage_containing
from lakeline.artifacts.reference import normalize_location
from lakeline.artifacts.save import save_artifacts
from lakeline.lineage.records import fire
from lakeline.lineage.run_rows import claim_outputs
from lakeline.lineage.usage import add_input, insert_input
from lakeline.models import Artifact, Run
from lakeline.storage.roots import protocol_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from lakeline.artifacts.save import Plan
    from lakeline.instance import Instance
    from lakeline.lineage.handles import Handle
    from lakeline.models import Storage


def known_record(contained: tuple[Storage, str] | None, instance: Instance) -> Artifact | None:
    """The newest record of `instance` at a location inside one of its storage roots, if any."""
    if contained is None:
        return None
    storage, store_key = contained
    with instance.sessions.read() as session:
        return session.scalars(
            select(Artifact)
            .where(Artifact.storage_id == storage.id, Artifact.store_key == store_key)
            .order_by(Artifact.uid.desc())
        ).first()


def record_reference(
    instance: Instance,
    step: Handle | Run,
    location: str,
    *,
    output: bool,
    role: str,
    key: str | None,
    hash: str | None,
    hash_type: str | None,
    size: int | None,
    kind: str | None,
) -> Artifact:
    """`Recorder.reference`: the reference saved with its edge (producer or used-by) in the
    save's transaction; a local location already recorded keeps its record. `step`: the
    step's handle or its run (of `instance`)."""
    run = step if isinstance(step, Run) else step.run
    location = normalize_location(location)  # bad text refused before any lookup uses it
    if protocol_of(location) == "local":
        known = known_record(storage_containing(location, instance, normalized=True), instance)
        if known is not None:
            if output:
                with instance.sessions.write() as session:
                    claim_outputs(session, [known], run.id)
            elif add_input(run, known, instance, role):
                fire("artifact_used", artifact=known, run=run)
            return known
    artifact = Artifact.reference(
        location,
        key=key,
        hash=hash,
        hash_type=hash_type,
        size=size,
        kind=kind,
        run=run if output else None,
    )
    new_edge = [False]

    def link(session: Session, plans: Sequence[Plan]) -> None:
        result = plans[0].result
        assert result is not None and result.id is not None
        if output:
            claim_outputs(session, [result], run.id)
        else:
            new_edge[0] = insert_input(session, run.id, result.id, role)

    saved = save_artifacts([artifact], instance, also=link, producer_from_context=False)[0]
    if new_edge[0]:
        fire("artifact_used", artifact=saved, run=run)
    return saved


def mark_gone(location: str, instance: Instance) -> Artifact | None:
    """`Recorder.mark_gone`: the records of `instance` held in place at a local location that
    no longer exists become unavailable (one UPDATE); the newest is returned."""
    if protocol_of(location) != "local" or os.path.lexists(location):
        return None
    contained = storage_containing(location, instance, normalized=True)
    if contained is None:
        return None
    storage, store_key = contained
    with instance.sessions.write() as session:
        session.execute(
            update(Artifact)
            .where(Artifact.storage_id == storage.id, Artifact.store_key == store_key)
            .where(Artifact.in_place.is_(True), Artifact.available.is_(True))
            .values(available=False)
        )
    return known_record(contained, instance)
