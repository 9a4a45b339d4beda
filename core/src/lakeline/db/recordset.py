"""PostgreSQL: a few rows in one `INSERT ... SELECT ... FROM jsonb_populate_recordset(...)`,
the rows as one JSON parameter.

A multi-row `INSERT ... VALUES` of bound parameters is a new statement for every row count,
and psycopg converts the placeholders of a statement of more than 50 parameters at every call
(~2 us a parameter), then dumps each value with a call of its own. One JSON text (`json.dumps`,
in C) is one parameter of one statement whatever the row count: converted and prepared once.
Thread CPU to insert runs, values bound to the statement's rows read (load 11, medians of 280
alternated): 1 run 442 -> 337 us, 5 runs 627 -> 362, 13 runs 1233 -> 629. `unnest()` of one
array a column was measured too (load 5): psycopg dumps an array's elements in Python (a
regex per text), no cheaper than the VALUES (13 runs 1122 us against 1120; binary: 817).

The values are checked and converted as the columns' types bind them (`Str`'s checks on a
whole column, `JSONValue`'s, `UTCDateTime`'s), then written as JSON: a timestamp as its ISO
text, a JSON column's value as it is (None: SQL NULL, as `JSONValue` stores it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Enum, Integer, String, Table, TypeDecorator
from sqlalchemy.engine import Connection, Dialect

from lakeline.db.driver import driver_rows

# per column: its name, how its values are checked (a whole column at once) and converted
_Plan = list[tuple[str, Callable[[list[Any]], None] | None, Callable[[Any], Any] | None]]
# keyed by the Table itself: two metadata may each hold a table of one name, other columns
_plans: dict[tuple[str, Table, tuple[str, ...]], _Plan | None] = {}
_statements: dict[tuple[str, Table, tuple[str, ...], str], str] = {}


def _column(table: Table, name: str, dialect: Dialect) -> tuple[Any, Any] | None:
    """(check, convert) of column `name`'s values, or None where its type is not one whose
    values this path writes as the type binds them."""
    type_ = table.c[name].type
    impl: Any = type_.dialect_impl(dialect)
    decorated = isinstance(impl, TypeDecorator)
    inner = impl.impl_instance if decorated else impl
    if isinstance(inner, DateTime):
        if not decorated:
            return None, _iso
        bind = impl.process_bind_param

        def moment(value: Any) -> Any:
            return _iso(bind(value, dialect))

        return None, moment
    if isinstance(inner, JSON):
        if not inner.none_as_null:  # None would be the JSON null there: SQL NULL here
            return None
        if not decorated:
            return None, None
        process = impl.process_bind_param
        return None, lambda value: process(value, dialect)  # its checks; the value as it is
    if isinstance(inner, Enum) or not isinstance(inner, (Integer, String, Boolean)):
        return None
    many = getattr(impl, "many_checker", None)
    check = many(dialect) if many is not None else None
    if check is not None:
        return check, None
    return None, impl.bind_processor(dialect)  # a Boolean's refuses a value not one


def _iso(value: Any) -> Any:
    """A time as the ISO text PostgreSQL reads back as the same instant (a zone's offset
    kept; a naive one is read in the session's zone, as psycopg binds it)."""
    return value.isoformat() if isinstance(value, datetime) else value


def _plan(dialect: Dialect, table: Table, names: Sequence[str]) -> _Plan | None:
    key = (dialect.name, table, tuple(names))
    if key not in _plans:
        columns = [_column(table, name, dialect) for name in names]
        ok = dialect.name == "postgresql" and bool(names) and None not in columns
        _plans[key] = (
            [(table.c[n].name, *c) for n, c in zip(names, columns, strict=True) if c is not None]
            if ok
            else None
        )
    return _plans[key]


def recordset_sql(
    dialect: Dialect,
    table: Table,
    names: Sequence[str],
    tail: str,
    once: Sequence[tuple[str, str]] = (),
) -> str | None:
    """`INSERT INTO table (names) SELECT names FROM pg_catalog.jsonb_populate_recordset(
    NULL::table, %s)` + `tail` (ON CONFLICT, RETURNING), SQL for the driver; None where a
    column's type does not fit (`_column`) or not on PostgreSQL. The function is named by its
    schema: a `public.jsonb_populate_recordset(table, jsonb)` a role that may CREATE there
    defines matches the call's types exactly, is chosen over pg_catalog's polymorphic one
    whatever the search path, and runs as whoever writes; the JSON's type is pg_catalog's
    (a search path listing `public` first would find a writer's `public.jsonb`). `once`:
    (column, its default expression) of columns the rows leave out, each expression evaluated
    once for all rows (an uncorrelated subquery), as a COPY's `copy_rows.copy_columns` adds them."""
    if _plan(dialect, table, names) is None:
        return None
    key = (dialect.name, table, tuple(names), tail + repr(tuple(once)))
    sql = _statements.get(key)
    if sql is None:
        quote = dialect.identifier_preparer.quote
        target = dialect.identifier_preparer.format_table(table)
        columns = ", ".join(quote(table.c[name].name) for name in names)
        added = "".join(f", {quote(column)}" for column, _ in once)
        values = "".join(f", (SELECT {expression})" for _, expression in once)
        rows = (
            f"pg_catalog.jsonb_populate_recordset(CAST(NULL AS {target}), "
            "CAST(%s AS pg_catalog.jsonb))"
        )
        sql = _statements[key] = (
            f"INSERT INTO {target} ({columns}{added}) SELECT {columns}{values} FROM {rows}{tail}"
        )
    return sql


def rows_json(
    dialect: Dialect, table: Table, names: Sequence[str], rows: Sequence[dict[str, Any]]
) -> str | None:
    """`rows` (their values of columns `names`) as `recordset_sql`'s parameter, checked and
    converted as the columns' types bind them; None when a value is not one JSON holds (a
    numpy number, ...: the caller binds them its other way). Each row's record is made in one
    C-level pass (`itemgetter`, `zip`); only the columns a type checks or converts are
    visited apart, in the columns' order (3 runs: 55 -> 44 us, load 18)."""
    plan = _plan(dialect, table, names)
    assert plan is not None, "recordset_sql said which tables and columns fit"
    pick, columns, active, texts = _picked(dialect, table, names, plan)
    records = [dict(zip(columns, pick(row), strict=True)) for row in rows]
    if texts is not None:  # the text columns' checks in one call (`TextChecks`)
        check_texts, text_names = texts
        check_texts([[record[name] for record in records] for name in text_names])
    for name, check, convert in active:
        if check is not None:
            check([record[name] for record in records])
        if convert is not None:
            for record in records:
                value = record[name]
                if value is not None:
                    record[name] = convert(value)
    try:
        return json.dumps(records, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


_Picked = tuple[
    Callable[[dict[str, Any]], Any],
    list[str],
    _Plan,
    tuple[Callable[[list[list[Any]]], None], list[str]] | None,
]
_picks: dict[tuple[str, Table, tuple[str, ...]], _Picked] = {}


def _picked(dialect: Dialect, table: Table, names: Sequence[str], plan: _Plan) -> _Picked:
    """How `rows_json` reads a row's values of `names` (a tuple), the columns' names in the
    JSON records, the plan's entries that check or convert (in order), and the text columns'
    checks as one (`TextChecks`) with their names, where there are several."""
    key = (dialect.name, table, tuple(names))  # the Table: two of one name are two
    found = _picks.get(key)
    if found is None:
        pick: Callable[[dict[str, Any]], Any]
        if len(names) == 1:
            only = names[0]

            def pick(row: dict[str, Any]) -> tuple[Any, ...]:
                return (row[only],)

        else:
            pick = itemgetter(*names)
        from lakeline.models.base import TextCheck, TextChecks

        active = [(name, check, convert) for name, check, convert in plan if check or convert]
        grouped = [(n, check) for n, check, c in active if isinstance(check, TextCheck) and not c]
        texts = None
        if len(grouped) > 1:
            apart = {name for name, _ in grouped}
            active = [entry for entry in active if entry[0] not in apart]
            texts = (TextChecks([check for _, check in grouped]), [name for name, _ in grouped])
        found = _picks[key] = (pick, [name for name, _, _ in plan], active, texts)
    return found


def insert_recordset(connection: Connection, sql: str, text: str) -> list[Any]:
    """Run `recordset_sql`'s statement over `rows_json`'s text: its rows (`driver_rows`)."""
    return driver_rows(connection, sql, (text,))
