"""The Recorder's hot path: runs inserted and finished with one prebuilt Core statement each.

The ORM would flush one object (or load, then flush a change) with far more Python per call
than the statement itself costs. The statements are built once per dialect, so SQLAlchemy's
compiled cache always hits, and the records they hand back are detached and fully loaded,
exactly as if loaded by a session that then closed.
"""

from __future__ import annotations

import json
import operator
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    text,
    update,
)
from sqlalchemy.orm.attributes import set_committed_value

from lakeline.artifacts.settle import detach
from lakeline.db.driver import driver_rows
from lakeline.db.recordset import insert_recordset, recordset_sql, rows_json
from lakeline.db.rows import bound_values, connection_of, dialect_of, fill_new
from lakeline.errors import InvalidValue, LakelineError
from lakeline.lineage.records import FINAL_STATUSES, LOG_TEXT, PARAMS_TEXT, log_status, log_text
from lakeline.models import Artifact, Run
from lakeline.models.base import (
    JSONValue,
    UTCDateTime,
    check_aware,
    isoformat,
    utcnow,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy.engine import Dialect
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance

_statements: dict[tuple[Any, ...], Any] = {}
# runs a statement of `insert_new_runs` writes: 21 columns each, within SQLite's 32766 parameters
NEW_RUNS = 500
_autocommit: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


@contextmanager
def single_statement(instance: Instance) -> Iterator[Session | Connection]:
    """Where one self-contained statement runs. On PostgreSQL, a connection in autocommit
    mode: the statement is its own transaction, without the BEGIN and COMMIT round trips. On
    SQLite (in process: no round trips), a write transaction, which takes the lock up front."""
    engine = instance.sessions.engine
    if engine.dialect.name != "postgresql":
        with instance.sessions.write() as session:
            yield session
        return
    autocommit = _autocommit.get(engine)
    if autocommit is None:  # shares the pool; the mode is reset when a connection returns
        autocommit = _autocommit[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        yield connection


def _dialect(bind: Session | Connection) -> str:
    return bind.dialect.name if isinstance(bind, Connection) else dialect_of(bind).name


def _table() -> Table:
    table = Run.__table__
    assert isinstance(table, Table)
    return table


@cache
def _column_keys() -> tuple[str, ...]:
    return tuple(column.key for column in _table().columns if not column.primary_key)


def _columns() -> list[str]:
    """The runs' columns but the id (the mapped table's: made once)."""
    return list(_column_keys())


# PostgreSQL: functions, types and the varchar comparison are pg_catalog's by name. A role
# that may CREATE in `public` could define `public.jsonb_build_array(jsonb)` (pg_catalog's is
# variadic "any") or `public.<>(varchar, varchar)` (pg_catalog's is text's): exact matches,
# picked whatever the search path, run as whoever finishes a step (the owner too)
_PG_LOG = (
    "status_log = (CASE WHEN pg_catalog.jsonb_typeof(runs.status_log) = 'array' THEN "
    "runs.status_log ELSE '[]'::pg_catalog.jsonb END) || pg_catalog.jsonb_build_array({entry})"
)
_PG_FINISH = (  # Finish.row: the log as `log_status` moves it (a non-list starts empty)
    "UPDATE runs SET status = :p_status, "
    + _PG_LOG.format(entry="CAST(:p_entry AS pg_catalog.jsonb)")
    + ", finished_at = :p_at, exit_code = :p_exit_code, "
    "error = :p_error, cached_from_id = coalesce(CAST(:p_cached_from AS integer), "
    "runs.cached_from_id) WHERE runs.id = :p_id "
    "AND runs.status OPERATOR(pg_catalog.<>) :p_status RETURNING "
)
_SQLITE_FINISH = (
    "UPDATE runs SET status = :p_status, status_log = json_insert(CASE WHEN "
    "json_type(runs.status_log) = 'array' THEN runs.status_log ELSE '[]' END, '$[#]', "
    "json(:p_entry)), finished_at = :p_at, exit_code = :p_exit_code, error = :p_error, "
    "cached_from_id = coalesce(:p_cached_from, runs.cached_from_id) "
    "WHERE runs.id = :p_id AND runs.status <> :p_status RETURNING "
)


def _finish_statement(dialect: str, error: bool = True) -> Any:
    """UPDATE runs SET status, finished_at, the log with one more entry, exit code and error
    (the finish's: a run finished again, e.g. a retried step that now succeeded, keeps no
    earlier outcome), cached-from where given ... WHERE id = :p_id AND status <> :p_status
    RETURNING every column, typed. Without `error` (no error text given) the SET names no
    error (see `_SQLITE_SET_ERROR`: an error left from before is cleared apart, `_cleared`).
    Written as SQL text: the UPDATE construct cost ~1 ms to compile, once per engine (each
    process of an engine's run), the text ~0.2."""
    stmt = _statements.get(("finish", dialect, error))
    if stmt is not None:
        return stmt
    columns = list(_table().columns)
    sql = _PG_FINISH if dialect == "postgresql" else _SQLITE_FINISH
    if not error:
        sql = sql.replace("error = :p_error, ", "")
    returning = ", ".join(f'runs."{column.name}"' for column in columns)
    binds: list[BindParameter[Any]] = [
        bindparam("p_status", type_=String),
        bindparam("p_entry", type_=String),
        bindparam("p_at", type_=UTCDateTime()),
        bindparam("p_exit_code", type_=Integer),
        bindparam("p_cached_from", type_=Integer),
        bindparam("p_id", type_=Integer),
    ]
    if error:
        binds.append(bindparam("p_error", type_=Text))
    stmt = text(sql + returning).bindparams(*binds).columns(*columns)
    _statements["finish", dialect, error] = stmt
    return stmt


_ON_CONFLICT = " ON CONFLICT (engine, engine_ref) DO NOTHING"


def insert_run(session: Session | Connection, run: Run) -> None:
    """INSERT the new `run` (as `new_run` made it) with `session`; it gets its id and becomes
    a detached record. SQL for the driver, values bound as the columns' types bind them, as
    `insert_new_runs`: no statement to compile (an INSERT construct cost ~0.8 ms per engine)."""
    loaded = run.__dict__
    if loaded.get("created_at") is None:
        fill_new(run, {"created_at": utcnow()})
    columns = _columns()
    values = _row(loaded, columns)
    connection = session if isinstance(session, Connection) else connection_of(session)
    sql = _statements.get(("insert", connection.dialect.name))
    if sql is None:
        head, one = _upsert_sql(connection.dialect)
        sql = head.replace("{rows}", one).replace(_ON_CONFLICT, "")
        _statements["insert", connection.dialect.name] = sql
    (bound,) = bound_values(_table(), connection.dialect, columns, [values])
    new_id = connection.exec_driver_sql(sql, tuple(bound)).one()[0]
    if new_id in (values["parent_id"], values["cached_from_id"]):  # SQLite: a gone run's id
        from lakeline.lineage.refusals import reused_ids

        reused_ids([run], {new_id})  # raises: the transaction rolls back
    # every column loaded, also the unset (None) ones
    fill_new(run, {name: value for name, value in values.items() if name not in loaded})
    fill_new(run, {"id": new_id})
    loaded.pop(PARAMS_TEXT, None)
    loaded.pop(LOG_TEXT, None)
    _detach([run])


def _row(loaded: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """A new run's values of `columns` from its dict (`loaded`), its params as the JSONText
    `new_run` kept (their text, checked at the call: not dumped again) unless they were set
    anew since (a queued run annotated: a new dict)."""
    row = dict(zip(columns, map(loaded.get, columns), strict=True))
    given = loaded.get(PARAMS_TEXT)
    if given is not None and given.value is row["params"]:
        row["params"] = given
    given = loaded.get(LOG_TEXT)
    if given is not None and given.value is row["status_log"]:
        row["status_log"] = given
    return row


def insert_new_runs(session: Session, runs: Sequence[Run]) -> list[Run]:
    """`insert_run` for many runs, in statements that leave out a run whose (engine,
    engine_ref) is recorded already: INSERT ... ON CONFLICT DO NOTHING RETURNING (`NEW_RUNS`
    runs each; PostgreSQL: over the runs as one JSON text, `db.recordset`), so a flush need
    not look for replays first. Those left out (replays, or runs another
    process inserted first: on PostgreSQL the insert waits for its transaction) are
    returned, unsaved; the others get their ids and become detached records."""
    if len(runs) > NEW_RUNS:
        return [
            run
            for start in range(0, len(runs), NEW_RUNS)
            for run in insert_new_runs(session, runs[start : start + NEW_RUNS])
        ]
    columns = _columns()
    rows = []
    for run in runs:
        loaded = run.__dict__
        if loaded.get("created_at") is None:
            fill_new(run, {"created_at": utcnow()})
        rows.append(_row(loaded, columns))
    connection = connection_of(session)
    dialect = connection.dialect
    sql = recordset_sql(dialect, _table(), columns, _ON_CONFLICT + " RETURNING id, uid")
    listed = None if sql is None else rows_json(dialect, _table(), columns, rows)
    if sql is not None and listed is not None:  # PostgreSQL: one statement whatever the rows
        found = insert_recordset(connection, sql, listed)
    else:
        head, one = _upsert_sql(dialect)
        values = bound_values(_table(), dialect, columns, rows)  # as the types bind them
        sql = head.replace("{rows}", ", ".join([one] * len(values)))
        found = driver_rows(connection, sql, tuple(chain.from_iterable(values)))
    ids = {uid: new_id for new_id, uid in found}  # the runs inserted
    given = set(ids.values())
    if any(row["parent_id"] in given or row["cached_from_id"] in given for row in rows):
        from lakeline.lineage.refusals import reused_ids

        reused_ids(runs, given)  # SQLite gave out a gone run's id: raises, rolled back
    skipped, inserted = [], []
    for run, row in zip(runs, rows, strict=True):
        new_id = ids.get(row["uid"])
        if new_id is None:
            skipped.append(run)
            continue
        loaded = run.__dict__
        # every column loaded, also the unset (None) ones: those not set, a set's difference
        fill_new(run, {name: row[name] for name in row.keys() - loaded.keys()})
        fill_new(run, {"id": new_id})
        loaded.pop(PARAMS_TEXT, None)
        loaded.pop(LOG_TEXT, None)
        inserted.append(run)
    _detach(inserted)
    return skipped


def _upsert_sql(dialect: Dialect) -> tuple[str, str]:
    """INSERT INTO runs (...) VALUES {rows} ON CONFLICT (engine, engine_ref) DO NOTHING
    RETURNING id, uid, and one row's placeholders: SQL for the driver, bound values of the
    columns' types (no SQLAlchemy statement: its dialects' on_conflict constructs are compiled
    anew at every call, and a text() per row count costs 1.5-5 ms to compile per engine)."""
    sql = _statements.get(("upsert", dialect.name))
    if sql is None:
        table = _table()
        names = _columns()
        quote = dialect.identifier_preparer.quote
        mark = "%s" if dialect.name == "postgresql" else "?"
        marks = []
        for name in names:
            impl = table.c[name].type.dialect_impl(dialect)
            json = dialect.name == "postgresql" and isinstance(impl, JSONValue)
            marks.append(f"CAST({mark} AS pg_catalog.jsonb)" if json else mark)
        head = (
            f"INSERT INTO runs ({', '.join(quote(table.c[name].name) for name in names)}) "
            f"VALUES {{rows}}{_ON_CONFLICT} RETURNING id, uid"
        )
        sql = _statements["upsert", dialect.name] = (head, f"({', '.join(marks)})")
    return sql


def finish_queued(run: Run, change: Finish) -> None:
    """Apply a finish to a queued `run` before its insert (started and finished in one
    batch: its INSERT writes it finished, the log holding both moves)."""
    at = change.at or utcnow()
    own = vars(run)
    log = own.get(LOG_TEXT)
    values: dict[str, Any] = {"status": change.status, "finished_at": at}
    if log is not None and log.value is own.get("status_log"):  # as `new_run` made it
        log = log_text(log, change.status, isoformat(at))
        values["status_log"], values[LOG_TEXT] = log.value, log
    else:  # set anew since: dumped and checked by its bind
        entry = {"status": change.status, "at": isoformat(at)}
        values["status_log"], values[LOG_TEXT] = [*(run.status_log or []), entry], None
    if change.exit_code is not None:
        values["exit_code"] = change.exit_code
    if change.error is not None:
        values["error"] = change.error
    if change.cached_from_id is not None:
        values["cached_from_id"] = change.cached_from_id
    fill_new(run, values)


def _utc_binds(session: Session, moments: Sequence[Any]) -> list[Any]:
    """Timestamps as a text() statement's array binds them: in UTC, a naive one refused (as
    the ORM's and Core's binding of a timestamp column does)."""
    utc, dialect = UTCDateTime(), dialect_of(session)
    return [utc.process_bind_param(at, dialect) for at in moments]


FINISH_COLUMNS = ("status", "status_log", "finished_at", "exit_code", "error", "cached_from_id")
# SQLite runs an `AFTER UPDATE OF error` trigger (the runs' search index, migration 0015:
# both texts tokenized in Python, the FTS5 row deleted and written again, the vocabulary's
# counts moved) whenever the SET names the column, changed or not: a finish without an error
# text (nearly all) names no error, and clears one left from an earlier finish apart (rare)
_SQLITE_SET_ERROR = "error = v.error, "


_PG_FINISH_FOUND = (  # Finish.row for many runs: one statement, one trigger call
    "UPDATE runs SET status = v.status, "
    + _PG_LOG.format(entry="v.entry")
    + ", finished_at = v.at, exit_code = v.exit_code, error = v.error, "
    "cached_from_id = coalesce(v.cached_from_id, runs.cached_from_id) "
    "FROM ROWS FROM (pg_catalog.unnest(CAST(:p_id AS integer[])), "
    "pg_catalog.unnest(CAST(:status AS text[])), "
    "pg_catalog.unnest(CAST(:entry AS pg_catalog.jsonb[])), "
    "pg_catalog.unnest(CAST(:at AS timestamptz[])), "
    "pg_catalog.unnest(CAST(:exit_code AS integer[])), "
    "pg_catalog.unnest(CAST(:error AS text[])), "
    "pg_catalog.unnest(CAST(:cached_from_id AS integer[]))) "
    "AS v(id, status, entry, at, exit_code, error, cached_from_id) "
    "WHERE runs.id = v.id AND runs.status OPERATOR(pg_catalog.<>) v.status RETURNING "
)


_SQLITE_FINISH_FOUND = (  # the same over a JSON array of the rows, the log appended as Finish.row
    "UPDATE runs SET status = v.status, status_log = json_insert(CASE WHEN "
    "json_type(runs.status_log) = 'array' THEN runs.status_log ELSE '[]' END, '$[#]', "
    "json(v.entry)), finished_at = v.at, exit_code = v.exit_code, "
    "error = v.error, "
    "cached_from_id = coalesce(v.cached_from_id, runs.cached_from_id) "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS status, "
    "json_extract(value, '$[2]') AS at, json_extract(value, '$[3]') AS exit_code, "
    "json_extract(value, '$[4]') AS error, json_extract(value, '$[5]') AS cached_from_id, "
    "json_extract(value, '$[6]') AS entry FROM json_each(:rows)) AS v "
    "WHERE runs.id = v.id AND runs.status <> v.status RETURNING "
)


def finish_found(session: Session, changes: Sequence[tuple[Run, Finish]]) -> dict[int, Run]:
    """`Finish.row` for runs of other transactions (each run once) in one statement: the
    updated records by run id. A run missing from it (a replay, a gone run, on SQLite an
    error text with a NUL byte) is left to `Finish.apply`."""
    if not changes:  # (a lone flush's run was inserted finished: no bind looked up)
        return {}
    dialect = _dialect(session)
    if dialect != "postgresql":  # SQLite's JSON functions end a text at a NUL byte:
        changes = [(r, c) for r, c in changes if not (c.error and "\x00" in c.error)]
    if not changes:
        return {}
    kept = [(r, c) for r, c in changes if c.error is None]
    if dialect != "postgresql" and kept and len(kept) < len(changes):
        others = [(r, c) for r, c in changes if c.error is not None]  # apart: _SQLITE_SET_ERROR
        return {**finish_found(session, kept), **finish_found(session, others)}
    ats = [change.at or utcnow() for _, change in changes]
    entries = [
        json.dumps({"status": change.status, "at": isoformat(at)})
        for (_, change), at in zip(changes, ats, strict=True)
    ]
    error = dialect == "postgresql" or any(c.error is not None for _, c in changes)
    columns = list(_table().columns)  # the mapped ones (a migration may add unmapped ones)
    stmt = _statements.get(("finish_found", dialect, error))
    if stmt is None:
        returning = ", ".join(f'runs."{column.name}"' for column in columns)
        head = _PG_FINISH_FOUND if dialect == "postgresql" else _SQLITE_FINISH_FOUND
        if not error:
            head = head.replace(_SQLITE_SET_ERROR, "")
        stmt = _statements["finish_found", dialect, error] = text(head + returning).columns(
            *columns
        )  # typed: values come back as Finish.row's (UTC, decoded JSON)
    params: dict[str, Any]
    if dialect == "postgresql":
        params = {
            "p_id": [run.id for run, _ in changes],
            "status": [change.status for _, change in changes],
            "entry": entries,
            "at": _utc_binds(session, ats),
            "exit_code": [change.exit_code for _, change in changes],
            "error": [change.error for _, change in changes],
            "cached_from_id": [change.cached_from_id for _, change in changes],
        }
    else:
        names = ["id", "status", "finished_at", "exit_code", "error", "cached_from_id"]
        given = [
            dict(
                zip(
                    names, (r.id, c.status, at, c.exit_code, c.error, c.cached_from_id), strict=True
                )
            )
            for (r, c), at in zip(changes, ats, strict=True)
        ]
        values = bound_values(_table(), dialect_of(session), names, given)
        for listed, entry in zip(values, entries, strict=True):
            listed.append(entry)
        params = {"rows": json.dumps(values, ensure_ascii=False)}
    records = {record.id: record for record in _loaded(session.execute(stmt, params))}
    if not error:
        _cleared(session, list(records.values()))
    return records


def _detach(runs: Sequence[Run]) -> None:
    """New (transient) runs whose dicts hold every column become detached records, as if
    loaded: `artifacts.settle.detach` (SQLAlchemy's `make_transient_to_detached` with its
    per-class work done once; its state is compared with SQLAlchemy's own call in
    tests/core/test_save_detach.py)."""
    detach(runs)  # type: ignore[arg-type]  # any mapped class: its mapper is read from a record


def _loaded(rows: Iterable[Sequence[Any]]) -> list[Run]:
    """Detached records of the `rows` a statement returned (every mapped column, in the
    table's order), as a session that then closed would leave them: built without a
    `set_committed_value` per column and a `make_transient_to_detached` each (~25 -> ~4.5
    us a run: a flush finishes most runs of a workflow whose jobs outlast a batch so)."""
    keys = [column.key for column in _table().columns]
    new = Run.__mapper__.class_manager.new_instance
    records = []
    for row in rows:
        record: Run = new()
        fill_new(record, dict(zip(keys, row, strict=True)))
        records.append(record)
    _detach(records)
    return records


def _cleared(bind: Session | Connection, records: Sequence[Run]) -> None:
    """SQLite: the error an earlier finish left on runs just finished without one, cleared
    (their finish's statement named no error: see `_SQLITE_SET_ERROR`), records too."""
    left = [record for record in records if record.error is not None]
    if left:
        c = _table().c
        bind.execute(update(_table()).where(c.id.in_([r.id for r in left])).values(error=None))
        for record in left:
            set_committed_value(record, "error", None)


def _integer(value: object) -> int:
    """An exit code as an int; InvalidValue for one that is not an integer (a float, a bool):
    a finish queued with one failed its batch's every flush on PostgreSQL (the rows as JSON:
    "2.0" is no integer's text), where SQLite stored it as given."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise InvalidValue(f"an exit code is an integer, not {value!r}")


@dataclass(frozen=True)
class Finish:
    """A run's move to a final status (at `at`, default now), with its exit code, error and
    the run it was cached from, where given."""

    status: str
    at: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    cached_from_id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in FINAL_STATUSES:
            raise LakelineError(
                f"a run finishes as one of {', '.join(FINAL_STATUSES)}, not {self.status!r}"
            )
        if self.at is not None:
            check_aware(self.at)  # refused when given, not when a batch is written
        code = self.exit_code
        if code is not None and code.__class__ is not int:  # an integer (numpy's too), as an int
            object.__setattr__(self, "exit_code", code := _integer(code))
        if code is not None and not -(2**31) <= code < 2**31:
            raise InvalidValue(  # runs.exit_code: a 32-bit integer on PostgreSQL
                f"exit code {code} is out of a 32-bit integer's range"
            )

    def row(self, bind: Session | Connection, run_id: int) -> Run | None:
        """Apply it to run `run_id` in one statement, appending the transition to the log;
        the updated record, or None when no row changed (the run is in this status already,
        or gone)."""
        at = self.at or utcnow()
        dialect = _dialect(bind)
        params = {
            "p_id": run_id,
            "p_status": self.status,
            "p_entry": json.dumps({"status": self.status, "at": isoformat(at)}),
            "p_at": at,
            "p_exit_code": self.exit_code,
            "p_error": self.error,
            "p_cached_from": self.cached_from_id,
        }
        error = dialect == "postgresql" or self.error is not None
        found = bind.execute(_finish_statement(dialect, error), params).first()
        if found is None:
            return None
        (record,) = _loaded([found])
        if not error:
            _cleared(bind, [record])
        return record

    def apply(self, session: Session, run: Run) -> tuple[Run, bool]:
        """Apply it to `run` in `session`'s transaction: (the record, whether it changed). A
        replayed event changes nothing, except a cached-from the record still lacks."""
        record = self.row(session, run.id)
        if record is not None:  # the common case: one statement
            return record, True
        record = session.get(Run, run.id)  # no row changed: a replayed event, or a gone run
        if record is None:
            _gone(session, run)
        if record.status == self.status:
            if self.cached_from_id is not None and record.cached_from_id is None:
                record.cached_from_id = self.cached_from_id  # the original was recorded later
            return record, False
        log_status(record, self.status, self.at)  # another writer moved it since: the ORM way
        record.exit_code, record.error = self.exit_code, self.error  # the outcome: this finish's
        if self.cached_from_id is not None:
            record.cached_from_id = self.cached_from_id
        return record, True


def _gone(session: Session, run: Run) -> NoReturn:
    """Raise the error for `run`, not found by its finish: hidden by space rules (moved since
    to a space the role is not in: PermissionDenied) or deleted since."""
    from lakeline.lineage.hidden_runs import gone_error

    raise gone_error(session, run, "finish")


def claim_outputs(session: Session, artifacts: Iterable[Artifact | None], run_id: int) -> None:
    """Make run `run_id` the producer of those `artifacts` that have none yet (a file used
    before its producer was known), in `session`'s transaction."""
    claim_many(session, [(artifact, run_id) for artifact in artifacts])


_SQLITE_CLAIM = text(  # one statement over a JSON array (an executemany is one a file)
    "UPDATE artifacts SET run_id = v.r FROM (SELECT json_extract(value, '$[0]') AS a, "
    "json_extract(value, '$[1]') AS r FROM json_each(:rows)) AS v "
    "WHERE artifacts.id = v.a AND artifacts.run_id IS NULL"
)
_PG_CLAIM = text(  # one statement: one call of the audit and creator triggers, not one a file
    "UPDATE artifacts SET run_id = c.r FROM ROWS FROM (pg_catalog.unnest(CAST(:r AS integer[])), "
    "pg_catalog.unnest(CAST(:a AS integer[]))) AS c(r, a) "
    "WHERE artifacts.id = c.a AND artifacts.run_id IS NULL"
)


def claim_many(session: Session, claims: Iterable[tuple[Artifact | None, int]]) -> None:
    """`claim_outputs` for (artifact, producing run id) pairs, in one statement."""
    todo = {}
    for artifact, run_id in claims:
        if artifact is None or artifact.run_id is not None or artifact.id in todo:
            continue
        if artifact.id is None:  # not inserted yet: it will be, with its producer
            artifact.run_id = run_id
        else:
            todo[artifact.id] = (artifact, run_id)
    if not todo:
        return
    if _dialect(session) == "postgresql":
        pairs = list(todo.items())
        ids = [artifact_id for artifact_id, _ in pairs]
        session.execute(_PG_CLAIM, {"r": [run_id for _, (_, run_id) in pairs], "a": ids})
    else:
        rows = [[artifact_id, run_id] for artifact_id, (_, run_id) in todo.items()]
        session.execute(_SQLITE_CLAIM, {"rows": json.dumps(rows)})
    for artifact, run_id in todo.values():  # as written: no second UPDATE by the ORM's flush
        set_committed_value(artifact, "run_id", run_id)
