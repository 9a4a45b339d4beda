"""Many rows at once: inserting new rows and looking rows up by long lists of values.

A few rows take one INSERT ... RETURNING id (PostgreSQL: up to RECORDSET rows, one INSERT
over the rows as one JSON text, `recordset`). More rows: SQLite takes multi-row INSERT ...
VALUES statements of bound parameters (500 rows each), ids checked by a unique column;
PostgreSQL takes COPY (`db.copy_rows`), with ids drawn from the table's own sequence first,
so no read-back is needed. Both fire the same triggers and fill the same generated columns as
a plain INSERT.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Enum,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import InvalidRequestError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from lakeline.db.copy_rows import _defaults, _once, copy_bound, copy_columns

if TYPE_CHECKING:
    from lakeline.models.base import TextChecks

CHUNK = 500
RETURNING = 16  # up to this many rows go in one INSERT ... RETURNING (COPY/VALUES beyond)
# PostgreSQL: up to this many rows go in one INSERT over the rows as JSON (`recordset`), COPY
# beyond: thread CPU for artifact rows (load 8) 20 rows 1155 -> 819 us, 50 rows 1380 -> 1121,
# 200 rows 2259 -> 2520 (COPY's ids and data: three round trips, one here)
RECORDSET = 100
VALUES_ROWS = 500  # SQLite: rows per multi-row INSERT ... VALUES
SQLITE_PARAMETERS = 32766  # SQLite's default limit on a statement's parameters (>= 3.32)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect_of(session: Session) -> Any:
    """The dialect of `session`'s bind: its own `bind` (lakeline's sessions have one), read
    without `get_bind`'s look-up (~10k instructions; a flush asks several times)."""
    bind = session.bind
    return (bind if bind is not None else session.get_bind()).dialect


_CONNECTION = "lakeline_connection"  # a session's info: (its transaction, its connection)


def connection_of(session: Session) -> Connection:
    """`session.connection()`, remembered for the session's transaction (its innermost one,
    while it is active): the call looks up the bind and checks the transaction's state
    (~12.6k instructions), and a flush asks in four places (the runs' insert, the places'
    read, the records' insert, the edges'). Held by a weak reference to that transaction, so a
    later transaction of the session (or one that failed) asks the session again."""
    current = session.get_nested_transaction() or session.get_transaction()
    held = session.info.get(_CONNECTION)
    if held is not None and current is not None and held[0]() is current and current.is_active:
        return held[1]  # type: ignore[no-any-return]
    connection = session.connection()
    current = session.get_nested_transaction() or session.get_transaction()
    if current is not None:
        session.info[_CONNECTION] = (weakref.ref(current), connection)
    return connection


def is_postgres(session: Session) -> bool:
    return bool(dialect_of(session).name == "postgresql")


