"""Declarative base, shared column types and the mixins every record uses."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from operator import is_not
from typing import TYPE_CHECKING, Any, ClassVar, Self

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, MetaData, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from lakeline.db.partial import AUTOINCREMENT_INFO, autoincrement_table
from lakeline.ids import new_uid

if TYPE_CHECKING:
    from lakeline.access.audit import Entry
    from lakeline.instance import Instance
    from lakeline.query import QuerySet

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite: a record table's id is never given twice (a deleted row's id would go to the next
# insert, and a process holding it would write onto that record); migration 0027 did it to
# the tables a catalog has. PostgreSQL's sequences never give an id twice anyway.
# Declared as the table's info, its SQLite option set only once a SQLite engine is made
# (`db.partial`: `sqlite_autoincrement=True` here loaded SQLite's dialect in every process).
AUTOINCREMENT = {"info": {AUTOINCREMENT_INFO: True}}


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def isoformat(at: datetime) -> str:
    """`at.isoformat()`; a datetime in UTC (`utcnow`'s) made of its minute's text
    (`_iso_minutes`) and its seconds, without the call's offset look-up: a status log's
    entry, a run's times in the flush (`bench/time_text_instr.py`, a call net of its loop: the
    method ~11.5k instructions, all seven numbers in one % ~12.4k, this ~7.5k)."""
    if at.__class__ is not datetime or at.tzinfo is not UTC:
        return at.isoformat()
    minute = (at.year, at.month, at.day, at.hour, at.minute)
    head = _iso_minutes.get(minute)
    if head is None:
        if len(_iso_minutes) >= MINUTES:
            _iso_minutes.clear()
        head = _iso_minutes[minute] = "%04d-%02d-%02dT%02d:%02d:" % minute  # noqa: UP031
    if at.microsecond:
        return "%s%02d.%06d+00:00" % (head, at.second, at.microsecond)  # noqa: UP031
    return "%s%02d+00:00" % (head, at.second)  # noqa: UP031


# the text of a minute ("YYYY-MM-DDTHH:MM:") by (year, month, day, hour, minute), `isoformat`'s:
# a run's status log entries fall in a few minutes; cleared when it holds MINUTES
_iso_minutes: dict[tuple[int, int, int, int, int], str] = {}


def check_aware(value: datetime) -> datetime:
    """`value` if it is timezone-aware, else InvalidValue (which time zone is unknown)."""
    if value.tzinfo is None or value.utcoffset() is None:
        from lakeline.errors import InvalidValue

        raise InvalidValue(
            f"naive datetime {value!r}: pass a timezone-aware datetime "
            "(e.g. datetime.now(UTC), or .replace(tzinfo=...) with the zone it is in)"
        )
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = check_aware(value).astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def many_processor(self, dialect: Dialect) -> Any:
        """SQLite: a whole column of values as the bind processor binds them, ~2.5 us a value
        less: the time in UTC, `isoformat` cut before its offset, is the text SQLite's DATETIME
        processor writes (`YYYY-MM-DD HH:MM:SS.ffffff`). None elsewhere."""
        if dialect.name != "sqlite":
            return None

        def process(values: list[Any]) -> list[Any]:
            made: list[Any] = []
            for value in values:
                if value is None:
                    made.append(None)
                elif value.__class__ is datetime and value.tzinfo is UTC:  # most: utcnow()'s
                    made.append(_sqlite_time(value))
                else:
                    made.append(
                        check_aware(value).astimezone(UTC).isoformat(" ", "microseconds")[:26]
                    )
            return made

        return process


# the text of a minute ("YYYY-MM-DD HH:MM:"), by (year, month, day, hour, minute): a batch's
# times fall in a few minutes; cleared when it holds MINUTES
_minutes: dict[tuple[int, int, int, int, int], str] = {}
MINUTES = 4096


def _sqlite_time(at: datetime) -> str:
    """`at` (a datetime in UTC) as `isoformat(" ", "microseconds")` without its offset:
    its minute's text (`_minutes`) and two numbers formatted (isoformat's call ~16k
    instructions, all seven numbers formatted ~11k, this ~7k)."""
    minute = (at.year, at.month, at.day, at.hour, at.minute)
    head = _minutes.get(minute)
    if head is None:
        if len(_minutes) >= MINUTES:
            _minutes.clear()
        head = _minutes[minute] = "%04d-%02d-%02d %02d:%02d:" % minute  # noqa: UP031 (faster than format specs)
    return "%s%02d.%06d" % (head, at.second, at.microsecond)  # noqa: UP031


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _encoder(allow_nan: bool) -> Any:
    """`json.dumps`'s C encoder (its default options; `allow_nan` as given) built once: a
    call of `json.dumps` builds one each time (~12k instructions of a small value's ~26k).
    No circular-reference marks (a cycle: RecursionError, which `check_json` raises for it
    too). None where the C encoder is missing."""
    from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]

    if c_make_encoder is None:  # pragma: no cover (CPython has it)
        return None
    return c_make_encoder(
        None, _refuse, encode_basestring_ascii, None, ": ", ", ", False, False, allow_nan
    )


_DUMP = _encoder(True)
_DUMP_STRICT = _encoder(False)


def dump_json(value: Any) -> str:
    """`json.dumps(value)` (a dict or a list), the same text through fewer Python calls."""
    if _DUMP is None:  # pragma: no cover
        return json.dumps(value)
    return "".join(_DUMP(value, 0))


def clean_json_text(value: Any) -> str | None:
    """`json.dumps(value, allow_nan=False)` of a dict where it is JSON as it is and holds no
    string `check_json` refuses, else None (not known clean; its error left to the caller's
    own path): ASCII text (`ensure_ascii`) with no `\\u0000` and no `\\ud...` escape (a
    surrogate: a lone one, or half of a pair, which the walk tells apart) holds neither a NUL
    byte nor a lone surrogate."""
    try:
        text = (
            "".join(_DUMP_STRICT(value, 0)) if _DUMP_STRICT else json.dumps(value, allow_nan=False)
        )
    except Exception:  # not JSON as it is, too deep, a cycle: the caller's own path says
        return None
    if "\\u0000" in text or "\\ud" in text or "\\uD" in text:
        return None
    return text


class JSONText:
    """A JSON column's `value` with its text (`clean_json_text`: checked), made once where
    the value was given: `JSONValue` binds the text as it is on SQLite and the value (read
    back from the text: as it was then) elsewhere."""

    __slots__ = ("text", "value")

    def __init__(self, value: Any, text: str) -> None:
        self.value, self.text = value, text


class JSONValue(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) holding the same values on both databases: a string with a
    NUL byte anywhere inside is refused (InvalidValue); PostgreSQL's JSONB cannot hold one.
    None is SQL NULL on every path (SQLAlchemy's default wrote the JSON value `null` through
    its INSERTs, while COPY, multi-row VALUES and the ORM wrote SQL NULL); see `is_null`."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value.__class__ is JSONText:  # checked: the value as it was when checked
            return json.loads(value.text)
        if value is not None:
            check_json(value)
        return value

    def bind_processor(self, dialect: Dialect) -> Any:
        """Where the column is bound as JSON text (SQLite), the text is checked instead of
        the value, walked only when the text may hold what `check_json` refuses: ASCII text
        with no `\\u0000` and no `\\ud...` escape (a surrogate: a lone one, or half of a
        pair, which the walk tells apart) holds neither a NUL byte nor a lone surrogate. One
        scan of the text a run's params and status log, not a call per node of each (~15 us
        a Snakemake job's params). Elsewhere (PostgreSQL's JSONB, bound as an object) each
        value is walked first, as `process_bind_param` says."""
        serialize = self.impl_instance.bind_processor(dialect)
        if serialize is None or dialect.name == "postgresql":
            return super().bind_processor(dialect)
        # a dict or list is the serializer's text, as `serialize` returns it where the dialect
        # binds text as it is (SQLite), through fewer Python calls (json.dumps's own encoder,
        # built once); JSON's NULL sentinels and other values go through `serialize`; a
        # JSONText is its text where that is what `serialize` would give
        custom = getattr(dialect, "_json_serializer", None)
        dumps = custom or dump_json
        text_type = self.impl_instance._str_impl  # type: ignore[attr-defined]
        direct = (dict, list) if text_type.bind_processor(dialect) is None else ()
        given = bool(direct) and custom is None

        def process(value: Any) -> Any:
            if value is None:
                return serialize(value)
            if value.__class__ is JSONText:
                if given:
                    return value.text
                value = json.loads(value.text)
            try:
                text = dumps(value) if value.__class__ in direct else serialize(value)
            except Exception:
                check_json(value)  # a NUL byte is named first, as before
                raise
            if not (text.__class__ is str and text.isascii()) or (
                "\\u0000" in text or "\\ud" in text or "\\uD" in text
            ):
                check_json(value)
            return text

        return process


_PLAIN = (int, float, bool, type(None))  # JSON leaves with no text to check


def _surrogate(value: str) -> bool:
    from lakeline.values import has_surrogate

    return has_surrogate(value)


def check_json(value: Any) -> None:
    """Refuse (InvalidValue) a JSON value `JSONValue` would refuse: a string with a NUL byte
    or a lone surrogate (PostgreSQL's JSON refuses it), as a value or a key, anywhere inside.
    A container's ASCII strings without a NUL byte and its numbers are passed over in its own
    loop (a call each cost ~0.4 us: a Snakemake job's params have ~30)."""
    if isinstance(value, str):
        if "\x00" in value or (not value.isascii() and _surrogate(value)):
            from lakeline.values import check_text

            check_text(value, None)  # raises InvalidValue
    elif isinstance(value, dict):
        for key, item in value.items():
            if not (key.__class__ is str and key.isascii() and "\x00" not in key):
                check_json(key)
            if item.__class__ is str:
                if item.isascii() and "\x00" not in item:
                    continue
            elif item.__class__ in _PLAIN:
                continue
            check_json(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if item.__class__ is str:
                if item.isascii() and "\x00" not in item:
                    continue
            elif item.__class__ in _PLAIN:
                continue
            check_json(item)


JSONType = JSONValue()


def is_null(column: Any, dialect: str) -> Any:
    """`column IS NULL`; for a JSON column, also the JSON value `null` that catalogs written
    before None became SQL NULL hold (the ORM reads both as None, so a filter finds both)."""
    if not isinstance(column.type, JSONValue):
        return column.is_(None)
    from sqlalchemy import literal_column, or_

    # an equality, which an index of the column serves (jsonb_typeof() = 'null' is none)
    null: Any = literal_column("'null'::jsonb" if dialect == "postgresql" else "'null'")
    return or_(column.is_(None), column == null)


class Str(TypeDecorator[str]):
    """A VARCHAR(length) that holds the same values on both databases: a NUL byte, a lone
    surrogate (no UTF-8) or a value longer than `length` is refused (InvalidValue) before the
    database sees it."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return value  # checked by the processor `bind_processor` returns

    def bind_processor(self, dialect: Dialect) -> Any:
        # a closure instead of process_bind_param: one call per value (bulk saves bind many)
        length = getattr(self.impl_instance, "length", None) or 0
        inner = self.impl_instance.dialect_impl(dialect).bind_processor(dialect)

        def process(value: Any) -> Any:
            if (value.__class__ is str or isinstance(value, str)) and (  # numpy's `str_` too
                "\x00" in value
                or (length and len(value) > length)
                or (not value.isascii() and _surrogate(value))  # isascii: O(1)
            ):
                from lakeline.values import check_text

                check_text(value, length or None)  # raises InvalidValue
            return value if inner is None else inner(value)  # bound as given (a str Enum's value)

        return process

    def many_checker(self, dialect: Dialect) -> Any:
        """What the bind processor checks, for a whole column of values at once (one join
        and one `max` in C instead of a call per value): a `TextCheck` refusing a NUL byte, a
        lone surrogate or an over-long value among the values it is given, as the processor
        would. None when the dialect converts values on binding (its processor must run for
        each value)."""
        if self.impl_instance.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
        return TextCheck(getattr(self.impl_instance, "length", None) or 0)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        """A value compared with the column is not stored: only NUL bytes are refused (a
        longer value matches nothing, as on either database)."""
        return _COMPARED if self.impl_instance.__class__ is String else self


class TextCheck:
    """`Str.many_checker`'s check of a column whose values bind as they are: a NUL byte, a
    lone surrogate or a value longer than `limit` (0: no limit) refused (InvalidValue) as the
    bind processor refuses it. Several columns' checks go in one call (`TextChecks`)."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, values: Sequence[Any]) -> None:
        texts = [value for value in values if isinstance(value, str)]  # numpy's `str_` too
        joined = "".join(texts)
        length = self.limit
        if texts and (
            "\x00" in joined
            or (length and max(map(len, texts)) > length)
            or (not joined.isascii() and _surrogate(joined))
        ):
            from lakeline.values import check_text

            for value in texts:  # the first bad one, named as the processor names it
                check_text(value, length or None)


_given = partial(is_not, None)


class TextChecks:
    """The `TextCheck`s of several columns in one call, given the columns' values in their
    order: their texts joined and measured at once, in C (one call, not one a column: a run's
    row has 6 such columns, an artifact's 12); only where one may be refused is each column
    checked by its own check, in order (the same error)."""

    __slots__ = ("checks", "limited")

    def __init__(self, checks: Sequence[TextCheck]) -> None:
        self.checks = list(checks)
        # the columns with a limit, the shortest limit first
        self.limited = sorted(
            ((n, check.limit) for n, check in enumerate(checks) if check.limit),
            key=lambda pair: pair[1],
        )

    def __call__(self, columns: Sequence[Sequence[Any]]) -> None:
        # no None; not `filter(None, ...)`: a truth test raises for pandas' NA or a numpy
        # array, values each column's own check passes over (the driver refuses them)
        values = list(filter(_given, chain.from_iterable(columns)))
        if not values:
            return
        try:
            joined = "".join(values)
        except TypeError:  # not only texts: each column's check passes over the others
            odd = True
        else:
            odd = "\x00" in joined or (not joined.isascii() and _surrogate(joined))
        if not odd:
            longest = max(map(len, values))
            for n, limit in self.limited:
                if limit >= longest:  # this one and the rest hold every text
                    break
                if any(isinstance(value, str) and len(value) > limit for value in columns[n]):
                    odd = True
                    break
        if odd:
            for values_of, check in zip(columns, self.checks, strict=True):
                check(values_of)


class LongText(Str):
    """TEXT without a length limit (NUL bytes are refused, as for `Str`)."""

    impl = Text
    cache_ok = True


_COMPARED = Str()


def KeyString(length: int) -> "Str":
    """A string compared in code-point order on every database (prefix queries use indexes)."""
    return Str(length).with_variant(Str(length, collation="C"), "postgresql")


class Base(DeclarativeBase):
    """Base of every lakeline model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[dict[str, Any]]: JSONType,
    }

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        table = cls.__dict__.get("__table__")
        if table is not None and table.info.get(AUTOINCREMENT_INFO):
            autoincrement_table(table)


class Queryable:
    """`filter`, `get`, `search` and `using` for a mapped class: every lakeline record has
    them, and a registry a module adds (on any declarative base) gets them by inheriting this
    mixin and, to be searchable, declaring `search_fields` (and creating their index in its
    migration)."""

    # the text fields `search()` ranks records by; a searchable registry's migration creates
    # their index with `lakeline.search.search_index_ddl` (empty: not searchable)
    search_fields: ClassVar[tuple[str, ...]] = ()

    def __getstate__(self) -> dict[str, Any]:
        """Records pickle (multiprocessing, Prefect, redun) with their column values and the
        name and uid of their instance, which the unpickling process finds on first use."""
        from lakeline.db.session import pickled_state

        return pickled_state(self)

    def history(self) -> "list[Entry]":
        """Every change of this record in the audit log (who, when, what), oldest first."""
        from lakeline.access.audit import history

        return history(self)

    @classmethod
    def filter(cls, *expressions: Any, **lookups: Any) -> "QuerySet[Self]":
        """Records matching `field__op=value` lookups (and optional SQLAlchemy expressions)."""
        from lakeline.instance import current
        from lakeline.query import QuerySet

        return QuerySet(cls, current()).filter(*expressions, **lookups)

    @classmethod
    def get(cls, uid: str | None = None, /, **lookups: Any) -> Self:
        """The one record with this uid (or matching the lookups); raises if none or several."""
        from lakeline.instance import current
        from lakeline.query import QuerySet

        if uid is not None:
            lookups["uid"] = uid
        return QuerySet(cls, current()).get(**lookups)

    @classmethod
    def search(
        cls, text: str, *, limit: int | None = 20, exhaustive: bool = False
    ) -> "QuerySet[Self]":
        """Records whose text fields match `text`, best matches first (`QuerySet.search`)."""
        from lakeline.instance import current
        from lakeline.query import QuerySet

        return QuerySet(cls, current()).search(text, limit=limit, exhaustive=exhaustive)

    @classmethod
    def using(cls, instance: "str | Instance") -> "QuerySet[Self]":
        """Records of another instance, read-only (`filter`, `get`, `search`, `to_dataframe`);
        the current instance does not change. `instance`: its name or an `ll.Instance`."""
        from lakeline.instance import open_instance
        from lakeline.query import QuerySet

        return QuerySet(cls, open_instance(instance))


class RecordMixin(Queryable):
    """Columns every record has: internal id, global uid, creation time and creator."""

    uid_length = 16

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(KeyString(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    @declared_attr
    def created_by_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("users.id"), nullable=True)

    @property
    def instance(self) -> "Instance":
        """The instance this record came from (a record not saved yet: the current one)."""
        from lakeline.db.session import instance_of

        found = instance_of(self)
        if found is not None:
            return found
        from lakeline.instance import current

        return current()

    def _ensure_uid(self) -> None:
        if not getattr(self, "uid", None):
            self.uid = new_uid(self.uid_length)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self._repr_fields()
            if getattr(self, name, None) is not None
        )
        return f"{type(self).__name__}({fields})"

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid",)


class VersionedMixin:
    """Columns of versioned records: a stem shared by all versions, a label, the latest flag."""

    stem: Mapped[str] = mapped_column(KeyString(12), index=True)
    version: Mapped[str | None] = mapped_column(Str(64))
    is_latest: Mapped[bool] = mapped_column(default=True)

    @property
    def version_number(self) -> int:
        """1 for the first version, 2 for the second, ... (the uid suffix counts from 0)."""
        from lakeline.ids import suffix_index

        uid: str = getattr(self, "uid", "")
        return suffix_index(uid[-4:]) + 1 if len(uid) == 16 else 1
