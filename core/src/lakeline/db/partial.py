"""Partial indexes declared for both databases without loading the PostgreSQL dialect.

`Index(..., postgresql_where=...)` imports SQLAlchemy's PostgreSQL dialect to validate the
option (~22 ms in every fresh process, SQLite's too). `partial_index` declares SQLite's
option at once and PostgreSQL's when a PostgreSQL engine is made (`make_engine` calls
`use_postgresql`), before any DDL or schema comparison reads it.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Index, text

_lock = threading.Lock()
_pending: list[tuple[Index, str]] = []  # indexes whose PostgreSQL option is not set yet
_postgresql = False  # a PostgreSQL engine was made: set the option at once


def partial_index(name: str, *columns: Any, where: str, **kw: Any) -> Index:
    """An index of the rows where SQL condition `where` holds, on SQLite and PostgreSQL."""
    index = Index(name, *columns, sqlite_where=text(where), **kw)
    with _lock:
        if _postgresql:
            _set(index, where)
        else:
            _pending.append((index, where))
    return index


def use_postgresql() -> None:
    """Declare the PostgreSQL option of every partial index, now and from now on."""
    global _postgresql
    with _lock:
        _postgresql = True
        for index, where in _pending:
            _set(index, where)
        _pending.clear()


def _set(index: Index, where: str) -> None:
    index.dialect_options["postgresql"]["where"] = text(where)
