"""Lookups compiled to SQL conditions (`field__op=value`, `lakeline.query`): each value checked
against its column's type, never string SQL."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, TypeDecorator, and_, false, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from lakeline.errors import QueryError
from lakeline.models.base import Base, JSONValue, is_null

OPERATORS = frozenset(
    {
        "exact", "iexact", "ne", "in", "not_in", "contains", "icontains", "startswith",
        "istartswith", "endswith", "iendswith", "gt", "gte", "lt", "lte", "isnull", "range",
    }
)  # fmt: skip
_STRING_OPERATORS = frozenset(
    {"iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"}
)
_MAX_IN = 100_000
LONG_IN = 1000  # longer in-lists go as one array (PostgreSQL) or JSON (SQLite) parameter
INT64 = (-(2**63), 2**63 - 1)


def _coerce(column: Any, field: str, value: Any) -> Any:
    """Check (and where unambiguous convert) a lookup value against the column's type."""
    if value is None:
        return None
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        return value
    if python_type is bool:
        if isinstance(value, bool):
            return value
    elif python_type is int:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            number = int(value)
        if number is not None:
            if not INT64[0] <= number <= INT64[1]:
                raise QueryError(
                    f"{field}: {value!r} is out of range; the database holds integers from "
                    f"{INT64[0]} to {INT64[1]}"
                )
            return number
    elif python_type is datetime:
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day).astimezone()
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return parsed if parsed.tzinfo else parsed.astimezone()
    elif python_type is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise QueryError(
        f"{field} expects a value of type {python_type.__name__}, got {type(value).__name__} "
        f"{value!r}"
    )


def _prefix_range(column: Any, prefix: str) -> ColumnElement[bool] | None:
    """`column` starts with `prefix`, as an index-friendly range.

    Exact for columns compared in code-point order: SQLite's BINARY collation, and the "C"
    collation lakeline gives key columns on PostgreSQL.
    """
    if not prefix:
        return None
    last = ord(prefix[-1])
    if last >= 0x10FFFF or 0xD7FF <= last <= 0xDFFF:
        return None
    upper = prefix[:-1] + chr(last + 1)
    return and_(column >= prefix, column < upper)


def _long_in(column: Any, spec: Any, values: list[Any], include: bool, dialect: str) -> Any:
    """`column [NOT] IN values` for a long list, with the values as one parameter: a
    statement takes at most 65,535 parameters on PostgreSQL (32,766 on SQLite)."""
    if dialect == "postgresql":
        from sqlalchemy import all_, any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        array = bindparam(None, values, type_=ARRAY(spec.type))
        return column == any_(array) if include else column != all_(array)
    import json

    from sqlalchemy import literal_column

    if any(isinstance(v, datetime) for v in values):  # as the column stores them (UTC text)
        raise QueryError(f"{spec.name}: more than {LONG_IN} timestamps in one lookup")
    structured = isinstance(getattr(spec.type, "impl_instance", spec.type), JSON)
    if structured:
        values = [json.dumps(v) for v in values]  # the texts stored (json_each: their values)
    listed: Any = select(literal_column("value")).select_from(
        func.json_each(json.dumps(values, default=str))
    )
    found = column.in_(listed) if include else column.not_in(listed)
    if not structured:
        return found
    from lakeline.db.json_equality import canonical_json

    canonical = sorted({canonical_json(text) or text for text in values})
    lengths = sorted({len(text) for text in values})
    reordered = and_(
        func.length(column).in_(select(literal_column("value")).select_from(
            func.json_each(json.dumps(lengths)))),
        func.lakeline_json(column).in_(select(literal_column("value")).select_from(
            func.json_each(json.dumps(canonical)))),
    )  # fmt: skip
    return or_(found, reordered) if include else and_(found, ~reordered)


def _reordered(found: Any, column: Any, values: list[Any], include: bool, dialect: str) -> Any:
    """SQLite, a JSON column: `found` (a comparison of the stored texts) widened to an object
    whose keys the row holds in another order (`include`), or narrowed by it (a negation)."""
    if dialect != "sqlite" or not isinstance(column.type, JSONValue):
        return found
    from lakeline.db.json_equality import same_json

    reordered = same_json(column, values)
    if reordered is None:
        return found
    return or_(found, reordered) if include else and_(found, ~reordered)


def _record_id(value: Any) -> Any:
    if isinstance(value, Base):
        return value.id  # type: ignore[attr-defined]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_record_id(v) for v in value]
    return value


def _condition(column: Any, spec: Any, lookup: str, op: str, value: Any, dialect: str) -> Any:
    """One lookup as a SQL condition; string matches are case-sensitive on both databases."""
    if op == "isnull":
        if not isinstance(value, bool):
            raise QueryError(f"{lookup} expects True or False, got {value!r}")
        return is_null(column, dialect) if value else ~is_null(column, dialect)
    if op in ("in", "not_in"):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise QueryError(f"{lookup} expects a list, tuple or set, got {value!r}")
        if len(value) > _MAX_IN:
            raise QueryError(f"{lookup} got {len(value)} values; the limit is {_MAX_IN}")
        values = [_coerce(spec, lookup, v) for v in value]
        if not values:
            return false() if op == "in" else ~false()
        if len(values) > LONG_IN:
            return _long_in(column, spec, values, op == "in", dialect)
        found = column.in_(values) if op == "in" else column.not_in(values)
        return _reordered(found, column, values, op == "in", dialect)
    if op == "range":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise QueryError(f"{lookup} expects a (low, high) pair, got {value!r}")
        low, high = (_coerce(spec, lookup, v) for v in value)
        return column.between(low, high)
    if op in _STRING_OPERATORS and not isinstance(value, str):
        raise QueryError(f"{lookup} expects a string, got {type(value).__name__} {value!r}")
    value = _coerce(spec, lookup, value)
    if op == "exact":
        if value is None:
            return is_null(column, dialect)
        return _reordered(column == value, column, [value], True, dialect)
    if op == "ne":
        if value is None:
            return ~is_null(column, dialect)
        return or_(_reordered(column != value, column, [value], False, dialect), column.is_(None))
    if op == "gt":
        return column > value
    if op == "gte":
        return column >= value
    if op == "lt":
        return column < value
    if op == "lte":
        return column <= value
    if op == "startswith":
        by_range = _prefix_range(column, value)
        return by_range if by_range is not None else column.startswith(value, autoescape=True)
    if op == "istartswith":
        return column.istartswith(value, autoescape=True)
    if op == "endswith":
        if dialect == "sqlite":  # LIKE ignores case on SQLite
            return func.substr(column, -len(value)) == value if value else column.is_not(None)
        return column.endswith(value, autoescape=True)
    if op == "iendswith":
        return column.iendswith(value, autoescape=True)
    if op == "contains":
        if dialect == "sqlite":  # LIKE ignores case on SQLite
            return func.instr(column, value) > 0
        return column.contains(value, autoescape=True)
    if op == "icontains":
        return column.icontains(value, autoescape=True)
    if op == "iexact":
        return func.lower(column) == value.lower()
    raise QueryError(f"unknown operator {op!r} in {lookup!r}")  # pragma: no cover
