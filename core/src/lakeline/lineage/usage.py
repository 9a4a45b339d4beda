"""Recording that the current run used an artifact (when it is loaded, opened or cached)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import Integer, bindparam, text

from lakeline.lineage.context import current_run, current_run_in
from lakeline.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance
    from lakeline.models import Artifact, Run

_seen: set[tuple[str, str, str]] = set()
_seen_lock = threading.Lock()

# The same SQL on SQLite and PostgreSQL. A text() statement is compiled once and cached;
# SQLAlchemy cannot cache the dialect-specific insert().on_conflict_do_nothing() construct.
_INSERT_INPUT = (
    text(
        "INSERT INTO run_inputs (run_id, artifact_id, role, used_at) "
        "VALUES (:run_id, :artifact_id, :role, :used_at) "
        "ON CONFLICT (run_id, artifact_id, role) DO NOTHING RETURNING id"
    )
    .bindparams(bindparam("used_at", type_=UTCDateTime()))
    .columns(id=Integer)
)


def insert_input(session: Session, run_id: int, artifact_id: int, role: str = "") -> bool:
    """In `session`'s transaction: the used-by edge, once per role; True when it is new."""
    values = {"run_id": run_id, "artifact_id": artifact_id, "role": role, "used_at": utcnow()}
    return session.execute(_INSERT_INPUT, values).first() is not None


def add_input(run: Run, artifact: Artifact, instance: Instance, role: str = "") -> bool:
    """Record in `instance` that `run` used `artifact` (once per role); True when new."""
    with instance.sessions.write() as session:
        return insert_input(session, run.id, artifact.id, role)


def note_use(artifact: Artifact, instance: Instance, role: str = "") -> None:
    """If a run is current, record that it used `artifact`, a record of `instance` (not its
    own outputs). A run of another instance cannot link to it: its use is not recorded."""
    if artifact.id is None or current_run() is None:
        return
    run = current_run_in(instance)
    if run is None or artifact.run_id == run.id:
        return
    edge = (run.uid, artifact.uid, role)  # uids: unique across instances
    with _seen_lock:
        if edge in _seen:
            return
        _seen.add(edge)
    if add_input(run, artifact, instance, role):
        from lakeline.lineage.records import fire

        fire("artifact_used", artifact=artifact, run=run)
