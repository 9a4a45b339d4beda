"""Create SQLAlchemy engines for SQLite (WAL, foreign keys, busy timeout) and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import select
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from lakeline.db.driver import CURSOR as DRIVER_CURSOR
from lakeline.db.driver import driver_rows
from lakeline.errors import DatabaseUnreachable


def normalize_url(url: str) -> str:
    """Give PostgreSQL URLs the psycopg 3 driver; leave others as they are."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


_FILE_ID = "lakeline_file_id"

# a check of a connection handed out, given its DBAPI connection and its record's `info`:
# DisconnectionError if it must be replaced
Check = Callable[[Any, dict[Any, Any]], None]
# by engine: the checks its pool runs at checkout, and what it notes at check-in; also run for
# a connection kept checked out across transactions (`check_kept`, `return_kept`)
_CHECKOUT: weakref.WeakKeyDictionary[Engine, list[Check]] = weakref.WeakKeyDictionary()
_CHECKIN: weakref.WeakKeyDictionary[Engine, list[Check]] = weakref.WeakKeyDictionary()


def _at(engine: Engine, identifier: str, check: Check) -> None:
    """`check` at each checkout (`identifier`: "checkout") or check-in ("checkin") of
    `engine`'s pool, and at each use and return of a connection of it kept checked out."""
    if identifier == "checkout":
        event.listen(engine, "checkout", lambda dbapi, record, _proxy: check(dbapi, record.info))
        _CHECKOUT.setdefault(engine, []).append(check)
    else:
        event.listen(engine, "checkin", lambda dbapi, record: check(dbapi, record.info))
        _CHECKIN.setdefault(engine, []).append(check)


def check_kept(engine: Engine, connection: Connection) -> None:
    """Before a connection kept checked out (`session.KeptConnection`) is used again: the
    checks `engine`'s pool runs at checkout (the SQLite file not deleted or replaced since it
    opened, the PostgreSQL session not ended), DisconnectionError if it must be replaced."""
    checks = _CHECKOUT.get(engine)
    if checks:
        fairy = connection.connection
        for check in checks:
            check(fairy.dbapi_connection, fairy.info)


def return_kept(engine: Engine, connection: Connection) -> None:
    """Once a connection kept checked out was used: what `engine`'s pool notes at check-in
    (when it went idle)."""
    checks = _CHECKIN.get(engine)
    if checks:
        fairy = connection.connection
        for check in checks:
            check(fairy.dbapi_connection, fairy.info)


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _setup_sqlite_file(engine: Engine, path: str, create: bool) -> None:
    """The database file is created only by the first connection of an engine made with
    `create`; any other connection opens it read-write, so a moved or deleted file is an
    error, not a new empty database. A pooled connection whose file was deleted or replaced
    since it opened is discarded at checkout (it would read and write the unlinked file), so
    the next statement sees the file as it is now (one kept checked out: before each use)."""
    opened = [not create]

    @event.listens_for(engine, "do_connect")
    def _open_existing(_dialect: Any, _record: Any, cargs: list[Any], cparams: Any) -> None:
        if opened[0]:
            cargs[0] = Path(os.path.abspath(path)).as_uri() + "?mode=rw"
            cparams["uri"] = True

    @event.listens_for(engine, "connect")
    def _remember(_dbapi_conn: Any, record: Any) -> None:
        opened[0] = True
        record.info[_FILE_ID] = _file_id(path)

    def _same_file(_dbapi_conn: Any, info: dict[Any, Any]) -> None:
        if _file_id(path) != info.get(_FILE_ID):
            raise DisconnectionError(f"the database file {path} was deleted or replaced")

    _at(engine, "checkout", _same_file)


SQLITE_CACHE_KIB = 128 * 1024


class SQLiteConnection(sqlite3.Connection):
    """sqlite3.Connection that remembers the progress handler set on it (`progress_handler`:
    (handler, n), or None), which sqlite3 cannot tell: lakeline's own step counting
    (`query_plans._budget`) calls it meanwhile and sets it back after."""

    progress_handler: tuple[Any, int] | None = None

    def set_progress_handler(self, progress_handler: Any, n: int) -> None:  # sqlite3's names
        super().set_progress_handler(progress_handler, n)
        self.progress_handler = None if progress_handler is None else (progress_handler, n)


