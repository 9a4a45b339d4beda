"""Recording that the current run used an artifact (when it is loaded, opened or cached)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from lakeline.lineage.context import current_run
from lakeline.models import RunInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.models import Artifact, Run

_seen: set[tuple[str, str, str]] = set()
_seen_lock = threading.Lock()


def insert_input(session: Session, run_id: int, artifact_id: int, role: str = "") -> bool:
    """In `session`'s transaction: the used-by edge, once per role; True when it is new."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(RunInput)
        .values(run_id=run_id, artifact_id=artifact_id, role=role)
        .on_conflict_do_nothing(index_elements=["run_id", "artifact_id", "role"])
        .returning(RunInput.id)
    )
    return session.execute(stmt).first() is not None


def add_input(run: Run, artifact: Artifact, role: str = "") -> bool:
    """Record `run` used `artifact` (once per role); True when the edge is new."""
    from lakeline.instance import current

    with current().sessions.write() as session:
        return insert_input(session, run.id, artifact.id, role)


def note_use(artifact: Artifact, role: str = "") -> None:
    """If a run is current, record that it used `artifact` (not its own outputs)."""
    run = current_run()
    if run is None or artifact.id is None or artifact.run_id == run.id:
        return
    edge = (run.uid, artifact.uid, role)  # uids: unique across instances
    with _seen_lock:
        if edge in _seen:
            return
        _seen.add(edge)
    if add_input(run, artifact, role):
        from lakeline.lineage.records import fire

        fire("artifact_used", artifact=artifact, run=run)
