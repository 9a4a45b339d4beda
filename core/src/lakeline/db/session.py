"""Sessions: read sessions, and write transactions that take SQLite's lock up front."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import instance_dict, instance_state

if TYPE_CHECKING:
    from lakeline.instance import Instance

INSTANCE_ATTR = "_lakeline_instance"  # where a record keeps the instance it came from
INSTANCE_REF = "_lakeline_instance_ref"  # an unpickled record's (instance name, uid)
AFTER_COMMIT = "lakeline_after_commit"  # a session's `after_commit` calls, in its info


def after_commit(session: Session, then: Callable[[], None]) -> None:
    """Call `then()` once `session`'s transaction (a `SessionFactory`'s session) commits, as
    SQLAlchemy's `after_commit` event (inside the commit, before the session closes: a Ctrl-C
    after it still finds it called); never if it rolls back. Through one listener each
    factory registers once: an `event.listen` on the session cost ~60k instructions a call."""
    session.info.setdefault(AFTER_COMMIT, []).append(then)


def _after_commit(session: Session) -> None:
    for then in session.info.pop(AFTER_COMMIT, ()):
        then()


def stamp(record: Any, instance: Instance) -> None:
    """Note on `record` the instance it belongs to (`record.instance`)."""
    record.__dict__[INSTANCE_ATTR] = instance


def instance_of(record: Any) -> Instance | None:
    """The instance `record` was loaded from or written to, if known (a record unpickled in
    this process finds its instance here on first use: `lakeline.instance.reopen`)."""
    loaded = record.__dict__
    found: Instance | None = loaded.get(INSTANCE_ATTR)
    if found is None and INSTANCE_REF in loaded:
        from lakeline.instance import reopen

        found = loaded[INSTANCE_ATTR] = reopen(*loaded[INSTANCE_REF])
        del loaded[INSTANCE_REF]
    return found


def pickled_state(record: Any) -> dict[str, Any]:
    """`record`'s state to pickle: the name and uid of its instance instead of the instance
    (its engine and sessions belong to this process)."""
    state = dict(record.__dict__)
    instance = state.pop(INSTANCE_ATTR, None)
    if instance is not None:
        state[INSTANCE_REF] = (instance.name, instance.uid)
    return state


def unsaved(record: Any) -> bool:
    """`record.id is None`, without the ORM's read of an attribute never set (~2 us: the
    default-value events), which is what a new record's id is."""
    if instance_dict(record).get("id") is not None:
        return False
    if instance_state(record).key is None:  # transient or pending: its dict is all there is
        return True
    return record.id is None  # loaded, the id expired: read it


def check_own(record: Any, instance: Instance) -> None:
    """Refuse a loaded record of another instance where `instance`'s records are expected
    (its id means another row there): `ForeignRecord` naming both instances."""
    owner = instance_of(record)
    if owner is not None and owner.uid != instance.uid and owner is not instance:
        from lakeline.errors import ForeignRecord

        raise ForeignRecord(
            f"{type(record).__name__} {getattr(record, 'uid', '?')} belongs to instance "
            f"{owner.name!r}, not to {instance.name!r}: a record of one instance cannot be "
            "written to or linked in another"
        )


def merge_edits(session: Session, record: Any) -> Any:
    """The stored row of loaded `record` in `session`, given the columns edited on `record`
    since it was loaded (SQLAlchemy's attribute history, which pickles with it) and nothing
    else: an older copy never reverts what another save wrote since (`Session.merge` wrote
    back every column it had loaded, and inserted a deleted record again)."""
    from sqlalchemy import inspect

    stored = session.get(type(record), record.id, with_for_update=True)
    if stored is None:
        from lakeline.errors import DoesNotExist

        raise DoesNotExist(
            f"{type(record).__name__} {getattr(record, 'uid', '')} (id {record.id}) is no "
            "longer in the catalog: it was deleted"
        )
    state = inspect(record)
    for attr in state.mapper.column_attrs:
        if state.attrs[attr.key].history.has_changes():
            setattr(stored, attr.key, getattr(record, attr.key))
    return stored


def _stamp_from_session(session: Session, record: Any) -> None:
    instance = session.info.get("lakeline_instance")
    if instance is not None:
        record.__dict__[INSTANCE_ATTR] = instance


class SessionFactory:
    """Hands out sessions bound to one engine; records stay usable after commit.

    With `instance`, every record its sessions load or write carries it (`record.instance`);
    `read_only` refuses write transactions (`ReadOnlyInstance`)."""

    def __init__(
        self, engine: Engine, instance: Instance | None = None, *, read_only: bool = False
    ) -> None:
        self.engine = engine
        self.instance = instance
        self.read_only = read_only
        info = {"lakeline_instance": instance} if instance is not None else {}
        self._read = sessionmaker(engine, expire_on_commit=False, info=info)
        self._write = sessionmaker(
            engine.execution_options(lakeline_write=True), expire_on_commit=False, info=info
        )
        for maker in (self._read, self._write):
            event.listen(maker, "after_commit", _after_commit)
            if instance is not None:  # every record loaded or written here carries it
                event.listen(maker, "loaded_as_persistent", _stamp_from_session)
                event.listen(maker, "pending_to_persistent", _stamp_from_session)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; closed (and its records detached) on exit."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction committed on success and rolled back on any error."""
        if self.read_only:
            from lakeline.errors import ReadOnlyInstance

            name = self.instance.name if self.instance is not None else "this instance"
            raise ReadOnlyInstance(
                f"instance {name!r} is open read-only (through using() or ll.Instance()): "
                "nothing can be written to it from here; connect to it to write "
                f"(lakeline.connect({name!r}))"
            )
        with self._write() as session, session.begin():
            yield session
