"""A statement as SQL for the driver, its rows as the driver's tuples: the hot path's few
statements (a flush's BEGIN, inserts and edges) without the execution context and result
object SQLAlchemy sets up for each (`exec_driver_sql`: ~100-200k instructions a statement,
its SQL aside; a one-step flush ran five)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

# a Connection's attribute: the cursor of its `driver_rows` statement running, if any. A failed
# statement has no execution context, whose cursor the engine's `handle_error` closes before
# SQLAlchemy drops the connection (`engine._setup_sqlite`): it finds this one here
CURSOR = "_lakeline_driver_cursor"


def driver_rows(connection: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """The rows of `sql` (the driver's paramstyle, `params` bound as they are) run on
    `connection`, as tuples (none for a statement that returns no rows).

    Run by `Connection._cursor_execute`, the path SQLAlchemy's dialects run their own
    statements by: the cursor events, echo logging, and a failure raised as `exec_driver_sql`
    raises it (the driver's error wrapped as IntegrityError, OperationalError, ..., then the
    engine's `handle_error` listeners: lakeline's LakelineErrors; a lost connection
    invalidated). The cursor is closed whatever happens (a Ctrl-C included: SQLite's lock is
    not held by a statement left unfinalized), before the connection is dropped (`CURSOR`)."""
    cursor = connection.connection.cursor()
    state = vars(connection)
    outer = state.get(CURSOR)  # (a statement run meanwhile, by a cursor event's listener)
    state[CURSOR] = cursor
    try:
        connection._cursor_execute(cursor, sql, params)
        rows: list[Any] = []
        if cursor.description is not None:
            try:
                rows = list(cursor.fetchall())
            except BaseException as exc:  # as a result's fetch raises it
                connection._handle_dbapi_exception(exc, sql, params, cursor, None)
    except BaseException:
        # closed by the engine's `handle_error` already if it dropped the connection (SQLite:
        # before, else the closed connection kept the write lock); closing it again then fails
        with contextlib.suppress(Exception):
            cursor.close()
        raise
    finally:
        state[CURSOR] = outer
    cursor.close()
    return rows
