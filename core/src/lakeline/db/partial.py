"""Partial indexes declared for both databases without loading a dialect that is not used.

`Index(..., postgresql_where=...)` (or `sqlite_where=`) imports that SQLAlchemy dialect to
validate the option: PostgreSQL's ~22 ms in every fresh process, SQLite's ~6 ms in a
PostgreSQL one. `partial_index` declares each database's option when an engine of that
database is made (`make_engine` calls `use_dialect`; the migrations' environment too),
before any DDL or schema comparison reads it, and at once for a database already in use.
Whether an index is partial, whatever is declared yet: `is_partial`. A table's SQLite-only
`AUTOINCREMENT` (`AUTOINCREMENT_INFO` in its info, `autoincrement_table`) is declared the
same way: a PostgreSQL process never loads SQLite's dialect for it.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy import Index, Table, text

DIALECTS = ("sqlite", "postgresql")
WHERE = "lakeline_where"  # Index.info: the condition of a partial index made here
AUTOINCREMENT_INFO = "lakeline_sqlite_autoincrement"  # Table.info: ids never given twice

_lock = threading.Lock()
_declared: weakref.WeakSet[Index] = weakref.WeakSet()  # every partial index made here, alive
_tables: weakref.WeakSet[Table] = weakref.WeakSet()  # every AUTOINCREMENT table, alive
_in_use: set[str] = set()  # databases an engine was made for: their option is set at once


def partial_index(name: str, *columns: Any, where: str, **kw: Any) -> Index:
    """An index of the rows where SQL condition `where` holds, on SQLite and PostgreSQL."""
    index = Index(name, *columns, **kw)
    index.info[WHERE] = where
    with _lock:
        for dialect in _in_use:
            _set(index, dialect)
        _declared.add(index)
    return index


def use_dialect(dialect: str) -> None:
    """Declare `dialect`'s option of every partial index, now and from now on."""
    if dialect not in DIALECTS:
        return
    with _lock:
        if dialect in _in_use:
            return
        _in_use.add(dialect)
        for index in _declared:
            _set(index, dialect)
        if dialect == "sqlite":
            for table in _tables:
                table.dialect_options["sqlite"]["autoincrement"] = True


def autoincrement_table(table: Table) -> None:
    """Give `table`'s integer primary key SQLite's AUTOINCREMENT (a deleted row's id is never
    given again), declared once a SQLite engine is in use (at once if one is)."""
    with _lock:
        if "sqlite" in _in_use:
            table.dialect_options["sqlite"]["autoincrement"] = True
        _tables.add(table)


def use_postgresql() -> None:
    use_dialect("postgresql")


def use_sqlite() -> None:
    use_dialect("sqlite")


def is_partial(index: Index) -> bool:
    """Whether `index` holds only the rows of a condition, on either database. Reads only the
    dialects' options already declared: asking for another loads that dialect."""
    if index.info.get(WHERE) is not None:
        return True
    declared = index.dialect_options
    return any(
        dialect in declared and declared[dialect].get("where") is not None for dialect in DIALECTS
    )


def _set(index: Index, dialect: str) -> None:
    index.dialect_options[dialect]["where"] = text(index.info[WHERE])
