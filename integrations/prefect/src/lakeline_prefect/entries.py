"""The Prefect hooks' entries for a flow run and a task run being recorded, and what every
hook does with them: report a problem (or fail, strict), skip one value, make a run the
current one and stop, read a function's source."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from lakeline.errors import StepsNotRecorded
from lakeline.lineage.recorder import Handle, Recorder

from lakeline_prefect.settings import Settings

log = logging.getLogger("lakeline.prefect")


class RecordingFailed(BaseException):
    """lakeline could not record and `strict` is on.

    A BaseException: Prefect logs and swallows exceptions raised by state hooks, so only this
    makes the flow (or task) fail instead.
    """


@dataclass
class Flow:
    settings: Settings
    root: str
    recorder: Recorder | None = None  # None: not recording this flow run
    handle: Handle | None = None
    reported: bool = False
    used: set[str] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)  # path parameters not yet existing
    produced: set[str] = field(default_factory=set)  # by its task runs
    current: AbstractContextManager[Any] | None = None  # its Run as the current run, entered
    started: float = field(default_factory=time.time)
    warned: set[str] = field(default_factory=set)  # values reported as not recorded
    touched: float = field(default_factory=time.monotonic)  # a task hook's last call
    queued: bool = False  # its task runs' ends are recorded later (`ended`)
    since: float | None = None  # the first task hook call of its batch (monotonic)


@dataclass
class Step:
    handle: Handle
    flow: Flow
    attempts: int = 1
    used: set[str] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)  # path parameters not yet existing
    persisted: bool = False  # Prefect persists its result: a later run can hit its cache
    current: AbstractContextManager[Any] | None = None
    started: float = field(default_factory=time.time)


LOCK = threading.RLock()  # the hooks' entries (and the flusher's thread)
_sources: WeakKeyDictionary[Any, str | None] = WeakKeyDictionary()


def problem(flow: Flow, what: str, exc: Exception) -> None:
    """Strict: fail. Otherwise stop recording this flow run and report the problem once; task
    runs a batch left out (StepsNotRecorded: the rest was written) are reported, and the
    flow run's recording goes on."""
    if isinstance(exc, StepsNotRecorded) and not flow.settings.strict:
        log.warning("lakeline: %s", exc)
        return
    flow.recorder = None
    if flow.settings.strict:
        raise RecordingFailed(f"lakeline could not record {what}: {exc}") from exc
    if not flow.reported:
        flow.reported = True
        log.warning(
            "lakeline could not record %s (%s: %s); the flow runs on without lineage "
            "(set LAKELINE_PREFECT_STRICT=1 to fail instead)",
            what,
            type(exc).__name__,
            exc,
        )


def database(exc: BaseException) -> bool:
    """Whether an error is the database's (it stops the flow's recording), not one value's."""
    import lakeline
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError | lakeline.errors.DatabaseUnreachable)


def skip(flow: Flow, path: str, why: str) -> None:
    """One warning per flow run for a value that is not recorded."""
    with LOCK:
        if path in flow.warned:
            return
        flow.warned.add(path)
    log.warning("lakeline did not record %s: %s", path, why.splitlines()[0] if why else "?")


def guarded(flow: Flow, path: str, record: Callable[[], Any]) -> Any:
    """`record()` for one value: its failure (not the database's) is a warning for it only."""
    try:
        return record()
    except Exception as exc:
        if database(exc):
            raise
        skip(flow, path, f"{type(exc).__name__}: {exc}")
        return None


def enter(block: AbstractContextManager[Any]) -> AbstractContextManager[Any]:
    """`block` entered (kept on its run's entry until `_leave`: no ExitStack a task)."""
    block.__enter__()
    return block


def leave(entry: Flow | Step) -> None:
    """Stop making its run the current one (once; a no-op outside the context it was entered
    in)."""
    block, entry.current = entry.current, None
    if block is not None:
        with suppress(ValueError):  # a hook in another context: the one it was set in is gone
            block.__exit__(None, None, None)


def source(fn: Any) -> str | None:
    """The function's source, read once per function (a task runs many times)."""
    fn = inspect.unwrap(fn)
    try:
        return _sources[fn]
    except (KeyError, TypeError):
        pass
    try:
        text: str | None = inspect.getsource(fn)
    except (OSError, TypeError):
        text = None
    with suppress(TypeError):  # not weakly referenceable: read again next time
        _sources[fn] = text
    return text


def reference(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
