"""What a test's code sent to the database: `recorded(engine)` yields the list of
(sql, parameters) every statement run inside the block appends to; `until_waiting_on_a_lock`
waits until another PostgreSQL session waits for a lock (a second migrate or mount held
behind the first)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine


@contextmanager
def recorded(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        seen.append((sql, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def until_waiting_on_a_lock(engine: Engine, thread: threading.Thread, what: str) -> None:
    """Return once a session of `engine`'s database waits for a lock (polling for ~60 s while
    `thread` runs); else fail naming `what` never waited."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    )
    with engine.connect() as conn:
        for _ in range(600):
            if conn.execute(waiting).scalar():
                return
            conn.rollback()
            thread.join(0.1)
    pytest.fail(f"{what} never waited for the first")
