"""Queries: `field__op=value` lookups compiled to SQLAlchemy from a whitelist, never string SQL.

A lookup is a path of relations (foreign keys, e.g. `run__transform`) ending in a column and
an optional operator: `Artifact.filter(run__transform__key="align", size__gt=1000)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from lakeline.errors import DoesNotExist, MultipleFound, QueryError
from lakeline.models import load_all
from lakeline.models.base import Base, VersionedMixin
from lakeline.query_conditions import INT64, OPERATORS, _condition, _record_id
from lakeline.query_plans import planned_rows, walk_terms
from lakeline.query_versions import version_condition
from lakeline.search import (
    RankedPool,
    apply_search,
    few_matches,
    like_fields,
    search_fields,
    sqlite_pool,
)
from lakeline.search_pg import pg_lead, pg_pool, pg_words

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance

M = TypeVar("M")

SEARCH_POOL = 1000  # newest matches a limited, ranked search ranks (see lakeline.search)


_RELATIONS: dict[type[Any], dict[str, type[Base]]] = {}
_COLUMNS: dict[type[Any], tuple[str, ...]] = {}


def relations(model: type[Any]) -> dict[str, type[Base]]:
    """Relations a lookup may follow from `model`: each `<name>_id` foreign key -> `<name>`."""
    cached = _RELATIONS.get(model)
    if cached is not None:
        return cached
    found: dict[str, type[Base]] = {}
    load_all()  # a module's registry may reference an annotation registry
    by_table = {m.class_.__table__.name: m.class_ for m in Base.registry.mappers}
    for column in model.__table__.columns:
        if column.name.endswith("_id") and column.foreign_keys:
            target = next(iter(column.foreign_keys)).column.table.name
            found[column.name[:-3]] = by_table[target]
    _RELATIONS[model] = found
    return found


def _field_names(model: type[Any]) -> tuple[str, ...]:
    names = _COLUMNS.get(model)
    if names is None:
        names = _COLUMNS[model] = tuple(c.name for c in model.__table__.columns)
    return names


class QuerySet(Generic[M]):
    """A lazy, chainable query over one registry of one instance; runs when iterated or asked
    for results. Records it returns carry that instance (`record.instance`)."""

    def __init__(self, model: type[M], instance: Instance) -> None:
        self.model = model
        self.instance = instance
        self._lookups: list[tuple[bool, dict[str, Any]]] = []
        self._expressions: list[ColumnElement[bool]] = []
        self._order: list[str] = []
        self._limit: int | None = None
        self._offset: int | None = None
        self._latest_only = issubclass(model, VersionedMixin)
        self._search: str | None = None
        self._exhaustive = False
        self._annotations: dict[str, Any] = {}  # feature name -> (id, dtype), for lookups

    def _clone(self) -> QuerySet[M]:
        clone: QuerySet[M] = QuerySet(self.model, self.instance)
        clone._lookups = list(self._lookups)
        clone._expressions = list(self._expressions)
        clone._order = list(self._order)
        clone._limit, clone._offset = self._limit, self._offset
        clone._latest_only, clone._search = self._latest_only, self._search
        clone._exhaustive, clone._annotations = self._exhaustive, self._annotations
        return clone

    # -- building -------------------------------------------------------------------------------

    def filter(self, *expressions: ColumnElement[bool], **lookups: Any) -> QuerySet[M]:
        """Narrow to records matching every lookup (and SQLAlchemy expression)."""
        clone = self._clone()
        if "is_latest" in lookups and lookups["is_latest"] is None:
            del lookups["is_latest"]
            clone._latest_only = False
        # a lookup that names a version (uid, stem, number or label) looks at every version
        if any(k.split("__")[0] in ("uid", "id", "stem", "is_latest", "version") for k in lookups):
            clone._latest_only = False
        clone._expressions.extend(expressions)
        if lookups:
            clone._lookups.append((True, lookups))
        clone._compile_lookups(lookups)  # validate now: bad fields fail where they are written
        return clone

    def exclude(self, **lookups: Any) -> QuerySet[M]:
        """Drop records matching all of the lookups."""
        clone = self._clone()
        clone._compile_lookups(lookups)
        clone._lookups.append((False, lookups))
        return clone

    def order_by(self, *fields: str) -> QuerySet[M]:
        """Order by fields; a leading '-' sorts descending."""
        names = _field_names(self.model)
        for field in fields:
            if field.lstrip("-") not in names:
                raise QueryError(
                    f"cannot order {self.model.__name__} by unknown field {field.lstrip('-')!r}; "
                    f"fields: {', '.join(names)}"
                )
        clone = self._clone()
        clone._order = list(fields)
        return clone

    def limit(self, n: int) -> QuerySet[M]:
        """At most `n` records."""
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= INT64[1]:
            raise QueryError(f"limit must be a non-negative integer up to {INT64[1]}, got {n!r}")
        clone = self._clone()
        clone._limit = n
        return clone

    def offset(self, n: int) -> QuerySet[M]:
        """Skip the first `n` records."""
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= INT64[1]:
            raise QueryError(f"offset must be a non-negative integer up to {INT64[1]}, got {n!r}")
        clone = self._clone()
        clone._offset = n
        return clone

    def search(self, text: str, *, limit: int | None = 20, exhaustive: bool = False) -> QuerySet[M]:
        """Full-text search over the registry's text fields (its `search_fields`), best
        matches first (bm25 on SQLite, ts_rank on PostgreSQL), the same for every registry.

        A limited search ranks the newest `SEARCH_POOL` (at least 10 x limit)
        matches, so a common word stays fast (PostgreSQL: among the newest 20 x pool
        records); older matches are ranked only when those give fewer than `limit`. To rank
        every match, or to page through results consistently, pass `exhaustive=True`.
        """
        if not isinstance(text, str) or not re.findall(r"\w+", text):
            raise QueryError(f"search needs some words to look for, got {text!r}")
        if not search_fields(self.model) and not like_fields(self.model):
            raise QueryError(
                f"{self.model.__name__} has no text fields to search: filter it with lookups "
                f"instead (fields: {', '.join(_field_names(self.model))})"
            )
        clone = self._clone()
        clone._search = text
        clone._limit = limit
        clone._exhaustive = exhaustive
        return clone

    # -- compiling ------------------------------------------------------------------------------

    def _compile_lookups(self, lookups: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """Return (conditions, joins) for `lookups`; raise QueryError on anything unknown."""
        conditions: list[Any] = []
        joins: dict[str, tuple[Any, Any]] = {}
        dialect = self._dialect()
        for lookup, value in lookups.items():
            parts = lookup.split("__")
            op = parts.pop() if len(parts) > 1 and parts[-1] in OPERATORS else "exact"
            model: type[Any] = self.model
            if parts[0] not in _field_names(model) and parts[0] not in relations(model):
                from lakeline.annotations.lookups import annotation_condition

                found = annotation_condition(self, lookup, parts, op, value, dialect)
                if found is not None:  # a feature, `ulabels__...` or `schemas__...`
                    conditions.append(found)
                    continue
            entity: Any = self.model
            path = ""
            for i, part in enumerate(parts[:-1]):
                rels = relations(model)
                if part not in rels and part in _field_names(model):
                    unknown = "__".join(parts[i + 1 :])
                    raise QueryError(
                        f"unknown operator {unknown!r} in lookup {lookup!r}; operators: "
                        f"{', '.join(sorted(OPERATORS))}"
                    )
                if part not in rels:
                    raise QueryError(
                        f"{model.__name__} has no relation {part!r} in lookup {lookup!r}; "
                        f"relations: {', '.join(sorted(rels)) or 'none'}"
                    )
                path = f"{path}__{part}" if path else part
                if path not in joins:
                    target: Any = aliased(rels[part], name=path)
                    joins[path] = (target, getattr(entity, f"{part}_id") == target.id)
                entity, model = joins[path][0], rels[part]
            name = parts[-1]
            if name in relations(model) and op in ("exact", "in", "isnull", "ne"):
                name = f"{name}_id"
                value = _record_id(value)
            if name not in _field_names(model):
                raise QueryError(
                    f"{model.__name__} has no field {name!r} in lookup {lookup!r}; "
                    f"fields: {', '.join(_field_names(model))}; "
                    f"relations: {', '.join(sorted(relations(model))) or 'none'}"
                )
            column = model.__table__.columns[name]
            if name == "version" and issubclass(model, VersionedMixin) and op in ("exact", "in"):
                conditions.append(version_condition(entity, lookup, op, value))
                continue
            conditions.append(_condition(getattr(entity, name), column, lookup, op, value, dialect))
        return conditions, list(joins.values())

    def _dialect(self) -> str:
        return self.instance.dialect

    @property
    def statement(self) -> Select[tuple[M]]:
        """The SQLAlchemy select this query runs."""
        return self._statement(select(self.model))

    def _pool(self) -> int | None:
        """How many newest matches a ranked search ranks (None: all of them)."""
        if self._search is None or self._exhaustive or self._order or self._limit is None:
            return None
        if not search_fields(self.model):  # matched with LIKE: nothing ranked
            return None
        return max(SEARCH_POOL, 10 * (self._limit + (self._offset or 0)))

    def _rows(self, session: Session, columns: Select[Any], run: Any) -> list[Any]:
        """`run(session, statement)` for `columns`: from the search pool first, then over every
        match when the pool gave fewer records than asked for."""
        size = self._pool()
        pool: int | RankedPool | None = size
        found = pg_words(session, self.model, self._search, self._dialect(), pooled=bool(size))
        lead = found.lead
        if size is None:
            planned = planned_rows(self, session, columns, run)
            if planned is not None:
                return planned
        elif self._dialect() == "sqlite":  # ranked first (whole words, else prefixes)
            pool = sqlite_pool(session, self.model, self._search or "", size)
        elif found.few and self._limit is not None:  # PostgreSQL, no common token: first matches
            shown = self._limit + (self._offset or 0)  # the window's matches suffice for these
            pool = pg_pool(session, self.model, self._search or "", size, shown, lead)
        rows = list(run(session, self._statement(columns, pool=pool, lead=lead)))
        exact = getattr(pool, "exact", False)  # the pool held every match: no second query
        if pool is not None and not exact and self._limit is not None and len(rows) < self._limit:
            if self._dialect() == "postgresql":
                few_matches(session)
            rows = list(run(session, self._statement(columns, lead=lead)))
        return rows

    def _statement(
        self,
        stmt: Select[Any],
        *,
        ordered: bool = True,
        pool: int | RankedPool | None = None,
        walk: bool = False,
        lead: str | None = None,
    ) -> Select[Any]:
        """The select of this query; `walk`: its terms written for a walk in id order
        (`lakeline.query_plans`)."""
        model: Any = self.model

        def where(stmt: Select[Any], *terms: Any) -> Select[Any]:
            return stmt.where(*(walk_terms(model, terms) if walk else terms))

        for include, lookups in self._lookups:
            conditions, joins = self._compile_lookups(lookups)
            if include:
                for target, onclause in joins:
                    stmt = stmt.join(target, onclause)
                stmt = where(stmt, *conditions)
            else:
                inner = select(model.id)
                for target, onclause in joins:
                    inner = inner.join(target, onclause)
                stmt = where(stmt, model.id.not_in(inner.where(*conditions)))
        if self._expressions:
            stmt = where(stmt, *self._expressions)
        if self._latest_only:
            stmt = where(stmt, model.is_latest.is_(True))
        if self._search is not None:
            search, dialect = self._search, self._dialect()
            stmt = apply_search(stmt, model, search, dialect, ordered=ordered, pool=pool, lead=lead)
        if ordered:
            for field in self._order:
                column = getattr(model, field.lstrip("-"))
                stmt = stmt.order_by(column.desc() if field.startswith("-") else column.asc())
            if self._search is None and not self._order:
                stmt = stmt.order_by(model.id) if hasattr(model, "id") else stmt
        if self._limit is not None:
            stmt = stmt.limit(self._limit)
        if self._offset is not None:
            stmt = stmt.offset(self._offset)
        return stmt

    # -- running --------------------------------------------------------------------------------

    def _session(self) -> Any:
        return self.instance.sessions.read()

    def all(self) -> list[M]:
        """Every matching record."""
        session: Session
        with self._session() as session:
            return self._rows(session, select(self.model), lambda s, q: s.scalars(q))

    def __iter__(self) -> Iterator[M]:
        return iter(self.all())

    def first(self) -> M | None:
        """The first matching record, or None."""
        found = self.limit(1).all()
        return found[0] if found else None

    def get(self, uid: str | None = None, /, **lookups: Any) -> M:
        """The one record with this uid (12 characters: the latest version of that stem) or
        matching `lookups`; DoesNotExist or MultipleFound otherwise."""
        if uid is not None:
            lookups["uid"] = uid
        uid = lookups.get("uid")
        if isinstance(uid, str) and issubclass(self.model, VersionedMixin) and len(uid) == 12:
            lookups = {**{k: v for k, v in lookups.items() if k != "uid"}, "stem": uid}
            lookups["is_latest"] = True
        found = self.filter(**lookups).limit(2).all()
        described = ", ".join(f"{k}={v!r}" for k, v in lookups.items())
        if not found:
            raise DoesNotExist(f"no {self.model.__name__} with {described}")
        if len(found) > 1:
            raise MultipleFound(
                f"several {self.model.__name__} records match {described}; narrow the lookup"
            )
        return found[0]

    def one_or_none(self) -> M | None:
        """The one matching record, None if there is none; MultipleFound if several."""
        found = self.limit(2).all()
        if len(found) > 1:
            raise MultipleFound(f"several {self.model.__name__} records match")
        return found[0] if found else None

    def count(self) -> int:
        """How many records match (ignoring limit and offset)."""
        inner = self._clone()
        inner._limit = inner._offset = None
        with self._session() as session:
            if inner._search is not None:  # PostgreSQL: the index scanned for the lead word
                lead = pg_lead(session, self.model, inner._search, self._dialect())
                ids = select(self.model.id)  # type: ignore[attr-defined]
                stmt = inner._statement(ids, ordered=False, lead=lead).subquery()
                query: Select[Any] = select(func.count()).select_from(stmt)
            else:
                query = inner._statement(
                    select(func.count()).select_from(self.model), ordered=False
                )
            return int(session.execute(query).scalar_one())

    def exists(self) -> bool:
        """Whether any record matches."""
        return self.first() is not None

    def __len__(self) -> int:
        return self.count()

    def open(self) -> Any:
        """Matched parquet/csv artifacts as one lazy pyarrow dataset (`lakeline.tables`)."""
        from lakeline.tables import open_tables

        if self.model.__name__ != "Artifact":
            raise QueryError(f"open() reads artifacts, not {self.model.__name__} records")
        return open_tables(self.all(), self.instance)  # type: ignore[arg-type]

    def to_dataframe(
        self, columns: Sequence[str] | None = None, *, features: bool = False
    ) -> pd.DataFrame:
        """The matching records as a pandas DataFrame indexed by `uid` (artifacts with
        `features=True`: one more column per feature they have values or labels of).

        Versioned records: `version` is the version number (1 = the first, as the CLI shows
        it) and `version_label` the label given at save, if any.
        """
        import pandas as pd

        from lakeline.ids import suffix_index

        fields = list(_field_names(self.model))
        versioned = issubclass(self.model, VersionedMixin)
        if versioned:
            fields.insert(fields.index("version") + 1, "version_label")
        names = list(columns) if columns else fields
        unknown = [c for c in names if c not in fields]
        if unknown:
            raise QueryError(f"{self.model.__name__} has no fields {unknown}")
        if "uid" not in names:
            names.insert(0, "uid")
        table: Any = self.model

        def column(name: str) -> Any:
            if versioned and name == "version":
                return table.uid.label("version")  # the number, from the uid's suffix
            return table.version if name == "version_label" else getattr(table, name)

        chosen = select(*(column(c) for c in names))
        with self._session() as session:
            rows = self._rows(session, chosen, lambda s, q: s.execute(q).all())
        frame = pd.DataFrame.from_records(rows, columns=names)
        if versioned and "version" in names:
            frame["version"] = [suffix_index(uid[-4:]) + 1 for uid in frame["version"]]
        if features:
            from lakeline.annotations.lookups import with_features

            return with_features(self, frame.set_index("uid"))
        return frame.set_index("uid")

    def __repr__(self) -> str:
        return f"<QuerySet {self.model.__name__} of {self.instance.name} {self._lookups or ''}>"


def get_by_id(model: type[M], record_id: int, instance: Instance) -> M:
    """The record of `model` with primary key `record_id` in `instance`."""
    with instance.sessions.read() as session:
        record = session.get(model, record_id)
    if record is None:
        raise DoesNotExist(f"no {model.__name__} with id {record_id}")
    return record