def one_of(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN (values)`. Many texts (SQLite: or integers) are one JSON parameter, read by
    `json_each` (SQLite) or `jsonb_array_elements_text` (PostgreSQL): a bound or inline value
    each cost ~1.4 us of Python (500 keys: 1.7 -> 0.35-0.46 us a key). Both plans probe the
    column's index per value, PostgreSQL's generic one too (the function's 100-row estimate
    does not depend on the list), as psycopg prepares a statement run 5 times. Other lists
    stay a plain IN; on PostgreSQL rendered inline: the generic plan of a long IN list of
    parameters compares every row with every value (~150 ms per 500 values at 10k rows), so
    a text holding a NUL is InvalidValue there, as `Str` refuses a bound one. A JSON column's
    values are bound (PostgreSQL has no literal for them: a CompileError)."""
    postgres = is_postgres(session)
    type_ = getattr(column, "type", None)
    if isinstance(getattr(type_, "impl_instance", type_), JSON):  # bound: no JSON literal
        return column.in_(values)  # type: ignore[no-any-return]
    as_json = _json_list(session, column, values, postgres) if len(values) > RETURNING else None
    if as_json is not None:
        if postgres:
            from sqlalchemy.dialects.postgresql import JSONB

            elements: Any = select(
                func.jsonb_array_elements_text(cast(bindparam(None, as_json, Text), JSONB))
            )
        else:
            elements = select(literal_column("value")).select_from(func.json_each(as_json))
        return column.in_(elements)  # type: ignore[no-any-return]
    if not postgres:
        return column.in_(values)  # type: ignore[no-any-return]
    for value in values:  # inline: a NUL would end the SQL text (a raw syntax error)
        if isinstance(value, str) and "\x00" in value:  # a subclass too (numpy's `str_`)
            from lakeline.values import check_text

            check_text(value, None)  # InvalidValue, as a bound value's check
    listed: Any = bindparam(None, list(values), expanding=True, literal_execute=True)
    return column.in_(listed)  # type: ignore[no-any-return]


def _json_list(session: Session, column: Any, values: Sequence[Any], postgres: bool) -> str | None:
    """`values` as one JSON array, or None where JSON would change what is compared: only a
    column whose type binds values as they are (`Str` only checks them), texts without a
    NUL (json_each would cut it, PostgreSQL refuses it) or, on SQLite, integers (not
    booleans) of an integer column; PostgreSQL compares text columns only (no cast of each
    element)."""
    import json

    kind = type(values[0])
    if kind not in ((str,) if postgres else (str, int)):
        return None
    if any(type(value) is not kind for value in values):
        return None
    type_ = getattr(column, "type", None)
    if type_ is None:
        return None
    dialect = dialect_of(session)
    checker = getattr(type_, "many_checker", None)
    if checker is not None:
        if checker(dialect) is None:
            return None
    elif type_.dialect_impl(dialect).bind_processor(dialect) is not None:
        return None
    impl = getattr(type_, "impl_instance", type_)
    if postgres:
        if not isinstance(impl, String) or isinstance(impl, Enum):
            return None
    elif kind is int and not isinstance(impl, Integer):
        return None  # a text column: IN compares integers as texts, json_each's do not match
    if kind is str and "\x00" in "".join(values):
        return None
    return json.dumps(list(values))


def update_row(session: Session, record: Any, values: dict[str, Any]) -> None:
    """Write `values` to `record`'s row with one Core UPDATE (the ORM's unit of work never
    sees it) and set them on the object as loaded values, so it stays a clean record."""
    if not values:
        return
    model = type(record)
    session.execute(
        update(model)
        .where(model.id == record.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for name, value in values.items():
        set_committed_value(record, name, value)


def fill_new(record: Any, values: dict[str, Any]) -> None:
    """Set column values on a new, transient record without the ORM's per-attribute events
    (~3 us each): the ORM inserts a transient record's values as they are, and a record
    becomes clean when it is made detached or persistent, as any save does."""
    vars(record).update(values)


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    unique: str,
    columns: Sequence[str] | None = None,
) -> list[int]:
    """Insert `rows` (every row with the same keys, no primary key) in the session's
    transaction and return their new ids, in order. `unique` names a unique column the rows
    carry, by which SQLite's ids are checked (and read back if they are not consecutive).
    `columns`: the columns to write, when the rows hold other keys too (an object's own
    dict: no copy of each row)."""
    if not rows:
        return []
    if columns is None:
        _check_keys(table, rows)
    else:
        names = list(columns)
        if len(rows) <= RETURNING and len(names) > 1:  # each row's columns picked in C
            pick = itemgetter(*names)
            rows = [dict(zip(names, pick(row), strict=True)) for row in rows]
        elif len(rows) <= RETURNING:
            rows = [{name: row[name] for name in names} for row in rows]
        else:
            rows = _Rows(rows, names)
    if len(rows) <= RECORDSET and is_postgres(session):
        made_ids = _insert_recordset(session, table, rows, unique)
        if made_ids is not None:
            return made_ids
    if len(rows) <= RETURNING:
        # one statement that hands the ids back: the fewest round trips for a few rows. Read
        # back by `unique`, not in order: SQLite's RETURNING has no order, and SQLAlchemy
        # sends one INSERT a row there when asked to sort them by the rows' order
        if not is_postgres(session):
            from lakeline.db.sqlite_rows import insert_returning

            return insert_returning(session, table, rows, unique)
        stmt = insert(table).returning(table.c.id, table.c[unique])
        made = {key: new_id for new_id, key in session.execute(stmt, list(rows))}
        return [made[row[unique]] for row in rows]
    if is_postgres(session):
        return _copy_rows(session, table, rows)
    # SQL for the driver: no statement to compile (~0.3 ms each for a new engine) nor the
    # session's per-statement work, for the two reads every such insert makes
    connection = connection_of(session)
    preparer = connection.dialect.identifier_preparer
    name, key = preparer.format_table(table), preparer.quote(table.c[unique].name)
    last = connection.exec_driver_sql(f"SELECT max(id) FROM {name}").scalar() or 0
    from lakeline.db.sqlite_rows import insert_values

    insert_values(session, table, rows)
    # SQLite gives each new row the largest rowid + 1, in order, and the transaction holds
    # the write lock: the ids are last+1 .. last+n, which the first and last rows confirm
    ends = connection.exec_driver_sql(
        f"SELECT id, {key} FROM {name} WHERE id IN (?, ?)", (last + 1, last + len(rows))
    ).all()
    if sorted(ends) == [(last + 1, rows[0][unique]), (last + len(rows), rows[-1][unique])]:
        return list(range(last + 1, last + len(rows) + 1))
    column = table.c[unique]  # otherwise (AUTOINCREMENT after deletes): read them back
    ids: dict[Any, int] = {}
    for chunk in chunks([row[unique] for row in rows]):
        found = session.execute(select(column, table.c.id).where(one_of(session, column, chunk)))
        ids.update(found.tuples().all())
    return [ids[row[unique]] for row in rows]


def _insert_recordset(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], unique: str
) -> list[int] | None:
    """PostgreSQL, up to RECORDSET rows: one INSERT over the rows as JSON (`recordset`: one
    statement whatever the row count, no value bound apiece), their ids in order; None where
    their columns or values do not fit it."""
    from lakeline.db.recordset import insert_recordset, recordset_sql, rows_json

    rows = _with_defaults(table, rows)  # as the INSERT construct fills them
    names = _names(rows)
    dialect = dialect_of(session)
    tail = f" RETURNING id, {dialect.identifier_preparer.quote(table.c[unique].name)}"
    once: list[tuple[str, str]] = []
    if len(rows) > RETURNING:  # a default of ONCE_NAMES taken once, as COPY takes it (a few
        # rows take it a row each, as an INSERT of theirs did: no look-up of the defaults)
        given = set(names)
        defaults = _defaults(session, table.name)
        once = [(n, e) for n, e in defaults.items() if _once(e) and n not in given]
    sql = recordset_sql(dialect, table, names, tail, once)
    if sql is None:
        return None
    try:
        listed = rows_json(dialect, table, names, rows)
    except KeyError:  # a row without one of the columns: which
        n, row = next((n, r) for n, r in enumerate(rows) if not all(k in r for k in names))
        raise _odd(table, names, n, row, extra=False) from None
    if listed is None:
        return None
    made = {key: new_id for new_id, key in insert_recordset(connection_of(session), sql, listed)}
    return [made[row[unique]] for row in rows]


class _Rows(list[dict[str, Any]]):
    """Rows whose columns are `names`, though each holds other keys too."""

    def __init__(self, rows: Sequence[dict[str, Any]], names: list[str]) -> None:
        super().__init__(rows)
        self.names = names


def _names(rows: Sequence[dict[str, Any]]) -> list[str]:
    return rows.names if isinstance(rows, _Rows) else list(rows[0])


def _check_keys(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Refuse rows whose keys are not the first row's (InvalidValue): a key only a later row
    has would be dropped, one it lacks fail or be NULL, depending on the path. Many rows: their
    lengths here (~0.05 us a row; comparing keys cost 0.4), a key swapped for another one is
    `_bound`'s KeyError (or `insert_many`'s executemany missing a value)."""
    first = rows[0].keys()
    n, few = len(first), len(rows) <= RETURNING
    for i, row in enumerate(rows):
        if len(row) != n or (few and row.keys() != first):
            raise _odd(table, list(first), i, row)


def _odd(
    table: Table, names: Sequence[str], i: int, row: dict[str, Any], *, extra: bool = True
) -> Exception:
    """InvalidValue: row `i` has not the columns `names` (`extra`: nor other keys)."""
    from lakeline.errors import InvalidValue

    odd = sorted(set(names).difference(row)) + sorted(set(row).difference(names) if extra else ())
    return InvalidValue(
        f"rows for {table.name} must all have the same columns: row {i} differs from the first "
        f"in {', '.join(odd)}"
    )


def _with_defaults(table: Table, rows: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """`rows` with the Python-side defaults (`Column(default=...)`, a value or a function) of
    the columns they leave out, as an INSERT through SQLAlchemy (the few-row path) fills them:
    COPY and the multi-row VALUES would write NULL (or fail a NOT NULL) instead."""
    names = _names(rows)
    shape = (table, tuple(names))
    defaults = _python_defaults.get(shape)
    if defaults is None:  # the columns' defaults never change: looked up once a shape
        given = set(names)
        defaults = [
            c
            for c in table.columns
            if c.key not in given
            and not c.primary_key
            and c.default is not None
            and (c.default.is_scalar or c.default.is_callable)
        ]
        if len(_python_defaults) >= 256:
            _python_defaults.clear()
        _python_defaults[shape] = defaults
    if not defaults:
        return rows
    filled = []
    for n, row in enumerate(rows):
        try:
            values = {name: row[name] for name in names}
        except KeyError:
            raise _odd(table, names, n, row, extra=False) from None
        for c in defaults:
            arg = c.default.arg  # type: ignore[union-attr]
            values[c.key] = arg(None) if c.default.is_callable else arg  # type: ignore[union-attr]
        filled.append(values)
    return filled


_python_defaults: dict[tuple[Table, tuple[str, ...]], list[Column[Any]]] = {}


def _bound(
    table: Table, dialect: Any, names: list[str], rows: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """Each row's values of columns `names`, in order, as the column types bind them (NULLs
    as they are: no processor call for them). A column whose type only checks its values
    (`Str` where binding converts nothing) is checked as a whole column, and one whose type
    converts a column at once (`UTCDateTime` on SQLite) is converted so: fewer calls per row
    than a processor call per value (~4 us a new artifact row together)."""
    convert, checks, columns, texts = _bind_plan(table, dialect, names)
    if not rows:
        return []
    # column by column (C-level passes: a row's values picked, then columns made of them and
    # rows again of the columns), each column's values checked or converted at once
    try:
        if len(names) > 1:
            made: list[Any] = list(zip(*map(itemgetter(*names), rows), strict=True))
        else:
            made = [[row[names[0]] for row in rows]]
    except KeyError:
        n, row = next((n, r) for n, r in enumerate(rows) if not all(k in r for k in names))
        raise _odd(table, names, n, row, extra=False) from None
    for i, process in convert:
        made[i] = [None if value is None else process(value) for value in made[i]]
    if texts is not None:  # the text columns' checks, in one call
        texts.check(list(map(made.__getitem__, texts.indexes)))
    for i, check in checks:
        check(made[i])
    for i, whole in columns:
        made[i] = whole(made[i])
    return list(map(list, zip(*made, strict=True)))


bound_values = _bound  # for other modules' statements over json_each / unnest, and COPYs


class _Texts:
    """The text columns' checks (`TextChecks`) and the columns' indexes, in order."""

    __slots__ = ("check", "indexes")

    def __init__(self, check: TextChecks, indexes: list[int]) -> None:
        self.check, self.indexes = check, indexes


_Plan = tuple[
    list[tuple[int, Callable[[Any], Any]]],
    list[tuple[int, Callable[[list[Any]], None]]],
    list[tuple[int, Callable[[list[Any]], list[Any]]]],
    _Texts | None,
]
# `_bound`'s plan by dialect (an engine's, gone with it), table and columns: reading each
# column's processors cost ~45 us a call for a run's 21 columns, whatever the rows
_plans: weakref.WeakKeyDictionary[Any, dict[tuple[Table, tuple[str, ...]], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def _bind_plan(table: Table, dialect: Any, names: list[str]) -> _Plan:
    """How `_bound` binds columns `names`: (index, processor) of the columns converted a
    value at a time, (index, check) of those checked as a whole column, (index, processor) of
    those converted as a whole column, and the text columns' checks (`TextCheck`s) as one
    (`_Texts`: ~1.5k instructions a column less, 18 columns a one-step flush)."""
    known = _plans.get(dialect)
    if known is None:
        known = _plans[dialect] = {}
    plan = known.get((table, tuple(names)))
    if plan is not None:
        return plan
    convert: list[tuple[int, Callable[[Any], Any]]] = []
    checks: list[tuple[int, Callable[[list[Any]], None]]] = []
    columns: list[tuple[int, Callable[[list[Any]], list[Any]]]] = []
    for i, name in enumerate(names):
        impl = table.c[name].type.dialect_impl(dialect)
        many = getattr(impl, "many_checker", None)
        check = many(dialect) if many is not None else None
        if check is not None:
            checks.append((i, check))
            continue
        many = getattr(impl, "many_processor", None)  # a column converted at once
        whole = many(dialect) if many is not None else None
        if whole is not None:
            columns.append((i, whole))
            continue
        bind = impl.bind_processor(dialect)
        if bind is not None and isinstance(impl, Boolean):  # a column's True/False at once
            columns.append((i, _booleans(bind)))
        elif bind is not None:
            convert.append((i, bind))
    from lakeline.models.base import TextCheck, TextChecks  # (a plan is made once)

    grouped = [(i, check) for i, check in checks if isinstance(check, TextCheck)]
    texts = None
    if len(grouped) > 1:
        checks = [(i, check) for i, check in checks if not isinstance(check, TextCheck)]
        made = TextChecks([check for _, check in grouped])
        texts = _Texts(made, [i for i, _ in grouped])
    plan = known[(table, tuple(names))] = (convert, checks, columns, texts)
    return plan


def _booleans(bind: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """A Boolean column's bind processor for a whole column: True, False and None as it binds
    them (computed once), any other value by the processor itself (its checks and errors):
    two calls less a value (~1.3k instructions, 3 values a new artifact)."""
    true, false = bind(True), bind(False)

    def process(values: list[Any]) -> list[Any]:
        return [
            true if v is True else false if v is False else None if v is None else bind(v)
            for v in values
        ]

    return process


def insert_many(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (same keys, no primary key) whose ids nobody needs: COPY on PostgreSQL
    for many rows, else one Core executemany (never the ORM's bulk path, which builds every
    row's parameters in Python twice)."""
    if not rows:
        return
    _check_keys(table, rows)
    if len(rows) > RETURNING and is_postgres(session):
        _copy_rows(session, table, rows)
        return
    try:
        session.execute(insert(table), list(rows))
    except StatementError as exc:  # many rows: a key swapped for another is a missing value
        first = rows[0].keys()
        odd = next((i for i, row in enumerate(rows) if row.keys() != first), None)
        if odd is None or not isinstance(exc.orig, InvalidRequestError):
            raise
        raise _odd(table, list(first), odd, rows[odd]) from None


def _copied(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> tuple[
    list[str], list[str], list[str]
]:  # fmt: skip
    """Which columns a COPY of `rows` writes: `copy_columns` with `table`'s defaults."""
    return copy_columns(_names(rows), rows, _defaults(session, table.name))


def _copy_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """COPY `rows` into `table` with ids drawn from its sequence (PostgreSQL)."""
    rows = _with_defaults(table, rows)
    names, added, expressions = _copied(session, table, rows)
    bound = _bound(table, session.get_bind().dialect, names, rows)
    return copy_bound(session, table, names, bound, added, expressions)
