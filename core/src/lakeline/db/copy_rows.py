"""COPY into a table, with its ids drawn from its sequence first (PostgreSQL): what
`db.rows.insert_rows` and `insert_many` use for many rows, and the table's defaults a COPY
takes once (`ONCE_NAMES`) or leaves to the database."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def _row_security(session: Session, table: str) -> bool:
    """Whether row-level security applies to this connection's role on `table` (it never
    changes for a connection: cached on it)."""
    info = session.connection().info
    key = ("row_security", table)
    if key not in info:
        query = text("SELECT row_security_active(CAST(:t AS regclass))")
        info[key] = bool(session.execute(query, {"t": table}).scalar())
    return bool(info[key])


def _draw_ids(
    session: Session, table: Table, n: int, once: Sequence[str] = ()
) -> tuple[list[int], list[Any]]:
    """`n` ids from `table`'s sequence, and the value of each expression of `once` (an
    uncorrelated subquery: PostgreSQL evaluates it once, as an InitPlan), in one round trip."""
    # the sequence looked up once, in FROM: in the select list `pg_get_serial_sequence` (a
    # catalog lookup and a name parse) ran for every id drawn (10k ids: 2.3 -> 0.3 us each)
    values = "".join(f", (SELECT {expression})" for expression in once)
    draw = text(
        f"SELECT pg_catalog.nextval(s){values} FROM "
        "CAST(pg_catalog.pg_get_serial_sequence(:table, 'id') AS regclass) AS s, "
        "pg_catalog.generate_series(1, :n)"  # qualified: no function of a writer's schema
    )
    rows = session.execute(draw, {"table": table.name, "n": n}).all()
    return [row[0] for row in rows], list(rows[0][1:]) if rows else []


# a column default evaluated once per statement instead of once per row: STABLE, no
# arguments (`lakeline_default_space()`, 0008: ~2.5 us a row through COPY), as pg_get_expr
# shows it: named by its schema since 0022 (lakeline's functions' own, not on the path)
ONCE_NAMES = frozenset({"lakeline_default_space()"})


def _once(expression: str) -> bool:
    return expression.rpartition(".")[2] in ONCE_NAMES


def _defaults(session: Session, table: str) -> dict[str, str]:
    """The database's default (or generation) expression of each of `table`'s columns that
    has one (cached on the connection, as `_row_security`: only a migration changes them)."""
    info = session.connection().info
    key = ("defaults", table)
    if key not in info:
        # pg_catalog's operators: `oid = regclass` has none there, a `public.=(oid, regclass)`
        # would be an exact match, picked, run in this session
        query = text(
            "SELECT a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid) "
            "FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid "
            "AND a.attnum OPERATOR(pg_catalog.=) d.adnum "
            "WHERE d.adrelid OPERATOR(pg_catalog.=) CAST(CAST(:t AS pg_catalog.regclass) "
            "AS pg_catalog.oid) AND NOT a.attisdropped"
        )
        info[key] = {str(n): str(e) for n, e in session.execute(query, {"t": table}).all()}
    return dict(info[key])


table_defaults = _defaults  # for a COPY's columns chosen elsewhere (`copy_columns`)


def copy_columns(
    names: Sequence[str], rows: Sequence[dict[str, Any]], defaults: dict[str, str]
) -> tuple[list[str], list[str], list[str]]:
    """Which columns a COPY of `rows` (columns `names`) writes, given the table's database
    defaults (`_defaults`): (the rows' columns it writes, columns added, the added columns'
    default expressions). Left out: a column NULL in every row that has no database default
    (NULL all the same: one value less to bind, send and parse a row). Added: a column the
    rows leave out whose default is in `ONCE_NAMES`, its value taken once for the whole COPY (what
    each row's default would be: the function is STABLE, its value the statement's), with
    the ids (`_draw_ids`: no round trip more)."""
    kept = []
    for name in names:
        try:  # read through only when the first row's is NULL (C loops: ~0.03 us a value)
            null = rows[0][name] is None
            null = null and list(map(itemgetter(name), rows)).count(None) == len(rows)
        except KeyError:  # a row without it: `_bound` says which
            null = False
        if name in defaults or not null:
            kept.append(name)
    given = set(names)
    added = [n for n, e in defaults.items() if _once(e) and n not in given]
    return kept, added, [defaults[n] for n in added]


def copy_bound(
    session: Session,
    table: Table,
    names: Sequence[str],
    bound: Sequence[Sequence[Any]],
    added: Sequence[str] = (),
    expressions: Sequence[str] = (),
) -> list[int]:
    """COPY rows of values already bound (`_bound` of columns `names`; `added` and their
    `expressions`: `copy_columns`) into `table` with ids drawn from its sequence
    (PostgreSQL), returned in order.

    PostgreSQL refuses COPY FROM into a table under row-level security for the roles it
    applies to: for those, the rows are copied into a temporary table of the same shape and
    go in with one INSERT ... SELECT (policies and statement triggers see one statement, as
    for COPY; an executemany would fire them once per row)."""
    ids, once = _draw_ids(session, table, len(bound), expressions)
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    columns = ", ".join(quote(name) for name in ["id", *names, *added])
    staged = _row_security(session, table.name)
    if staged:  # the columns' types, no constraints or defaults; one per column set
        shape = zlib.crc32(columns.encode())
        stage = quote(f"lakeline_stage_{table.name}_{shape:08x}")
        session.execute(
            text(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                f"SELECT {columns} FROM {target} WITH NO DATA"
            )
        )
        session.execute(text(f"TRUNCATE {stage}"))
        target, final = stage, target
    statement = f"COPY {target} ({columns}) FROM STDIN"
    driver_error = dialect.loaded_dbapi.Error
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor, cursor.copy(statement) as copy:
            for new_id, values in zip(ids, bound, strict=True):
                copy.write_row([new_id, *values, *once])
    except driver_error as exc:
        # as SQLAlchemy raises for its own statements (IntegrityError, OperationalError...),
        # so that the caller's retries see a unique violation or a deadlock for what it is
        raise DBAPIError.instance(statement, None, exc, driver_error) from exc
    if staged:
        session.execute(text(f"INSERT INTO {final} ({columns}) SELECT {columns} FROM {target}"))
    return ids
