"""Per-key write locks for PostgreSQL (SQLite already serialises writers)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from lakeline.db.driver import driver_rows
from lakeline.db.rows import connection_of, dialect_of

# Keys hash into this many lock buckets per namespace: a save of any size holds at most this
# many advisory locks (PostgreSQL's lock table is small: max_locks_per_transaction x
# max_connections), and two unrelated keys rarely share a bucket (they would only wait).
BUCKETS = 1024


def buckets(namespace: str, keys: Iterable[str]) -> list[int]:
    """The sorted lock buckets of `keys` in `namespace`."""
    return sorted({zlib.crc32(f"{namespace}:{key}".encode()) % BUCKETS for key in keys})


def lock_keys(session: Session | Connection, namespace: str, keys: Iterable[str]) -> None:
    """Hold transaction advisory locks on the buckets of `keys`, taken in sorted order.

    A concurrent transaction writing any of the same keys waits for this one to commit and
    then sees its rows; sorted order means two writers can never deadlock on these locks.
    On SQLite (one writer at a time under BEGIN IMMEDIATE) this does nothing.
    """
    dialect = dialect_of(session) if isinstance(session, Session) else session.dialect
    if dialect.name != "postgresql":
        return
    lock_buckets(session, namespace, buckets(namespace, keys))


def lock_buckets(session: Session | Connection, namespace: str, ids: list[int]) -> None:
    """`lock_keys` of keys whose buckets (`buckets`) are `ids` (PostgreSQL)."""
    if not ids:
        return
    # SQL for the driver, the buckets as one array text: no text() to build and look up, no
    # list dumped a value at a time by psycopg (every save and flush takes one)
    connection = connection_of(session) if isinstance(session, Session) else session
    buckets_text = "{" + ",".join(map(str, ids)) + "}"
    driver_rows(connection, _LOCK, (namespace, buckets_text))


# functions named by their schema: a `public.unnest(integer[])` (or `count(void)`) a role that
# may CREATE there defines is an exact match, chosen over pg_catalog's polymorphic one
# whatever the search path, and would run as whoever saves next
_LOCK = (
    "SELECT pg_catalog.count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(%s), b)) "
    "FROM (SELECT pg_catalog.unnest(CAST(%s AS integer[])) AS b ORDER BY 1) AS ordered"
)


# the try of `try_lock_keys`: each bucket's lock taken if free, else the transaction fails as
# a serialization failure (40001: every write path runs it again, as after a deadlock); a DO
# block (no parameters: the buckets are integers, the namespace lakeline's own word)
_TRY = (
    "DO $$BEGIN IF NOT (SELECT pg_catalog.bool_and(pg_catalog.pg_try_advisory_xact_lock("
    "pg_catalog.hashtext('{namespace}'), b)) FROM pg_catalog.unnest('{{{buckets}}}'::integer[])"
    " AS b) THEN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'lakeline: another save "
    "holds the lock of a key this one met late (a location keeps its key): started again, every "
    "key locked in order'; END IF; END$$"
)


def try_lock_keys(session: Session | Connection, namespace: str, keys: Iterable[str]) -> None:
    """`lock_keys` for keys met after others were locked, without waiting: taking them in
    sorted order is no longer possible, and waiting could deadlock with a save holding them
    that waits for ours. A bucket held by another transaction fails this one (40001, retried
    by the caller's loop, which then locks every key it needs at once). Those this transaction
    holds already are taken again (advisory locks are re-entrant). Nothing on SQLite."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name != "postgresql":
        return
    ids = buckets(namespace, keys)
    if not ids:
        return
    connection = connection_of(session) if isinstance(session, Session) else session
    words = namespace.replace("'", "''")
    connection.exec_driver_sql(
        _TRY.format(namespace=words, buckets=",".join(map(str, ids))).replace("%", "%%")
    )
