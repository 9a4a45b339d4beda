"""Synonyms and abbreviations on records: `add_synonym`, `remove_synonym`, `set_abbr`.

A synonym may stand for one record only: one that is another record's name, synonym or
abbreviation is refused (SynonymError naming that record), so `standardize()` is never
ambiguous through synonyms added this way. For a saved record the check and the UPDATE run in
one write transaction (SQLite's write lock is taken up front, so no concurrent writer slips in
between; on PostgreSQL two sessions adding the same synonym at the same moment can both pass).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lakeline.errors import SynonymError
from lakeline.validation.lookup import (
    SEPARATOR,
    name_field,
    one_param_in,
    optional_column,
    preview,
    split_synonyms,
)

if TYPE_CHECKING:
    from lakeline.instance import Instance


def _synonyms_column(model: type[Any]) -> Any:
    column = optional_column(model, "synonyms")
    if column is None:
        raise SynonymError(f"{model.__name__} has no synonyms field")
    return column


def _clean(model: type[Any], synonym: str | Iterable[str]) -> list[str]:
    """The synonyms as a list, each checked: a non-empty string without '|' or NUL."""
    items = [synonym] if isinstance(synonym, str) else list(synonym)
    cleaned: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise SynonymError(
                f"{model.__name__}: a synonym must be a string, not {type(item).__name__}"
            )
        if not item.strip():
            raise SynonymError(f"{model.__name__}: synonym {item!r} is empty")
        if SEPARATOR in item or "\x00" in item:
            bad = SEPARATOR if SEPARATOR in item else "\\x00"
            raise SynonymError(
                f"{model.__name__}: synonym {item!r} contains {bad!r}, which separates "
                "synonyms in storage: add it as separate synonyms"
            )
        if item not in cleaned:
            cleaned.append(item)
    return cleaned


def describe(model: type[Any], name: str, uid: str | None) -> str:
    """`ULabel 'T cell' (uid 3kQ...)` for messages."""
    return f"{model.__name__} {name!r}" + (f" (uid {uid})" if uid else "")


def check_free(conn: Any, record: Any, synonyms: list[str]) -> None:
    """Raise SynonymError if a synonym is another record's name, synonym or abbreviation."""
    from sqlalchemy import or_, select

    model = type(record)
    column = name_field(model, None)
    pk = model.__table__.primary_key.columns.values()[0]
    own_id = getattr(record, pk.key, None)
    uid = model.__table__.columns.get("uid")
    picked = [pk, column, *([uid] if uid is not None else [])]
    stmt = select(*picked).where(one_param_in(column, synonyms, conn.dialect.name))
    for row in conn.execute(stmt):
        if row[0] != own_id:
            raise SynonymError(
                f"{row[1]!r} is the name of {describe(model, row[1], _uid(row, uid))}: "
                f"it cannot be a synonym of {getattr(record, column.key)!r}"
            )
    optional = (optional_column(model, "synonyms"), optional_column(model, "abbr"))
    stored = [c for c in optional if c is not None]
    if not stored:
        return
    stmt = select(*picked, *stored).where(
        or_(*(c.contains(s, autoescape=True) for c in stored for s in synonyms))
    )
    width = len(picked)
    for row in conn.execute(stmt):
        if row[0] == own_id:
            continue
        held: set[str] = set()
        for column_, text in zip(stored, row[width:], strict=True):
            held.update(split_synonyms(text) if column_.key == "synonyms" else [text])
        taken = [s for s in synonyms if s in held]
        if taken:
            raise SynonymError(
                f"{taken[0]!r} is already a synonym of {describe(model, row[1], _uid(row, uid))}"
                f": a synonym stands for one record; remove it there first"
            )


def _uid(row: Any, uid_column: Any) -> str | None:
    return row[2] if uid_column is not None else None


def persist(
    record: Any,
    values: dict[str, Any],
    synonyms_to_check: list[str],
    save: bool,
    instance: Instance,
) -> None:
    """Check `synonyms_to_check` are free in `instance`, then set `values` on the record and,
    when `save`, write them: an UPDATE of a saved record (one transaction with the check),
    `save()` of a new record that has one."""
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy import update

    model = type(record)
    saved = sa_inspect(record).has_identity
    if save and saved:
        pk = model.__table__.primary_key.columns.values()[0]
        with instance.sessions.write() as session:
            conn = session.connection()
            if synonyms_to_check:
                check_free(conn, record, synonyms_to_check)
            stmt = update(model.__table__).where(pk == getattr(record, pk.key)).values(values)
            session.execute(stmt)
    elif synonyms_to_check:
        with instance.engine.connect() as conn:
            check_free(conn, record, synonyms_to_check)
    for key, value in values.items():
        setattr(record, key, value)
    if save and not saved and callable(getattr(record, "save", None)):
        record.save()


def add_synonym(
    record: Any, synonym: str | Iterable[str], instance: Instance, *, save: bool = True
) -> None:
    """Add one synonym or several; refuses another record's name or synonym."""
    model = type(record)
    column = _synonyms_column(model)
    own_name = getattr(record, name_field(model, None).key)
    current = split_synonyms(getattr(record, column.key))
    new = [s for s in _clean(model, synonym) if s != own_name and s not in current]
    if not new:
        return
    persist(record, {column.key: SEPARATOR.join(current + new)}, new, save, instance)


def remove_synonym(
    record: Any, synonym: str | Iterable[str], instance: Instance, *, save: bool = True
) -> None:
    """Remove synonyms the record has; naming one it does not have is an error."""
    model = type(record)
    column = _synonyms_column(model)
    current = split_synonyms(getattr(record, column.key))
    gone = _clean(model, synonym)
    unknown = [s for s in gone if s not in current]
    if unknown:
        name = getattr(record, name_field(model, None).key)
        raise SynonymError(
            f"{preview(unknown)} is not a synonym of {model.__name__} {name!r} "
            f"(its synonyms: {preview(current) or 'none'})"
        )
    kept = [s for s in current if s not in gone]
    persist(record, {column.key: SEPARATOR.join(kept) or None}, [], save, instance)


def set_abbr(record: Any, value: str, instance: Instance, *, save: bool = True) -> None:
    """Set the abbreviation and add it to the synonyms (an abbreviation is a synonym)."""
    model = type(record)
    abbr = optional_column(model, "abbr")
    if abbr is None:
        raise SynonymError(f"{model.__name__} has no abbr field")
    (value,) = _clean(model, value)
    values: dict[str, Any] = {abbr.key: value}
    own_name = getattr(record, name_field(model, None).key)
    synonyms = optional_column(model, "synonyms")
    check = [] if value == own_name else [value]
    if synonyms is not None and check:
        current = split_synonyms(getattr(record, synonyms.key))
        if value not in current:
            values[synonyms.key] = SEPARATOR.join([*current, value])
    persist(record, values, check, save, instance)
