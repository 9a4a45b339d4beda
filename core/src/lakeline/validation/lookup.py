"""Values in, registry rows out: the batched lookups `validate`, `inspect`, `standardize` and
`from_values` share. Every function issues one query (a list of values travels as ONE
parameter: an array on PostgreSQL, JSON on SQLite), never one per value.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeline.errors import InvalidValue, MissingDependency, QueryError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy import Column, ColumnElement
    from sqlalchemy.engine import Connection

SEPARATOR = "|"  # between the synonyms of one record in its `synonyms` column
SHORT_IN = 500  # up to this many values go as an ordinary IN list
SNAPSHOT_FIRST = 4  # inspect: read every name rather than look values up, up to 4 per value
HASH_JOIN_FROM = 10_000  # PostgreSQL: more values are checked with a hash anti-join (61k: 2x)


def require_extras() -> None:
    """Raise MissingDependency unless pandas and rapidfuzz (the `validation` extra) are
    installed."""
    import importlib.util

    missing = [m for m in ("pandas", "rapidfuzz") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependency(
            f"validation needs {' and '.join(missing)}: pip install 'lakeline[validation]'"
        )


def name_field(model: type[Any], field: str | Any | None) -> Column[Any]:
    """The text column `field` names (default: the model's `_name_field`, else `name`)."""
    name = field if field is not None else getattr(model, "_name_field", "name")
    name = getattr(name, "key", name)  # a mapped attribute such as ULabel.name
    columns = model.__table__.columns
    if not isinstance(name, str) or name not in columns:
        raise QueryError(
            f"{model.__name__} has no field {name!r}; text fields: {', '.join(text_fields(model))}"
        )
    column: Column[Any] = columns[name]
    if name not in text_fields(model):
        raise QueryError(
            f"{model.__name__}.{name} is not a text field; validate against one of: "
            f"{', '.join(text_fields(model))}"
        )
    return column


def text_fields(model: type[Any]) -> list[str]:
    """Names of the model's string columns (lakeline's `Str`/`LongText` included)."""
    from sqlalchemy import String, TypeDecorator

    found = []
    for column in model.__table__.columns:
        sql_type = column.type
        if isinstance(sql_type, TypeDecorator):
            sql_type = sql_type.impl_instance
        if isinstance(sql_type, String):
            found.append(column.name)
    return found


def optional_column(model: type[Any], name: str) -> Column[Any] | None:
    """The model's `synonyms` or `abbr` column, or None when it has none."""
    columns = model.__table__.columns
    return columns.get(name)  # type: ignore[no-any-return]


@dataclass
class Distinct:
    """Values reduced to their distinct non-null values (first-seen order; a Categorical's
    category order), with what maps results per distinct value back to one per value."""

    uniques: list[str]
    sendable: list[str]  # uniques a database can compare (no NUL byte)
    size: int
    values: list[Any] | None = None  # the values (plain input)
    codes: npt.NDArray[np.intp] | None = None  # or codes into `uniques` (categorical input)

    def member(self, found: set[str]) -> npt.NDArray[np.bool_]:
        """One bool per value: is it in `found`? (Nulls are not.)"""
        import numpy as np

        if self.codes is not None:
            per_unique = np.fromiter(map(found.__contains__, self.uniques), dtype=bool)
            return np.append(per_unique, False)[self.codes]
        assert self.values is not None
        return np.fromiter(map(found.__contains__, self.values), dtype=bool, count=self.size)

    def replace(self, mapper: dict[str, Any]) -> list[Any]:
        """The values with those in `mapper` replaced (nulls and the rest kept)."""
        import numpy as np

        if self.codes is not None:
            replaced = np.empty(len(self.uniques) + 1, dtype=object)
            replaced[:-1] = [mapper.get(v, v) for v in self.uniques]
            replaced[-1] = None
            return replaced[self.codes].tolist()  # type: ignore[no-any-return]
        assert self.values is not None
        get = mapper.get
        return [get(v, v) if v.__class__ is str else v for v in self.values]


def distinct(
    model: type[Any], column: Column[Any], values: Any, *, ordered: bool = True
) -> Distinct:
    """`values` (a str, list, array, pandas Series/Index/Categorical or other iterable) as
    their distinct values (in no particular order unless `ordered`); a non-null value that is
    not a string is an InvalidValue."""
    import numpy as np
    import pandas as pd

    if isinstance(values, str):
        values = [values]
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        codes = np.asarray(values.codes, dtype=np.intp)
        observed = np.bincount(codes[codes >= 0], minlength=len(values.categories)) > 0
        categories = values.categories.to_numpy(dtype=object)
        uniques = categories[observed].tolist()
        remap = np.full(len(categories) + 1, -1, dtype=np.intp)  # -1 (null) stays -1
        remap[np.flatnonzero(observed)] = np.arange(len(uniques))
        found = Distinct(uniques, [], len(codes), codes=remap[codes])
    else:
        if isinstance(values, (pd.Series, pd.Index, np.ndarray)):
            values = values.tolist()
        elif not isinstance(values, list):
            if not isinstance(values, Iterable):
                raise InvalidValue(
                    f"{model.__name__}.{column.name}: expected a list of values, "
                    f"got {type(values).__name__}"
                )
            values = list(values)
        try:
            uniques = list(dict.fromkeys(values) if ordered else set(values))
        except TypeError:
            bad = next(v for v in values if not isinstance(v, Hashable))
            raise InvalidValue(
                f"{model.__name__}.{column.name} holds text, but {bad!r} is a "
                f"{type(bad).__name__}: convert the values to strings first"
            ) from None
        found = Distinct(uniques, [], len(values), values=values)
    kept = []
    for value in found.uniques:
        if value.__class__ is str or isinstance(value, str):
            kept.append(value)
        elif not pd.isna(value):
            raise InvalidValue(
                f"{model.__name__}.{column.name} holds text, but {value!r} is a "
                f"{type(value).__name__}: convert the values to strings first"
            )
    found.uniques = kept  # nulls dropped (a categorical has none among its categories)
    found.sendable = [v for v in kept if "\x00" not in v]  # PostgreSQL text cannot hold NUL
    return found


def one_param_in(column: Any, values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """`column IN values` with the values as a single parameter when the list is long (a
    statement takes at most 65,535 parameters on PostgreSQL, 32,766 on SQLite)."""
    from sqlalchemy import select

    if len(values) <= SHORT_IN:
        return column.in_(list(values))  # type: ignore[no-any-return]
    listed = _table_of(values, dialect)
    return column.in_(select(listed.c.value))  # type: ignore[no-any-return]


def names_in(
    conn: Connection, column: Column[Any], values: Sequence[str], where: Any = None
) -> set[str]:
    """The values that are the field of some record (exact, case-sensitive; of the records
    `where` selects, when given). A long list is sent as one parameter and the database
    returns the values it does NOT hold: usually few rows, where the names found would be as
    many rows as values."""
    from sqlalchemy import select, true

    if not values:
        return set()
    scope = true() if where is None else where
    if len(values) <= SHORT_IN:
        stmt = select(column).where(column.in_(list(values)), scope)
        return set(conn.execute(stmt).scalars().all())
    listed = _table_of(values, conn.dialect.name)
    value = listed.c.value
    stmt = select(value).where(~select(column).where(column == value, scope).exists())
    hash_join = conn.dialect.name == "postgresql" and len(values) > HASH_JOIN_FROM
    if hash_join:  # the planner guesses 100 rows for a JSON function: one index probe each
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")  # this transaction only
    try:
        missing = set(conn.execute(stmt).scalars().all())  # all(): fetchall, not row by row
    finally:
        if hash_join:
            conn.exec_driver_sql("RESET enable_nestloop")
    return set(values) - missing


def _table_of(values: Sequence[str], dialect: str) -> Any:
    """The values as a one-column table (`value`) from ONE parameter: a JSON array, which
    `json.dumps` writes in C (psycopg writes a Python list as a text[] literal element by
    element in Python: 85 ms for 17k values), read by `json_array_elements_text` on
    PostgreSQL (text, never varchar(n): a cast to varchar(n) would truncate a longer value
    into a match) and `json_each` on SQLite."""
    import json

    from sqlalchemy import func

    data = json.dumps(list(values))
    if dialect == "postgresql":
        from sqlalchemy import JSON, String, bindparam, cast

        elements = func.json_array_elements_text(cast(bindparam(None, data, String()), JSON))
        return elements.table_valued("value").render_derived().alias("listed")
    return func.json_each(data).table_valued("value").alias("listed")


@dataclass
class Snapshot:
    """A registry's names and synonyms, read once per call (one query), oldest record first:
    `names` (all of them, or none when only synonyms were read) and `synonym_rows`: (name,
    its synonyms and abbreviation joined by '|') for the records that have any."""

    names: list[str]
    synonym_rows: list[tuple[str, str]]

    def resolve(
        self, values: Iterable[str], *, case_sensitive: bool
    ) -> tuple[dict[str, list[str]], set[str]]:
        """({value: names it stands for, oldest first}, values matched by case only): through a
        synonym; with `case_sensitive=False`, for the others, a name or else a synonym that
        equals the value once both are casefolded (needs `names`)."""
        wanted = set(values)
        wanted.discard("")  # an empty value is nobody's synonym
        folded: dict[str, list[str]] = {}
        if not case_sensitive:
            for value in wanted:
                folded.setdefault(value.casefold(), []).append(value)
        found: dict[str, list[str]] = {}
        by_synonym_case: dict[str, list[str]] = {}
        for name, text in self.synonym_rows:  # one pass: exact and casefolded synonyms
            for synonym in text.split(SEPARATOR):
                if synonym in wanted and synonym != name:
                    _add(found, synonym, name)
            if folded:  # casefold keeps the separators where they are
                for synonym in text.casefold().split(SEPARATOR):
                    for value in folded.get(synonym, ()):
                        _add(by_synonym_case, value, name)
        rest = wanted - found.keys()
        if not folded or not rest:
            return found, set()
        by_case: dict[str, list[str]] = {}
        for name, key in zip(self.names, map(str.casefold, self.names), strict=True):
            for value in folded.get(key, ()):
                if value in rest:
                    _add(by_case, value, name)
        for value in rest - by_case.keys():  # a name that differs in case wins over a synonym
            if value in by_synonym_case:
                by_case[value] = by_synonym_case[value]
        found.update(by_case)
        return found, set(by_case)

    def choices(self) -> tuple[list[str], list[str]]:
        """(every name and synonym, the name each stands for), for close matches."""
        texts = list(self.names)
        targets = list(self.names)
        for name, text in self.synonym_rows:
            for synonym in text.split(SEPARATOR):
                if synonym and synonym != name:
                    texts.append(synonym)
                    targets.append(name)
        return texts, targets


def _add(found: dict[str, list[str]], value: str, name: str) -> None:
    listed = found.setdefault(value, [])
    if name not in listed:
        listed.append(name)


def snapshot(
    conn: Connection, model: type[Any], column: Column[Any], *, all_names: bool, where: Any = None
) -> Snapshot:
    """Read the registry's synonyms and abbreviations (and, with `all_names`, every name) in
    one query (60k rows cost a few ms: see `fetch_all`); of the records `where` selects."""
    from sqlalchemy import or_, select

    extra = [c for c in (optional_column(model, n) for n in ("synonyms", "abbr")) if c is not None]
    if not extra and not all_names:
        return Snapshot([], [])
    texts: Any = None
    if len(extra) == 2:  # joined by the database: no Python work per row
        from sqlalchemy import func

        joined = func.coalesce(extra[0], "") + SEPARATOR + func.coalesce(extra[1], "")
        texts = func.nullif(joined, SEPARATOR)
    elif extra:
        texts = extra[0]
    pk = model.__table__.primary_key.columns.values()[0]
    fast = all_names and where is None and conn.dialect.name == "sqlite"  # whole registry
    names = _sqlite_names(conn, model, column) if fast else None
    if names is not None:  # then only the records with synonyms
        if texts is None:
            return Snapshot(names, [])
        stmt = select(column, texts).where(column.is_not(None), texts.is_not(None)).order_by(pk)
        return Snapshot(names, [row for row in fetch_all(conn, stmt) if row[-1]])
    stmt = select(column, *([texts] if texts is not None else [])).order_by(pk)
    if not all_names:
        stmt = stmt.where(or_(*(c.is_not(None) for c in extra)))
    if where is not None:
        stmt = stmt.where(where)
    rows = fetch_all(conn, stmt.where(column.is_not(None)))
    names = [row[0] for row in rows] if all_names else []
    return Snapshot(names, [row for row in rows if row[-1]] if texts is not None else [])


def small_registry(conn: Connection, model: type[Any], n_values: int) -> bool:
    """Whether reading the whole registry costs about what looking up `n_values` values in it
    does: at most `SNAPSHOT_FIRST` records per value (counted by the largest primary key, one
    index probe; deleted rows only make it say no)."""
    from sqlalchemy import func, select

    if n_values <= SHORT_IN:
        return False
    pk = model.__table__.primary_key.columns.values()[0]
    largest = conn.execute(select(func.max(pk))).scalar()
    return isinstance(largest, int) and largest <= SNAPSHOT_FIRST * n_values


def read_names(conn: Connection, model: type[Any], column: Column[Any]) -> list[str]:
    """Every non-null name of the registry, oldest record first."""
    from sqlalchemy import select

    names = _sqlite_names(conn, model, column) if conn.dialect.name == "sqlite" else None
    if names is None:
        pk = model.__table__.primary_key.columns.values()[0]
        stmt = select(column).where(column.is_not(None)).order_by(pk)
        names = [row[0] for row in fetch_all(conn, stmt)]
    return names


def _sqlite_names(conn: Connection, model: type[Any], column: Column[Any]) -> list[str] | None:
    """Every name, oldest first, as one string SQLite concatenates (`group_concat`) and Python
    splits: one Python row per record is what 60k names cost (19 -> 9 ms here). Needs an
    INTEGER PRIMARY KEY (the rowid: a `NOT INDEXED` scan of the table visits rows in rowid
    order, where a covering name index would give name order); None when the table has
    another key or a name holds the separator (NUL), so the caller fetches rows."""
    pks = model.__table__.primary_key.columns.values()
    if len(pks) != 1 or str(pks[0].type.compile(dialect=conn.dialect)) != "INTEGER":
        return None
    quote = conn.dialect.identifier_preparer.quote
    table, name = quote(model.__table__.name), quote(column.name)
    sql = (
        f"SELECT count(*), group_concat({name}, char(0)) FROM {table} NOT INDEXED "
        f"WHERE {name} IS NOT NULL"
    )
    count, joined = conn.exec_driver_sql(sql).one()
    names: list[str] = joined.split("\x00") if count else []
    return names if len(names) == count else None


def fetch_all(conn: Connection, stmt: Any) -> list[tuple[Any, ...]]:
    """All rows of a statement as the driver's cursor returns them: no Row objects (for text
    columns, which have no result processing)."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def split_synonyms(text: str | None) -> list[str]:
    """The synonyms a `synonyms` column holds, in order."""
    return [s for s in (text or "").split(SEPARATOR) if s]


def preview(values: Sequence[str], limit: int = 5) -> str:
    """`'a', 'b', 'c', ... (+N more)` for messages."""
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... (+{len(values) - limit} more)" if len(values) > limit else "")
