"""Updates of a recorded run between its start and its finish: status moves, retried
attempts, engine metadata, and finding a step by that metadata (part of the Recorder)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lakeline.errors import InvalidValue, LakelineError
from lakeline.lineage.hidden_runs import gone_error
from lakeline.lineage.records import FINAL_STATUSES, log_status
from lakeline.models import Run, Transform
from lakeline.models.base import check_json

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.lineage.handles import Handle


def check_meta(namespace: str, meta: dict[str, Any]) -> None:
    """Refuse metadata a run's params (JSON) cannot hold, NaN and NUL bytes included
    (PostgreSQL's JSON refuses them): a queued run holding it would fail every flush.
    InvalidValue, as for a step's params."""
    try:
        json.dumps(meta, allow_nan=False)
        check_json({namespace: meta})  # a NUL byte: refused by both databases' JSON
    except (TypeError, ValueError) as error:
        raise InvalidValue(f"annotate({namespace!r}): metadata must be JSON: {error}") from None


class RunUpdates:
    """The Recorder's methods that change a run it started (a mixin of `Recorder`)."""

    engine: str
    instance: Instance | None

    def mark(self, step: Handle, status: str, *, at: datetime | None = None) -> Run:
        """Move a run forward to a non-final status (scheduled -> started); never backwards."""
        assert self.instance is not None
        order = ("scheduled", "started")
        if status not in order:
            raise LakelineError(f"mark() takes scheduled or started, not {status!r}")
        with self.instance.sessions.write() as session:
            record = session.get(Run, step.run.id)
            if record is None:
                raise gone_error(session, step.run, "mark")
            if record.status in order and order.index(record.status) < order.index(status):
                log_status(record, status, at)
        step.run = record
        return record

    def note_attempt(self, step: Handle, attempt: int, *, at: datetime | None = None) -> Run:
        """A retried step: attempt `attempt - 1` failed and attempt `attempt` started.

        Both transitions go into the run's status log (once: a replay changes nothing); the
        run stays one run across its attempts.
        """
        assert self.instance is not None
        with self.instance.sessions.write() as session:
            record = session.get(Run, step.run.id)
            if record is None:
                raise gone_error(session, step.run, "note an attempt of")
            log_ = record.status_log or []
            started = sum(1 for entry in log_ if entry.get("status") == "started")
            if record.status not in FINAL_STATUSES and started < attempt:
                log_status(record, "errored", at)
                log_status(record, "started", at)
                *before, failed, again = record.status_log or []
                record.status_log = [
                    *before,
                    {**failed, "attempt": attempt - 1},
                    {**again, "attempt": attempt},
                ]
        step.run = record
        return record

    def annotate(self, step: Handle, namespace: str, **meta: Any) -> Run:
        """Merge engine metadata into `params[namespace]` of the step's run (e.g. a cache key)."""
        assert self.instance is not None
        check_meta(namespace, meta)
        with self.instance.sessions.write() as session:
            record = session.get(Run, step.run.id)
            if record is None:
                raise gone_error(session, step.run, "annotate")
            params = dict(record.params or {})
            current = dict(params.get(namespace) or {})
            if any(current.get(k) != v for k, v in meta.items()):
                params[namespace] = {**current, **meta}
                record.params = params
        step.run = record
        return record

    def find_step(
        self, transform_key: str, namespace: str, name: str, value: Any, *, scan: int = 1000
    ) -> str | None:
        """The engine ref of this engine's newest completed run of `transform_key` whose
        `params[namespace][name] == value` (among the newest `scan` runs), or None."""
        assert self.instance is not None
        stmt = (
            select(Run.engine_ref, Run.params)
            .join(Transform, Transform.id == Run.transform_id)
            .where(Run.engine == self.engine, Transform.key == transform_key)
            .where(Run.status == "completed")
            .order_by(Run.id.desc())
            .limit(scan)
        )
        with self.instance.sessions.read() as session:
            for ref, params in session.execute(stmt):
                if ((params or {}).get(namespace) or {}).get(name) == value:
                    return str(ref)
        return None
