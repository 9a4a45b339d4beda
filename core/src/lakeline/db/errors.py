"""Driver errors a user can act on, as one clear LakelineError line.

`install(engine)` registers a `handle_error` listener: SQLAlchemy calls it for every failed
statement and connection attempt, and the LakelineError it returns is raised instead. Errors
the code handles itself pass through untouched: unique violations, deadlocks and serialization
failures (save retries them), a missing table (how a schema check tells "no schema"), pings
of the pool (it replaces the connection).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from lakeline.errors import (
    DatabaseCorrupted,
    DatabaseLocked,
    DatabasePermissionDenied,
    DatabaseUnreachable,
    InvalidValue,
    LakelineError,
    PermissionDenied,
    QueryError,
)

# SQLite primary result codes (extended codes carry them in their low byte)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 14, 26
SQLITE_CONSTRAINT_FOREIGNKEY = 787  # an extended code: SQLITE_CONSTRAINT (19) | 3 << 8
SQLITE_CONSTRAINT_UNIQUE = (1555, 2067)  # PRIMARYKEY (6 << 8), UNIQUE (8 << 8)
UNIQUE_VIOLATION = "23505"
# PostgreSQL SQLSTATEs: retried by save, or handled where they occur
PASS_THROUGH = frozenset({"40P01", "40001", "42P01", "3F000"})
VALUE_STATES = frozenset({"22001", "22003", "22021", "22P05", "54000", "22P02"})
LOST_STATES = frozenset({"57P01", "57P02", "57P03", "3D000", "08000", "08003", "08006", "08001"})
T = TypeVar("T")
RETRIES = 5  # attempts of a write transaction that another writer's commit got in the way of


def retryable(exc: DBAPIError) -> bool:
    """Whether a failed write transaction is worth running again, as a concurrent writer can
    make one fail: on PostgreSQL a unique violation (another transaction committed the same
    key, version or record first: a retry sees the winner), a deadlock or a serialization
    failure; on SQLite a busy or locked database (its writers take the lock at BEGIN: no
    other can commit between a save's reads and its writes). Never a foreign-key, NOT NULL or
    CHECK violation, which the same statement meets again. `RETRIES` attempts at most."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return state == UNIQUE_VIOLATION or conflicted(exc)
    code = getattr(orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


def foreign_key_violation(exc: BaseException) -> bool:
    """Whether `exc` is a foreign key's refusal: a row names one that does not exist, or a
    deleted row is still named (PostgreSQL 23503; SQLite SQLITE_CONSTRAINT_FOREIGNKEY)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if getattr(orig, "sqlstate", None) == "23503":
        return True
    return getattr(orig, "sqlite_errorcode", None) == SQLITE_CONSTRAINT_FOREIGNKEY


def unique_violation(exc: BaseException) -> bool:
    """Whether `exc` is a unique index's refusal: another row holds the same key (PostgreSQL
    23505; SQLite SQLITE_CONSTRAINT_UNIQUE or _PRIMARYKEY)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if getattr(orig, "sqlstate", None) == UNIQUE_VIOLATION:
        return True
    return getattr(orig, "sqlite_errorcode", None) in SQLITE_CONSTRAINT_UNIQUE


def conflicted(exc: BaseException) -> bool:
    """Whether `exc` is a deadlock or a serialization failure (PostgreSQL): another writer got
    in the way, the transaction rolled back; running it again may succeed."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return getattr(orig, "sqlstate", None) in ("40P01", "40001")


def with_retries(attempt: Callable[[], T], also: Callable[[DBAPIError], bool] | None = None) -> T:
    """`attempt()`, one write transaction, run again after a deadlock or a serialization
    failure (`conflicted`) or an error `also` says another writer caused, `RETRIES` attempts
    at most, as a save's transaction is."""
    for n in range(RETRIES):
        try:
            return attempt()
        except DBAPIError as exc:
            if n == RETRIES - 1 or not (conflicted(exc) or (also is not None and also(exc))):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def reason_of(exc: BaseException) -> str:
    """The first line of the driver's message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def busy_timeout_s() -> float:
    """How long a SQLite writer waits for the lock: $LAKELINE_SQLITE_BUSY_TIMEOUT seconds,
    else 60."""
    raw = os.environ.get("LAKELINE_SQLITE_BUSY_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else 60.0
    except ValueError:
        value = 60.0
    return value if value >= 0 else 60.0


def _sqlite(orig: BaseException, where: str, statement: str | None) -> LakelineError | None:
    code = getattr(orig, "sqlite_errorcode", None)
    if code is None:
        if isinstance(orig, OverflowError):
            return QueryError(f"a number does not fit a 64-bit integer: {orig}")
        return None
    primary = code & 0xFF
    reason = reason_of(orig)
    if primary in (SQLITE_BUSY, SQLITE_LOCKED):
        return DatabaseLocked(
            f"the database {where} is locked by another writer for more than "
            f"{busy_timeout_s():g} s ({reason}): try again when it has finished "
            "(LAKELINE_SQLITE_BUSY_TIMEOUT sets the wait in seconds)"
        )
    if primary == SQLITE_NOTADB:
        return DatabaseCorrupted(
            f"the database file {where} is not a SQLite database or is damaged ({reason}): "
            f"restore it from a backup ({os.path.basename(where)}.backup-*)"
        )
    if primary == SQLITE_CORRUPT:
        return DatabaseCorrupted(
            f"the database file {where} is damaged ({reason}): restore it from a backup "
            f"({os.path.basename(where)}.backup-*) or try `sqlite3 {where} .recover`"
        )
    if primary == SQLITE_READONLY:
        return DatabasePermissionDenied(
            f"the database file {where} cannot be written ({reason}): check its permissions "
            "and those of its folder"
        )
    if primary in (SQLITE_CANTOPEN, SQLITE_IOERR):
        return DatabaseUnreachable(
            f"cannot open or read the database file {where} ({reason}): it was moved, "
            "deleted or its disk failed; check the path in the instance config"
        )
    return None


def _postgres(
    orig: BaseException, where: str, user: str | None, statement: str | None, lost: bool
) -> LakelineError | None:
    """`lost`: the connection failed (an OperationalError with no SQLSTATE, or SQLAlchemy
    saw a disconnect)."""
    state = getattr(orig, "sqlstate", None)
    reason = reason_of(orig)
    if state in PASS_THROUGH:
        return None
    if state == "42501" and reason.startswith("lakeline: "):  # raised by lakeline's triggers
        return PermissionDenied(reason.removeprefix("lakeline: "))
    if state == "42501":
        return _denied(reason, user, statement)
    if state in VALUE_STATES or "NUL (0x00)" in reason:
        return InvalidValue(f"the database cannot store a value: {reason}")
    if "number of parameters must be between" in reason:
        return QueryError(f"the query has too many values for one statement: {reason}")
    if lost or state in LOST_STATES or (state or "").startswith("08"):
        return DatabaseUnreachable(
            f"cannot reach the database {where}: {reason}. Check that the server runs, "
            "the URL and the credentials"
        )
    if (state or "").startswith("28"):  # authentication
        return DatabaseUnreachable(
            f"the database {where} refused the login: {reason}. Check the credentials"
        )
    return None


# the first word of a refused statement -> what the role may not do, and the level it needs
_ACTIONS = {
    "SELECT": ("read", "read"),
    "WITH": ("read", "read"),
    "INSERT": ("write to", "write"),
    "COPY": ("write to", "write"),
    "UPDATE": ("update", "write"),
    "DELETE": ("delete from", "write"),
}


# a SELECT's row-locking clause (FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE): PostgreSQL
# requires the UPDATE privilege for it (a delete or an edit reads its record so)
_LOCKING = re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)


def _denied(reason: str, user: str | None, statement: str | None) -> PermissionDenied:
    """A GRANT-level refusal as one line: the action, the object and the role it needs."""
    words = (statement or "").split(None, 1)
    verb = words[0].upper() if words else ""
    what = reason.removeprefix("permission denied for ").strip()
    if what.startswith("sequence"):  # drawing ids: a write
        verb = "INSERT"
    if "row-level security" in reason:  # a space the role is not a member of
        table = reason.rsplit(" ", 1)[-1]
        return PermissionDenied(
            f"permission denied: role {user!r} may not write rows of that space into {table}: "
            "it is a member of other spaces only (`lakeline access list`)"
        )
    action, level = _ACTIONS.get(verb, ("change the schema of", "owner"))
    if level == "read" and _LOCKING.search(statement or ""):  # needs UPDATE: a write
        action, level = "lock rows of", "write"
    if what.split(" ")[-1] in ("settings", "spaces", "space_members") and level == "write":
        level = "admin"
    need = (
        "the owner of the catalog's tables"
        if level == "owner"
        else f"the lakeline {level!r} role (an admin runs `lakeline access grant {user} {level}`)"
    )
    return PermissionDenied(
        f"permission denied: role {user!r} may not {action} {what}: needs {need}"
    )


def translate(
    exc: BaseException, engine: Engine, statement: str | None = None, role: str | None = None
) -> Exception | None:
    """The LakelineError standing for driver error `exc`, or None to let it through (`role`:
    the role connected, if known; else the URL's, which may name none)."""
    if isinstance(exc, LakelineError):
        return exc
    if isinstance(exc, IntegrityError):
        return None
    orig: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    if isinstance(orig, LakelineError):  # raised by a type's bind check
        return orig
    url = engine.url
    if engine.dialect.name == "sqlite":
        return _sqlite(orig, str(url.database or ":memory:"), statement)
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    lost = lost or (isinstance(exc, OperationalError) and getattr(orig, "sqlstate", None) is None)
    where = url.render_as_string(hide_password=True)
    return _postgres(orig, where, role or url.username, statement, lost)


def install(engine: Engine) -> None:
    """Translate `engine`'s driver errors into LakelineErrors (see the module doc)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> Exception | None:
        if context.is_pre_ping:
            return None
        original = context.original_exception
        if isinstance(original, LakelineError):
            return original
        error = context.sqlalchemy_exception or original
        return translate(error, engine, context.statement, _role(context))


def _role(context: Any) -> str | None:
    """The role the failed statement's connection logged in as, as libpq says (no query): the
    URL may name none (PGUSER, the OS user, a service file). None if not known."""
    if context.is_disconnect or context.dialect.name != "postgresql":
        return None
    try:  # the statement's connection (a failed connect has none): its psycopg connection
        if context.execution_context is not None:
            return str(context.execution_context.cursor.connection.info.user)
        # a statement of `driver_rows` (no execution context): its Connection's
        return str(context.connection.connection.driver_connection.info.user)
    except Exception:  # none, or closed meanwhile: the URL's, as before
        return None
