"""The Recorder's hot path: runs inserted and finished with one prebuilt Core statement each.

The ORM would flush one object (or load, then flush a change) with far more Python per call
than the statement itself costs. The statements are built once per dialect, so SQLAlchemy's
compiled cache always hits, and the records they hand back are detached and fully loaded,
exactly as if loaded by a session that then closed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import make_transient_to_detached

from lakeline.errors import LakelineError
from lakeline.lineage.records import FINAL_STATUSES
from lakeline.models import Run
from lakeline.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_statements: dict[tuple[str, str], Any] = {}


def _table() -> Table:
    table = Run.__table__
    assert isinstance(table, Table)
    return table


def _columns() -> list[str]:
    return [column.key for column in _table().columns if not column.primary_key]


def _insert_statement(dialect: str) -> Any:
    stmt = _statements.get(("insert", dialect))
    if stmt is None:
        table = _table()
        stmt = _statements["insert", dialect] = insert(table).returning(table.c.id)
    return stmt


def _finish_statement(dialect: str) -> Any:
    """UPDATE runs SET status, finished_at, the log with one more entry, and exit code, error
    and cached-from where given ... WHERE id = :id AND status <> :status RETURNING *."""
    stmt = _statements.get(("finish", dialect))
    if stmt is not None:
        return stmt
    c = _table().c
    log: ColumnElement[Any]
    # like log_status: a log that is not a list yet (SQL NULL, JSON null) starts empty
    if dialect == "postgresql":
        before = case(
            (func.jsonb_typeof(c.status_log) == "array", c.status_log),
            else_=literal_column("'[]'::jsonb"),
        )
        log = before.op("||")(func.jsonb_build_array(bindparam("p_entry", type_=JSONB)))
    else:
        before = case(
            (func.json_type(c.status_log) == "array", c.status_log),
            else_=literal_column("'[]'"),
        )
        entry = func.json(bindparam("p_entry", type_=String))
        log = func.json_insert(before, literal_column("'$[#]'"), entry)
    status = bindparam("p_status", type_=String)
    cached_from = bindparam("p_cached_from", type_=Integer)
    stmt = (
        update(_table())
        .where(c.id == bindparam("p_id", type_=Integer), c.status != status)
        .values(
            status=status,
            status_log=log,
            finished_at=bindparam("p_at", type_=UTCDateTime()),
            exit_code=func.coalesce(bindparam("p_exit_code", type_=Integer), c.exit_code),
            error=func.coalesce(bindparam("p_error", type_=Text), c.error),
            cached_from_id=func.coalesce(cached_from, c.cached_from_id),
        )
        .returning(*_table().columns)
    )
    _statements["finish", dialect] = stmt
    return stmt


def insert_run(session: Session, run: Run) -> None:
    """INSERT the new `run` (as `new_run` made it) in `session`'s transaction; it gets its id
    and becomes a detached record."""
    if run.created_at is None:
        run.created_at = utcnow()
    values: dict[str, Any] = {}
    for name in _columns():
        values[name] = getattr(run, name)
        setattr(run, name, values[name])  # every column loaded, also the unset (None) ones
    stmt = _insert_statement(session.get_bind().dialect.name)
    run.id = session.execute(stmt, values).scalar_one()
    make_transient_to_detached(run)


def finish_run_row(
    session: Session,
    run_id: int,
    status: str,
    *,
    at: datetime | None = None,
    exit_code: int | None = None,
    error: str | None = None,
    cached_from_id: int | None = None,
) -> Run | None:
    """Move run `run_id` to the final `status` in one statement, appending the transition (at
    `at`, default now) to its log; the updated record, or None when no row changed (the run is
    in `status` already, or gone): the caller then looks at the record itself."""
    if status not in FINAL_STATUSES:
        raise LakelineError(f"a run finishes as one of {', '.join(FINAL_STATUSES)}, not {status!r}")
    at = at or utcnow()
    dialect = session.get_bind().dialect.name
    entry: Any = {"status": status, "at": at.isoformat()}
    params = {
        "p_id": run_id,
        "p_status": status,
        "p_entry": entry if dialect == "postgresql" else json.dumps(entry),
        "p_at": at,
        "p_exit_code": exit_code,
        "p_error": error,
        "p_cached_from": cached_from_id,
    }
    row = session.execute(_finish_statement(dialect), params).first()
    if row is None:
        return None
    run = Run(**{name: row._mapping[name] for name in ("id", *_columns())})
    make_transient_to_detached(run)
    return run
