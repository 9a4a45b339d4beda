"""Sessions: read sessions, and write transactions that take SQLite's lock up front (on a
connection kept across them, for a BatchRecorder's flushes: `KeptConnection`)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event
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


# the connection kept across write transactions that `SessionFactory.write` uses, if any (set
# by `with kept:` around a BatchRecorder's flush: its thread's, a timer's or the engine's)
_KEPT: ContextVar[KeptConnection | None] = ContextVar("lakeline_kept", default=None)


class KeptConnection:
    """A write connection of one factory's engine kept checked out across write transactions,
    with one session bound to it: inside `with kept:`, that factory's `write()` uses them, so
    a transaction (a BatchRecorder's lone flush) only begins and commits: no checkout and
    check-in (the pool's events, its reset), no new Connection and Session. The session is
    closed after each (its records detached, as before).

    Before each use it gets the checks a checkout runs (`engine.check_kept`: the SQLite file
    not deleted or replaced, the PostgreSQL session not ended); one that fails them, was
    invalidated (a lost server, a Ctrl-C inside a statement) or whose transaction failed is
    given back to the pool and another checked out. Between transactions it holds no
    transaction open (no snapshot: SQLite's checkpoints and other writers go on; PostgreSQL:
    idle, not `idle in transaction`). `release()` gives it back (its owner: at the end of a
    workflow, at exit, when garbage collected); an engine disposed (`ll.disconnect()`)
    closes it. A write inside a write (the connection in use), of another factory, or on
    another thread while it is in use, gets a pooled connection as before. One of a factory's
    holds its connection between transactions at a time; the others give theirs back after
    each (recorders alive at once kept the pool's every connection: test_flush_kept_pool.py)."""

    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory
        self._connection: Connection | None = None
        self._session: Session | None = None  # bound to `_connection`, used again
        self._lock = threading.Lock()  # held while a transaction uses the connection
        self._tokens: list[Token[KeptConnection | None]] = []
        # released while in use (another thread): given back once that transaction ends;
        # invalidated (closed, not pooled) if its engine was disposed meanwhile
        self._released: bool | None = None  # None: not released; else: whether to invalidate

    def __enter__(self) -> KeptConnection:
        self._tokens.append(_KEPT.set(self))
        return self

    def __exit__(self, *_: object) -> None:
        _KEPT.reset(self._tokens.pop())

    def take(self) -> Session | None:
        """The session for a write transaction, on the connection checked (another if it
        fails the checks), the lock held until `give_back`; None if it is in use."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            from lakeline.db.engine import check_kept

            connection = self._connection
            if connection is not None:
                if connection.invalidated or connection.closed:
                    self._close(connection)
                    connection = None
                else:
                    try:
                        check_kept(self.factory.engine, connection)
                    except Exception:  # deleted or replaced, ended: as the pool replaces it
                        self._close(connection, invalidate=True)
                        connection = None
            if connection is None:
                connection = self._connection = self.factory._write_engine.connect()
            if self._session is None:  # one a connection: made once (~0.1M instructions)
                self._session = self.factory._write(bind=connection)
            return self._session
        except BaseException:
            self._lock.release()
            raise

    def give_back(self, ok: bool) -> None:
        """After the transaction: the session closed (its records detached, as a session's
        close detaches them); the connection kept for the next one if the transaction
        committed or rolled back cleanly (`ok`), else given back to the pool (its reset ends
        whatever the failure left) with its session; the lock released."""
        try:
            session, connection = self._session, self._connection
            if session is not None:
                try:
                    session.close()
                finally:
                    session.info.pop(AFTER_COMMIT, None)  # a rolled-back transaction's
            if connection is None:
                return
            clean = not (connection.invalidated or connection.in_transaction())
            holder = self.factory._holder
            if ok and clean and self._released is None and holder in (None, self):
                from lakeline.db.engine import return_kept

                self.factory._holder = self
                return_kept(self.factory.engine, connection)
            else:  # (another recorder of this factory keeps one: this one goes back)
                self._close(connection, invalidate=bool(self._released))
        finally:
            self._released = None
            self._lock.release()

    def release(self, invalidate: bool = False) -> None:
        """Give the connection back to the pool now (`invalidate`: closed, as its engine was
        disposed); if a transaction uses it (another thread), once that one ends."""
        if not self._lock.acquire(blocking=False):
            self._released = bool(self._released) or invalidate
            if not self._lock.acquire(blocking=False):  # (else that one ended meanwhile)
                return
        try:
            invalidate = invalidate or bool(self._released)
            self._released = None
            if self._connection is not None:
                self._close(self._connection, invalidate=invalidate)
        finally:
            self._lock.release()

    def _close(self, connection: Connection, invalidate: bool = False) -> None:
        self._connection = self._session = None
        if self.factory._holder is self:
            self.factory._holder = None
        try:
            if invalidate and not connection.closed:
                connection.invalidate()  # closed now: not back into a disposed pool
            connection.close()
        except Exception:  # closing a broken connection: it is gone either way
            pass


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
        self._write_engine = engine.execution_options(lakeline_write=True)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False, info=info)
        self._kept: weakref.WeakSet[KeptConnection] = weakref.WeakSet()
        # the one of them holding its connection between transactions: the others give theirs
        # back after each (recorders alive at once would take the pool's every connection)
        self._holder: KeptConnection | None = None
        # (a connection event on the engine makes every Connection join and fire the engine's
        # connection events: ~0.1-0.2M instructions a PostgreSQL flush, which had none. This
        # one is fired by `Engine.dispose` itself: the engine's flag is left as it was)
        had_events = engine._has_events
        event.listen(engine, "engine_disposed", self._disposed)
        engine._has_events = had_events
        for maker in (self._read, self._write):
            event.listen(maker, "after_commit", _after_commit)
            if instance is not None:  # every record loaded or written here carries it
                event.listen(maker, "loaded_as_persistent", _stamp_from_session)
                event.listen(maker, "pending_to_persistent", _stamp_from_session)

    def keep(self, owner: object) -> KeptConnection:
        """A connection to keep across write transactions for `owner` (`KeptConnection`:
        none is checked out until the first), given back when `owner` is collected; a
        read-only factory's writes refuse as before."""
        kept = KeptConnection(self)
        self._kept.add(kept)
        weakref.finalize(owner, kept.release).atexit = False  # (owner: at exit, before)
        return kept

    def _disposed(self, _engine: Engine) -> None:
        for kept in list(self._kept):
            kept.release(invalidate=True)

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
        kept = _KEPT.get()
        session = None if kept is None or kept.factory is not self else kept.take()
        if session is None:
            with self._write() as session, session.begin():
                yield session
            return
        assert kept is not None
        ok = False
        try:
            with session.begin():
                yield session
            ok = True
        finally:
            kept.give_back(ok)
