"""Recording that the current run used an artifact (when it is loaded, opened or cached)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, bindparam, text

from lakeline.db.driver import driver_rows
from lakeline.db.rows import chunks, connection_of
from lakeline.lineage.context import current_run, current_run_in
from lakeline.models.base import UTCDateTime, dump_json, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable

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


ROLE_LENGTH = 255  # run_inputs.role


def check_role(role: str) -> str:
    """`role` if `run_inputs.role` holds it alike on both databases, else InvalidValue naming
    it (a NUL byte, which SQLite's json_each would cut and PostgreSQL refuses, a lone
    surrogate, or more than 255 characters). The statements here bind roles as plain text,
    past `Str`'s check."""
    if not isinstance(role, str):
        from lakeline.errors import InvalidValue

        raise InvalidValue(f"an input's role is a string, not {type(role).__name__} {role!r}")
    # not ASCII: maybe a lone surrogate, which no database encodes (every flush would fail)
    if "\x00" in role or len(role) > ROLE_LENGTH or not role.isascii():
        from lakeline.values import check_text

        check_text(role, ROLE_LENGTH, "an input's role")
    return role


def insert_input(session: Session, run_id: int, artifact_id: int, role: str = "") -> bool:
    """In `session`'s transaction: the used-by edge, once per role; True when it is new."""
    check_role(role)
    values = {"run_id": run_id, "artifact_id": artifact_id, "role": role, "used_at": utcnow()}
    return session.execute(_INSERT_INPUT, values).first() is not None


# many edges in ONE statement, the new ones handed back: an executemany is one statement per
# edge, each firing the audit trigger (PostgreSQL: statement-level, ~1 ms apiece). SQL for the
# driver over the edges as one JSON text: no text() construct's binding and result set-up,
# nor psycopg's dumping of three arrays a value at a time (every flush runs it)
_PG_EDGES = (
    "INSERT INTO run_inputs (run_id, artifact_id, role, used_at) "
    "SELECT CAST(e->>0 AS integer), CAST(e->>1 AS integer), e->>2, %s "
    "FROM pg_catalog.jsonb_array_elements(CAST(%s AS jsonb)) AS e "
    "ON CONFLICT (run_id, artifact_id, role) DO NOTHING RETURNING run_id, artifact_id, role"
)
_SQLITE_EDGES = (  # "WHERE true": SQLite's parser needs it before an upsert's ON CONFLICT
    "INSERT INTO run_inputs (run_id, artifact_id, role, used_at) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), ? FROM json_each(?) WHERE true "
    "ON CONFLICT (run_id, artifact_id, role) DO NOTHING RETURNING run_id, artifact_id, role"
)


def insert_inputs(
    session: Session, edges: Iterable[tuple[int, int, str]]
) -> set[tuple[int, int, str]]:
    """`insert_input` for many (run id, artifact id, role) edges in one statement (per
    CHUNK on SQLite); the edges that are new."""
    wanted = list(dict.fromkeys(edges))
    new: set[tuple[int, int, str]] = set()
    if not wanted:
        return new
    for role in {edge[2] for edge in wanted}:
        check_role(role)
    connection = connection_of(session)
    dialect = connection.dialect
    at = _time_bind(dialect)(utcnow())  # as the column's type binds it
    if dialect.name == "postgresql":
        new.update(map(tuple, driver_rows(connection, _PG_EDGES, (at, dump_json(wanted)))))
        return new
    for chunk in chunks(wanted):
        new.update(map(tuple, driver_rows(connection, _SQLITE_EDGES, (at, dump_json(chunk)))))
    return new


_time_binds: dict[str, Any] = {}


def _time_bind(dialect: Any) -> Any:
    """How `UTCDateTime` binds a value on `dialect` (its checks and conversion), built once."""
    bind = _time_binds.get(dialect.name)
    if bind is None:
        impl = UTCDateTime().dialect_impl(dialect)
        processor = impl.bind_processor(dialect)
        bind = _time_binds[dialect.name] = processor or (lambda value: value)
    return bind


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
