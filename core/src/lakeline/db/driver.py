"""A statement as SQL for the driver, its rows as the driver's tuples: the hot path's few
statements (a flush's BEGIN, inserts and edges) without the execution context and result
object SQLAlchemy sets up for each (`exec_driver_sql`: ~100-200k instructions a statement,
its SQL aside; a one-step flush ran five)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection


def driver_rows(connection: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """The rows of `sql` (the driver's paramstyle, `params` bound as they are) run on
    `connection`, as tuples (none for a statement that returns no rows).

    Run by `Connection._cursor_execute`, the path SQLAlchemy's dialects run their own
    statements by: the cursor events, echo logging, and a failure raised as `exec_driver_sql`
    raises it (the driver's error wrapped as IntegrityError, OperationalError, ..., then the
    engine's `handle_error` listeners: lakeline's LakelineErrors; a lost connection
    invalidated). The cursor is closed whatever happens (a Ctrl-C included: SQLite's lock is
    not held by a statement left unfinalized)."""
    cursor = connection.connection.cursor()
    try:
        connection._cursor_execute(cursor, sql, params)
        if cursor.description is None:
            return []
        try:
            return list(cursor.fetchall())
        except BaseException as exc:  # as a result's fetch raises it
            connection._handle_dbapi_exception(exc, sql, params, cursor, None)
    finally:
        cursor.close()
