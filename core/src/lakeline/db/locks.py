"""Per-key write locks for PostgreSQL (SQLite already serialises writers)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_keys(session: Session, namespace: str, keys: Iterable[str]) -> None:
    """Hold transaction advisory locks on `namespace:key` for each key, taken in sorted order.

    A concurrent transaction writing any of the same keys waits for this one to commit and
    then sees its rows; sorted order means two writers can never deadlock on these locks.
    On SQLite (one writer at a time under BEGIN IMMEDIATE) this does nothing.
    """
    names = sorted({f"{namespace}:{key}" for key in keys})
    if not names or session.get_bind().dialect.name != "postgresql":
        return
    lock = text(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
        "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
    )
    session.execute(lock, {"keys": names})
