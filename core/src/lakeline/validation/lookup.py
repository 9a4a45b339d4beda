"""Values in, registry rows out: the batched lookups `validate`, `inspect`, `standardize` and
`from_values` share. Every function issues one query (a list of values travels as ONE
parameter: an array on PostgreSQL, JSON on SQLite), never one per value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeline.errors import InvalidValue, MissingDependency, QueryError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy import Column, ColumnElement
    from sqlalchemy.engine import Connection

SEPARATOR = "|"  # between the synonyms of one record in its `synonyms` column
SHORT_IN = 500  # up to this many values go as an ordinary IN list


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
    """Names of the model's string columns."""
    found = []
    for column in model.__table__.columns:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            continue
        if python_type is str:
            found.append(column.name)
    return found


def optional_column(model: type[Any], name: str) -> Column[Any] | None:
    """The model's `synonyms` or `abbr` column, or None when it has none."""
    columns = model.__table__.columns
    return columns.get(name)  # type: ignore[no-any-return]


@dataclass
class Factorized:
    """Values as codes into their distinct values (first-occurrence order); -1 for a null."""

    codes: npt.NDArray[np.intp]
    uniques: list[str]
    sendable: list[str] = field(default_factory=list)  # uniques a database can compare

    def expand(self, per_unique: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """One result per value from one per distinct value (nulls give False)."""
        import numpy as np

        return np.append(per_unique, False)[self.codes]


def factorize(model: type[Any], column: Column[Any], values: Any) -> Factorized:
    """Distinct values (hash-based, no sort) and codes; a non-string value is an error."""
    import numpy as np
    import pandas as pd

    if isinstance(values, str):
        values = [values]
    elif not isinstance(values, (pd.Series, pd.Index, pd.Categorical, np.ndarray, list)):
        if not isinstance(values, Iterable):
            raise InvalidValue(
                f"{model.__name__}.{column.name}: expected a list of values, "
                f"got {type(values).__name__}"
            )
        values = list(values)
    if isinstance(values, list):
        values = np.asarray(values, dtype=object) if values else np.empty(0, dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct: list[Any] = np.asarray(uniques, dtype=object).tolist()
    for value in distinct:
        if not isinstance(value, str):
            raise InvalidValue(
                f"{model.__name__}.{column.name} holds text, but {value!r} is a "
                f"{type(value).__name__}: convert the values to strings first"
            )
    sendable = [v for v in distinct if "\x00" not in v]  # PostgreSQL text cannot hold NUL
    return Factorized(np.asarray(codes, dtype=np.intp), distinct, sendable)


def engine() -> Any:
    """The connected instance's engine."""
    from lakeline.instance import current

    return current().engine


def one_param_in(column: Any, values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """`column IN values` with the values as a single parameter when the list is long (a
    statement takes at most 65,535 parameters on PostgreSQL, 32,766 on SQLite)."""
    from sqlalchemy import String, any_, bindparam, func, literal_column, select

    if len(values) <= SHORT_IN:
        return column.in_(list(values))  # type: ignore[no-any-return]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        # ARRAY(String) without a length: a cast to varchar(n) would silently truncate
        array = bindparam(None, list(values), type_=ARRAY(String()))
        return column == any_(array)  # type: ignore[no-any-return]
    import json

    listed: Any = select(literal_column("value")).select_from(func.json_each(json.dumps(values)))
    return column.in_(listed)  # type: ignore[no-any-return]


def names_in(conn: Connection, column: Column[Any], values: Sequence[str]) -> set[str]:
    """The values that are the field of some record (exact, case-sensitive)."""
    from sqlalchemy import select

    if not values:
        return set()
    stmt = select(column).where(one_param_in(column, values, conn.dialect.name))
    return set(conn.execute(stmt).scalars())


@dataclass
class Snapshot:
    """A registry's names and synonyms, read once per call: name -> record order, synonym
    (and abbreviation) -> names, and the same keyed case-insensitively."""

    names: list[str]
    synonyms: dict[str, list[str]]
    folded_names: dict[str, list[str]] = field(default_factory=dict)
    folded_synonyms: dict[str, list[str]] = field(default_factory=dict)

    def lookup(self, value: str, *, case_sensitive: bool) -> list[str]:
        """Names `value` stands for through a synonym (or, when case-insensitive, a name or
        synonym that differs in case only), oldest record first; [] if none."""
        hits = self.synonyms.get(value)
        if hits or case_sensitive:
            return hits or []
        if not self.folded_names:
            self._fold()
        folded = value.casefold()
        return self.folded_names.get(folded) or self.folded_synonyms.get(folded) or []

    def _fold(self) -> None:
        for name in self.names:
            self.folded_names.setdefault(name.casefold(), []).append(name)
        for synonym, names in self.synonyms.items():
            self.folded_synonyms.setdefault(synonym.casefold(), []).extend(names)


def snapshot(
    conn: Connection, model: type[Any], column: Column[Any], *, all_names: bool
) -> Snapshot:
    """Read the registry's synonyms (and, with `all_names`, every name) in one query."""
    from sqlalchemy import or_, select

    synonyms_column = optional_column(model, "synonyms")
    abbr_column = optional_column(model, "abbr")
    extra = [c for c in (synonyms_column, abbr_column) if c is not None]
    if not extra and not all_names:
        return Snapshot([], {})
    stmt = select(column, *extra).order_by(model.__table__.primary_key.columns.values()[0])
    if not all_names:
        stmt = stmt.where(or_(*(c.is_not(None) for c in extra)))
    names: list[str] = []
    mapped: dict[str, list[str]] = {}
    for row in conn.execute(stmt):
        name = row[0]
        if name is None:
            continue
        names.append(name)
        for text in row[1:]:
            if not text:
                continue
            for synonym in text.split(SEPARATOR):
                if synonym and synonym != name:
                    listed: list[str] = mapped.setdefault(synonym, [])
                    if not listed or listed[-1] != name:
                        listed.append(name)
    return Snapshot(names if all_names else [], mapped)


def split_synonyms(text: str | None) -> list[str]:
    """The synonyms a `synonyms` column holds, in order."""
    return [s for s in (text or "").split(SEPARATOR) if s]


def preview(values: Sequence[str], limit: int = 5) -> str:
    """`'a', 'b', 'c', ... (+N more)` for messages."""
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... (+{len(values) - limit} more)" if len(values) > limit else "")
