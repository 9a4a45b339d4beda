"""Editing saved artifacts: metadata changes are validated and written; identity is not editable.

A loaded record passed to `save()` again writes the fields edited on it since it was loaded
(SQLAlchemy's attribute history, kept through pickling), compared with its stored row under the
write lock: a change to anything but the editable metadata (`EDITABLE`) is refused with
`ReadOnlyField`, edited metadata goes through the checks a new record gets, and an edit of a
field another save changed since this copy was loaded is an `EditConflict`. Fields not edited
on the copy are neither written nor compared: an older copy never reverts newer values. Content
identity — uid, stem, hash, size, storage, store key, version bookkeeping (`is_latest`),
producing run — only ever changes through saving content (a new version) or deleting. A key
edit of a copy loaded as the latest version that a new version has made old since is an
`EditConflict` (it would rename the old version: the new key would have no latest).
The edits are written in the transaction of the save's new records (`Edits`): all or none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import inspect, select, update
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from lakeline.db.locks import lock_keys
from lakeline.db.rows import chunks, fill_new, one_of, update_row
from lakeline.errors import DoesNotExist, EditConflict, InvalidKey, InvalidValue, ReadOnlyField
from lakeline.models import Artifact
from lakeline.storage.keys import suffix_of, validate_key
from lakeline.values import validate_label

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance

EDITABLE = ("key", "description", "kind", "version")
# bookkeeping reads refresh (the stored bytes' mtime/ETag): neither identity nor editable, so
# an older copy of the record is not refused for it, and the stored value is kept
BOOKKEEPING = ("store_tag",)
KIND_LENGTH = 64


def _checked(artifact: Artifact, field: str, value: Any) -> Any:
    """`value` for `field` if a new record could hold it (keys normalised); raise otherwise."""
    if value is None:
        return None
    if field == "key":
        key = validate_key(value)
        if suffix_of(key).lower() != (artifact.suffix or "").lower():
            raise InvalidKey(
                f"key {key!r} ends in {suffix_of(key) or 'no suffix'!r} but artifact "
                f"{artifact.uid} is {artifact.suffix or 'without suffix'!r}: keep its suffix"
            )
        return key
    if field == "version":
        return validate_label(value)
    if not isinstance(value, str):
        raise InvalidValue(f"{field} must be a string, not {type(value).__name__}")
    if field == "kind" and len(value) > KIND_LENGTH:
        raise InvalidValue(f"kind is {len(value)} characters long; the limit is {KIND_LENGTH}")
    return value


def _key_taken(session: Session, key: str, own_id: int) -> None:
    stmt = select(Artifact.uid).where(
        Artifact.key == key, Artifact.is_latest.is_(True), Artifact.id != own_id
    )
    holder = session.scalars(stmt.limit(1)).first()
    if holder is not None:
        raise InvalidKey(
            f"key {key!r} already names artifact {holder}: give another key, or save new "
            "content under it (a new version of that artifact)"
        )


Changes: TypeAlias = "list[tuple[Artifact, dict[str, Any]]]"
InTransaction: TypeAlias = "Callable[[Session, Sequence[Any]], None]"


class Edits:
    """The metadata edits of the loaded artifacts of one save, written in the transaction of
    its new records (all or nothing): `check`ed before any file is stored, `write`n first in
    the transaction (again if it is retried), `settle`d once it committed. Until then the
    objects keep their edits pending, as the caller gave them: a failed save leaves them so."""

    def __init__(self, artifacts: Sequence[Artifact]) -> None:
        self.artifacts = sorted(artifacts, key=lambda a: a.id)  # rows locked in one order
        self.changes: Changes = []

    def check(self, instance: Instance) -> None:
        """Refuse an edit now, as `write` would, before the save stores any file."""
        with instance.sessions.read() as session:
            _changes(session, self.artifacts, lock=False)

    def write(self, session: Session, keys: Iterable[str] = ()) -> None:
        """In `session`'s transaction: lock `keys` (the new records') with the old and new key of
        each key edit, all in one sorted order (db/locks.py: keys first, then rows), check every
        edit against its stored row (locked), then write them."""
        edited = []
        for artifact in self.artifacts:
            history = inspect(artifact).attrs.key.history
            if history.has_changes():
                edited += [_normal(k) for k in (*history.deleted, *history.added) if k]
        lock_keys(session, "artifact", sorted({*keys, *edited}))
        self.changes = _changes(session, self.artifacts, lock=True)
        for artifact, changed in self.changes:
            if changed:
                session.execute(
                    update(Artifact)
                    .where(Artifact.id == artifact.id)
                    .values(**changed)
                    .execution_options(synchronize_session=False)
                )

    def before(self, then: InTransaction | None) -> InTransaction:
        """A save's `before(session, plans)`: `write`, then `then`'s."""

        def run(session: Session, plans: Sequence[Any]) -> None:
            self.write(session, [k for p in plans if (k := vars(p.artifact).get("key"))])
            if then is not None:
                then(session, plans)

        return run

    def settle(self) -> None:
        """Once the transaction committed: each object as stored now (the normalised key), no
        edit pending."""
        columns = _columns()
        for artifact, changed in self.changes:
            attrs = inspect(artifact).attrs
            for name in columns:
                if attrs[name].history.has_changes() or name in changed:
                    set_committed_value(artifact, name, changed.get(name, getattr(artifact, name)))
            artifact._created = False


def _normal(key: str) -> str:
    """`key` as `_checked` normalises it (a key it refuses: as given, for the lock)."""
    try:
        return validate_key(key)
    except InvalidKey:
        return key


def _columns() -> list[str]:
    return [c.key for c in Artifact.__table__.columns if c.key not in BOOKKEEPING]


def _changes(session: Session, artifacts: Sequence[Artifact], *, lock: bool) -> Changes:
    """The fields to write of each of `artifacts`, checked against its stored row (read `FOR
    UPDATE` with `lock`): raise if any edit is refused."""
    columns = _columns()
    changes: Changes = []
    earlier: dict[int, dict[str, Any]] = {}  # what copies before in this save write, by id
    # no field set since loaded (nothing to write or check): only that its row is still there,
    # read at once and not locked
    _still_there(session, [a for a in artifacts if not instance_state(a).committed_state])
    for artifact in artifacts:
        if not instance_state(artifact).committed_state:
            changes.append((artifact, {}))
            continue
        stmt = select(Artifact).where(Artifact.id == artifact.id)
        stored = session.scalars(stmt.with_for_update() if lock else stmt).first()
        if stored is None:
            raise _gone(artifact)
        changed: dict[str, Any] = {}
        attrs = inspect(artifact).attrs
        # another copy of the record earlier in this save: checked against its edits, as if
        # saved before this one (a conflicting edit refused, not silently overwritten)
        ahead = earlier.setdefault(stored.id, {})
        for name in columns:
            history = attrs[name].history
            if not history.has_changes():
                continue  # not edited here: what is stored stays (maybe newer)
            now = getattr(artifact, name)
            before = ahead[name] if name in ahead else getattr(stored, name)
            if now == before:
                continue
            if name not in EDITABLE:
                raise ReadOnlyField(
                    f"{name} of artifact {stored.uid} cannot be changed (stored {before!r}, "
                    f"given {now!r}): it is part of the record's identity; editable are "
                    f"{', '.join(EDITABLE)}"
                )
            if history.deleted and history.deleted[0] != before:
                if name in ahead:
                    raise EditConflict(
                        f"{name} of artifact {stored.uid} is edited on two copies of it in "
                        f"one save ({ahead[name]!r}, then {now!r}): save one of them"
                    )
                raise EditConflict(
                    f"{name} of artifact {stored.uid} is now {before!r}, changed by another "
                    f"save since this copy was loaded (with {history.deleted[0]!r}): load "
                    f"it again and redo the edit ({name} = {now!r})"
                )
            changed[name] = _checked(stored, name, now)
        if "key" in changed and vars(artifact).get("is_latest") and not stored.is_latest:
            raise _demoted(session, stored, changed["key"])
        if changed.get("key") is not None and stored.is_latest:
            _key_taken(session, changed["key"], stored.id)
        session.expunge(stored)  # its values as loaded: the save's own reads see the edits
        ahead.update(changed)
        changes.append((artifact, changed))
    return changes


def _demoted(session: Session, stored: Artifact, key: str | None) -> EditConflict:
    """A key edit of a copy loaded as the latest version, which another save's new version
    made an old one since: it would rename that old version, leaving its new key with no
    latest version."""
    stmt = select(Artifact.uid).where(Artifact.stem == stored.stem, Artifact.is_latest.is_(True))
    newer = session.scalars(stmt.limit(1)).first()
    return EditConflict(
        f"key of artifact {stored.uid} cannot be edited: it is no longer the latest version of "
        f"{stored.key!r} ({newer or 'a newer version'} was saved since this copy was loaded as "
        f"the latest): load the latest again and redo the edit (key = {key!r})"
    )


def _gone(artifact: Artifact) -> DoesNotExist:
    return DoesNotExist(
        f"artifact {artifact.uid} (id {artifact.id}) is no longer in the catalog: "
        "it was deleted; save the data as a new Artifact"
    )


def _still_there(session: Session, artifacts: Sequence[Artifact]) -> None:
    """Raise DoesNotExist for the first of `artifacts` whose row is gone."""
    ids = [a.id for a in artifacts]
    found: set[int] = set()
    for chunk in chunks(sorted(set(ids))):
        found.update(
            session.scalars(select(Artifact.id).where(one_of(session, Artifact.id, chunk)))
        )
    for artifact, artifact_id in zip(artifacts, ids, strict=True):
        if artifact_id not in found:
            raise _gone(artifact)


def refresh_metadata(session: Session, existing: Artifact, given: Artifact) -> None:
    """Saving content a record already holds, with metadata of its own (description, kind,
    version label): the record takes it on. Metadata left out keeps what was recorded."""
    own, stored = vars(given), vars(existing)  # plain reads where the values are there
    changed = {}
    for name in ("description", "kind", "version"):
        value = own[name] if name in own else getattr(given, name)
        if value is not None and value != (
            stored[name] if name in stored else getattr(existing, name)
        ):
            changed[name] = value
    if existing.id is not None:
        update_row(session, existing, changed)
    else:  # new earlier in this same save: its row is written after, with these values
        fill_new(existing, changed)
