"""Per-key write locks for PostgreSQL (SQLite already serialises writers)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import Connection
from sqlalchemy.orm import Session

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
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name != "postgresql":
        return
    lock_buckets(session, namespace, buckets(namespace, keys))


def lock_buckets(session: Session | Connection, namespace: str, ids: list[int]) -> None:
    """`lock_keys` of keys whose buckets (`buckets`) are `ids` (PostgreSQL)."""
    if not ids:
        return
    # SQL for the driver, the buckets as one array text: no text() to build and look up, no
    # list dumped a value at a time by psycopg (every save and flush takes one)
    connection = session.connection() if isinstance(session, Session) else session
    buckets_text = "{" + ",".join(map(str, ids)) + "}"
    connection.exec_driver_sql(_LOCK, (namespace, buckets_text))


# functions named by their schema: a `public.unnest(integer[])` (or `count(void)`) a role that
# may CREATE there defines is an exact match, chosen over pg_catalog's polymorphic one
# whatever the search path, and would run as whoever saves next
_LOCK = (
    "SELECT pg_catalog.count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(%s), b)) "
    "FROM (SELECT pg_catalog.unnest(CAST(%s AS integer[])) AS b ORDER BY 1) AS ordered"
)
