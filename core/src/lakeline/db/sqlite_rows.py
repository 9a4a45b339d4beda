"""SQLite: new rows as multi-row `INSERT ... VALUES (...), (...)` statements of bound
parameters, SQL for the driver (`rows.insert_rows`' SQLite paths)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from lakeline.db.driver import driver_rows
from lakeline.db.rows import (
    SQLITE_PARAMETERS,
    VALUES_ROWS,
    _bound,
    _names,
    _with_defaults,
    connection_of,
)


def insert_returning(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], unique: str
) -> list[int]:
    """SQLite, a few rows: one multi-row `INSERT ... VALUES ... RETURNING id, unique` as SQL
    for the driver, values bound as `insert_values` binds them (the INSERT construct's
    executemany cost ~1 ms of SQLAlchemy's per-row parameter work for a flush's 6 artifacts)."""
    rows = _with_defaults(table, rows)
    connection = connection_of(session)
    dialect = connection.dialect
    names = _names(rows)
    values = _bound(table, dialect, names, rows)
    quote = dialect.identifier_preparer.quote
    shape = (table, tuple(names), len(values))
    sql = _returning_sql.get(shape)
    if sql is None:
        if len(_returning_sql) >= 256:
            _returning_sql.clear()
        sql = _returning_sql[shape] = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(quote(name) for name in names)}) VALUES "
            + ", ".join([f"({', '.join('?' * len(names))})"] * len(values))
            + f" RETURNING id, {quote(table.c[unique].name)}"
        )
    found = driver_rows(connection, sql, tuple(chain.from_iterable(values)))
    made = {key: new_id for new_id, key in found}
    return [made[row[unique]] for row in rows]


_returning_sql: dict[tuple[Table, tuple[str, ...], int], str] = {}  # SQLite: built once


def insert_values(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """SQLite: INSERT the rows with a few multi-row `INSERT ... VALUES (...), (...)`
    statements of bound parameters, rows in order (up to VALUES_ROWS a statement, within
    SQLite's limit on parameters). An executemany runs the statement once per row, and each
    run pays the per-statement cost of the triggers' FTS5 writes (10k labels 170 -> 70 ms);
    one INSERT ... SELECT over a JSON array of the rows (the path before) paid a JSON parse
    per column per row in `json_extract` (SQLite < 3.45 caches no parse): 10k artifact rows
    30.8 -> 24.5 us a row, and no JSON text to build."""
    rows = _with_defaults(table, rows)
    connection = connection_of(session)
    dialect = connection.dialect
    names = _names(rows)
    values = _bound(table, dialect, names, rows)
    per = max(1, min(VALUES_ROWS, _parameter_limit(connection) // len(names)))
    quote = dialect.identifier_preparer.quote
    head = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) VALUES "
    )
    one = f"({', '.join('?' * len(names))})"
    for start in range(0, len(values), per):
        part = values[start : start + per]
        statement = head + ", ".join([one] * len(part))
        connection.exec_driver_sql(statement, tuple(chain.from_iterable(part)))


def _parameter_limit(connection: Any) -> int:
    """How many parameters one statement may bind on this SQLite connection."""
    import sqlite3

    driver = connection.connection.driver_connection
    getlimit = getattr(driver, "getlimit", None)  # Python >= 3.11
    return (
        SQLITE_PARAMETERS
        if getlimit is None
        else int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    )