def _setup_sqlite(engine: Engine, read_only: bool = False) -> None:
    from lakeline.db.errors import busy_timeout_s

    timeout_ms = round(busy_timeout_s() * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, emit BEGIN, so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={timeout_ms}")  # first: WAL may need the lock
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The page cache per connection (filled on demand): SQLite's default 2 MiB holds little
        # of a large catalog's indexes, and every random-key (uid, hash) index insert then
        # rereads pages. Bulk inserts at 0.6M artifacts: 3.6k -> 5.8k rows/s (docs/scaling.md).
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        if read_only:  # the connection refuses every write (an instance opened with using())
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()
        from lakeline.db.sqlite_functions import register

        register(dbapi_conn)  # what the audit and search triggers and JSON lookups call

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: a transaction that may write waits for the lock (busy_timeout) instead
        # of failing with SQLITE_BUSY when it upgrades from reader to writer.
        # (SQL for the driver: `exec_driver_sql`'s result set-up cost ~0.14M instructions)
        write = conn.get_execution_options().get("lakeline_write", False)
        driver_rows(conn, "BEGIN IMMEDIATE" if write else "BEGIN")

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        # Ctrl-C (or SystemExit) once a statement that returns rows ran: SQLAlchemy drops the
        # connection without closing the cursor, and sqlite3 keeps a connection whose statement
        # is not finalized open (holding the write lock) until that cursor, held by the
        # traceback's reference cycle, is garbage collected; the process's next write (an
        # at-exit flush) waited busy_timeout, then failed. Closed, the lock goes with the close.
        # (`ctx.cursor` is never set by SQLAlchemy 2.0: the execution context's)
        # (a statement of `driver_rows` has no execution context: its cursor is the
        # connection's `CURSOR`; closed once the connection is dropped, it could not be)
        cursor = getattr(ctx.execution_context, "cursor", None)
        if cursor is None and ctx.connection is not None:
            cursor = vars(ctx.connection).get(DRIVER_CURSOR)
        if cursor is not None and not isinstance(ctx.original_exception, Exception):
            with contextlib.suppress(Exception):  # the interrupt is what the caller must see
                cursor.close()


# idle seconds after which a pooled connection is pinged at checkout: above the integrations'
# batch ages (2 s; the Snakemake plugin's 10 s since stop 27: at 10 s, about every other of a
# busy run's flushes paid a ping, ~50 us CPU and a round trip), far below the minutes after
# which firewalls and NAT drop idle connections unannounced
PING_AFTER_IDLE_S = 30.0
_IDLE_SINCE = "lakeline_idle_since"


def _server_closed(dbapi_conn: Any) -> bool:
    """Whether the server may have ended this idle connection: it is marked closed or broken,
    or its socket has something to read (the server's goodbye, or end of file)."""
    if dbapi_conn.closed or dbapi_conn.broken:
        return True
    try:
        fd = dbapi_conn.fileno()
        if hasattr(select, "poll"):
            poll = select.poll()
            poll.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poll.poll(0))
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _check_on_checkout(engine: Engine) -> None:
    """Pessimistic disconnect handling, cheaper than `pool_pre_ping`: a connection handed out
    again within PING_AFTER_IDLE_S of its return, whose socket shows no sign of the server
    ending it, is used without a ping round trip; any other one is pinged first, and a failed
    ping makes the pool replace it (as `pool_pre_ping` does). A server that restarts or ends a
    session closes its sockets, which the check sees at once; a connection silently dropped on
    the way (firewalls, NAT) is one that sat idle for minutes, and that one gets its ping. One
    lost unannounced within PING_AFTER_IDLE_S fails its first statement, and the pool connects
    again for the next transaction (a BatchRecorder's failed flush keeps its batch queued for
    the next one: tests/core/test_flush_connection.py)."""

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def _on_checkin(_dbapi_conn: Any, info: dict[Any, Any]) -> None:
        info[_IDLE_SINCE] = time.monotonic()

    def _on_checkout(dbapi_conn: Any, info: dict[Any, Any]) -> None:
        since = info.get(_IDLE_SINCE)
        recent = since is not None and time.monotonic() - since < PING_AFTER_IDLE_S
        if recent and not _server_closed(dbapi_conn):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool discards this connection and connects again
            raise DisconnectionError(f"connection failed its ping: {exc}") from exc

    _at(engine, "checkin", _on_checkin)
    _at(engine, "checkout", _on_checkout)


def make_engine(url: str, *, create: bool = True, read_only: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for `url` with lakeline's dialect settings; driver errors a user can
    act on are raised as LakelineErrors (`db/errors.py`).

    `create=False`: a SQLite file must exist already (connecting never makes an empty one).
    `read_only`: every connection refuses writes (SQLite `query_only`, PostgreSQL
    `default_transaction_read_only`). PostgreSQL connections run with `jit = off`: lakeline's
    queries are short index lookups, and once a large table's cost estimates pass
    `jit_above_cost` compiling a plan took 16-50 ms where running it took 3 (bench/scale.py).
    """
    from lakeline.db.errors import install

    if not isinstance(url, str):
        raise DatabaseUnreachable(f"the database URL must be a string, not {type(url).__name__}")
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseUnreachable(f"malformed database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        sqlite_args = {"factory": SQLiteConnection, **(kwargs.get("connect_args") or {})}
        engine = create_engine(url, **{**kwargs, "connect_args": sqlite_args})
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _setup_sqlite_file(engine, database, create)
        _setup_sqlite(engine, read_only)
        from lakeline.db.partial import use_sqlite

        use_sqlite()  # the partial indexes' SQLite option (DDL, schema comparisons)
        install(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        from lakeline.db.partial import use_postgresql

        use_postgresql()  # the partial indexes' PostgreSQL option (DDL, schema comparisons)
        options = "-c jit=off" + (" -c default_transaction_read_only=on" if read_only else "")
        given = parsed.query.get("options")  # the URL's own (`-csearch_path=...`): kept
        if isinstance(given, str) and given.strip():
            options = f"{given.strip()} {options}"
        connect_args: dict[str, Any] = {"connect_timeout": 10, "options": options}
        kwargs.setdefault("connect_args", connect_args)
        engine = create_engine(url, **kwargs)
        if "pool_pre_ping" not in kwargs:  # unless the caller chose how
            _check_on_checkout(engine)
        install(engine)
        return engine
    raise DatabaseUnreachable(
        f"unsupported database {redact(url)!r}: lakeline supports sqlite:/// and postgresql://"
    )
