"""`CanValidate`: validate, inspect, standardize and from_values for any registry with a
name-like field, plus synonyms and abbreviations on its records.

A mapped class gets them by inheriting the mixin and declaring its fields:

    class Gene(Base, CanValidate):
        __tablename__ = "genes"
        _name_field = "symbol"                 # default "name"
        id: Mapped[int] = mapped_column(primary_key=True)
        symbol: Mapped[str] = mapped_column(String(64), index=True)
        synonyms: Mapped[str | None] = mapped_column(Text)    # optional: "|"-separated
        abbr: Mapped[str | None] = mapped_column(String(32))  # optional

Every method reads the connected instance's database with one query per call (or two: the
exact names, then the synonyms), whatever the number of values; values are reduced to their
distinct values first (pandas hashing), so 1M values cost what their distinct values cost.
Matching is case-sensitive unless said otherwise, and the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from lakeline.instance import Instance
    from lakeline.validation.inspecting import InspectResult

Keep = Literal["first", "last", False]


class CanValidate:
    """Validation and synonyms for a registry whose records have a name-like text field."""

    _name_field: ClassVar[str] = "name"

    @classmethod
    def validate(
        cls, values: Any, field: str | None = None, *, mute: bool = False
    ) -> npt.NDArray[np.bool_]:
        """One bool per value: is it the `field` (default: the name) of a record? Nulls are
        False. Unless `mute`, logs one line naming the values that are not."""
        from lakeline.validation.lookup import (
            distinct,
            name_field,
            names_in,
            require_extras,
        )

        require_extras()
        column = name_field(cls, field)
        values_ = distinct(cls, column, values, ordered=False)
        with _instance().engine.connect() as conn:
            found = names_in(conn, column, values_.sendable)
        result = values_.member(found)
        if not mute and not result.all():
            import logging

            from lakeline.validation.inspecting import summary_line

            missing = sorted(v for v in values_.uniques if v not in found)
            logging.getLogger("lakeline.validation").warning(
                summary_line(_label(cls, column), len(result), missing, int((~result).sum()))
            )
        return result

    @classmethod
    def inspect(cls, values: Any, field: str | None = None, *, mute: bool = False) -> InspectResult:
        """Validated values, the non-validated ones, which of those are synonyms (or case
        variants) of which names, and close matches for the rest; printed unless `mute`."""
        from lakeline.validation.inspecting import InspectResult
        from lakeline.validation.lookup import (
            distinct,
            name_field,
            names_in,
            require_extras,
            small_registry,
            snapshot,
        )

        require_extras()
        column = name_field(cls, field)
        values_ = distinct(cls, column, values)
        registry = None
        with _instance().engine.connect() as conn:
            if small_registry(conn, cls, len(values_.sendable)):  # every name is read anyway
                registry = snapshot(conn, cls, column, all_names=True)
                found = set(registry.names).intersection(values_.sendable)
            else:
                found = names_in(conn, column, values_.sendable)
            missing = [v for v in values_.uniques if v not in found]
            if missing and registry is None:
                registry = snapshot(conn, cls, column, all_names=True)
        mapper: dict[str, str] = {}
        case_only: set[str] = set()
        if registry is not None:
            hits, case_only = registry.resolve(missing, case_sensitive=False)
            mapper = {v: hits[v][0] for v in missing if v in hits}
        result = InspectResult(
            _label(cls, column),
            values_.size,
            [v for v in values_.uniques if v in found],
            missing,
            mapper,
            case_only,
            registry,
        )
        if not mute:
            result.print()
        return result

    @classmethod
    def standardize(
        cls,
        values: Any,
        field: str | None = None,
        *,
        case_sensitive: bool = True,
        return_mapper: bool = False,
        keep: Keep = "first",
    ) -> list[Any] | dict[str, Any]:
        """The values with synonyms (and abbreviations; with `case_sensitive=False` also
        names and synonyms differing in case only) replaced by the name they stand for.
        Names stay, unmapped values and nulls are kept as they are. When a synonym belongs to
        several records, `keep` picks the oldest ("first"), the newest ("last"), or all
        (False: a list of names). `return_mapper=True` returns {value: name} for the values
        that change instead of the list."""
        from lakeline.validation.lookup import (
            distinct,
            name_field,
            names_in,
            require_extras,
            snapshot,
        )

        require_extras()
        if keep not in ("first", "last", False):
            from lakeline.errors import InvalidValue

            raise InvalidValue(f"keep must be 'first', 'last' or False, not {keep!r}")
        column = name_field(cls, field)
        values_ = distinct(cls, column, values)
        with _instance().engine.connect() as conn:
            found = names_in(conn, column, values_.sendable)
            missing = [v for v in values_.uniques if v not in found]
            registry = (
                snapshot(conn, cls, column, all_names=not case_sensitive) if missing else None
            )
        mapper: dict[str, Any] = {}
        if registry is not None:
            hits, _ = registry.resolve(missing, case_sensitive=case_sensitive)
            mapper = {v: _pick(hits[v], keep) for v in missing if v in hits}
        if return_mapper:
            return mapper
        return values_.replace(mapper)

    @classmethod
    def from_values(cls, values: Any, field: str | None = None) -> list[Self]:
        """The saved records the values name, through the field or a synonym (exact case);
        one per record, in the order of the values that first name them. Creates nothing."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from lakeline.validation.lookup import (
            distinct,
            name_field,
            one_param_in,
            require_extras,
            snapshot,
        )

        require_extras()
        column = name_field(cls, field)
        values_ = distinct(cls, column, values)
        with _instance().engine.connect() as conn, Session(bind=conn) as session:
            dialect = conn.dialect.name
            records = list(
                session.scalars(select(cls).where(one_param_in(column, values_.sendable, dialect)))
            )
            by_value: dict[str, Self] = {getattr(r, column.key): r for r in records}
            missing = [v for v in values_.uniques if v not in by_value]
            registry = snapshot(conn, cls, column, all_names=False) if missing else None
            via: dict[str, str] = {}
            if registry is not None:
                hits, _ = registry.resolve(missing, case_sensitive=True)
                via = {v: names[0] for v, names in hits.items()}
            wanted = sorted(set(via.values()) - set(by_value))
            if wanted:
                more = session.scalars(select(cls).where(one_param_in(column, wanted, dialect)))
                by_value.update({getattr(r, column.key): r for r in more})
            session.expunge_all()
        ordered: dict[int, Self] = {}
        for value in values_.uniques:
            record = by_value.get(via.get(value, value))
            if record is not None:
                ordered.setdefault(id(record), record)
        return list(ordered.values())

    def add_synonym(self, synonym: str | Iterable[str], save: bool = True) -> None:
        """Add synonyms; one that is another record's name or synonym is refused
        (SynonymError naming that record). `save` writes it (saves a new record)."""
        from lakeline.validation.synonyms import add_synonym

        add_synonym(self, synonym, _owner(self), save=save)

    def remove_synonym(self, synonym: str | Iterable[str], save: bool = True) -> None:
        """Remove synonyms of this record (naming one it lacks is a SynonymError)."""
        from lakeline.validation.synonyms import remove_synonym

        remove_synonym(self, synonym, _owner(self), save=save)

    def set_abbr(self, value: str, save: bool = True) -> None:
        """Set the abbreviation; it also becomes a synonym (checked like one)."""
        from lakeline.validation.synonyms import set_abbr

        set_abbr(self, value, _owner(self), save=save)


def _instance() -> Instance:
    """The instance the registry methods read: the current one (they are entry points)."""
    from lakeline.instance import current

    return current()


def _owner(record: Any) -> Instance:
    """The instance `record` came from (a new record: the current one)."""
    from lakeline.db.session import instance_of

    return instance_of(record) or _instance()


def _pick(hits: list[str], keep: Keep) -> Any:
    if len(hits) == 1 or keep == "first":
        return hits[0]
    return hits[-1] if keep == "last" else list(hits)


def _label(model: type[Any], column: Any) -> str:
    return f"{model.__name__}.{column.key}"
