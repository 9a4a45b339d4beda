"""Fault kit: real failures at real points, for the integrity tests.

- `rewrite_at(point, path, data)`: rewrite a file when lakeline reaches a checkpoint (a file
  that changes while it is saved).
- `fail_at(point)`: raise `InjectedFailure` when lakeline reaches a checkpoint (e.g. inside a
  transaction, after its INSERTs).
- `conflict(instance)`: the error a concurrent writer's commit makes a transaction fail with.
- `Pause`: hold a real lakeline operation in another process at a checkpoint until the test
  lets it go (a save between storing its bytes and writing its records).
- `second_while_held(target, args, second, engine, what)`: the same operation again in a thread
  while the first is held at its pause; the first goes on once the second waits for a lock.
- `kill_at_random(target, args, seed, within)`: run a function in a fresh process and kill -9
  it a random time after it starts its work.
- `database_down(instance)`: make the instance's database unreachable, then bring it back
  (PostgreSQL: no new connections and its sessions ended; SQLite: its file swapped for a
  folder).

Nothing here is a mock: files really change, processes really die, connections really fail.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lakeline import checkpoints
from lakeline.instance import Instance
from sqlalchemy import create_engine, text

SPAWN = multiprocessing.get_context("spawn")


@contextmanager
def rewrite_at(point: str, path: Path, data: bytes, *, times: int = 1) -> Iterator[list[int]]:
    """Rewrite `path` with `data` (plus a counter, so each rewrite differs) the first
    `times` times `point` is reached; yields the list of rewrites done."""
    done: list[int] = []

    def hook() -> None:
        if len(done) < times:
            done.append(1)
            path.write_bytes(data + str(len(done)).encode())
            os.utime(path, ns=(time.time_ns(), time.time_ns() + len(done)))  # a new mtime

    with checkpoints.at(point, hook):
        yield done


class InjectedFailure(RuntimeError):
    """The failure `fail_at` raises."""


@contextmanager
def fail_at(point: str, before: Callable[[], None] | None = None) -> Iterator[list[int]]:
    """Raise InjectedFailure each time `point` is reached (after calling `before`, which can
    record what happened so far); yields the list of failures raised."""
    raised: list[int] = []

    def hook() -> None:
        if before is not None:
            before()
        raised.append(1)
        raise InjectedFailure(f"injected failure at {point}")

    with checkpoints.at(point, hook):
        yield raised


@contextmanager
def raise_once_at(point: str, error: BaseException) -> Iterator[list[int]]:
    """Raise `error` the first time `point` is reached (a transient failure: a conflict, a
    lost connection), pass after; yields the list of times it was reached."""
    reached: list[int] = []

    def hook() -> None:
        reached.append(1)
        if len(reached) == 1:
            raise error

    with checkpoints.at(point, hook):
        yield reached


def conflict(instance: Instance) -> Exception:
    """What a concurrent writer makes a write transaction fail with, as the driver raises it
    (a save or a flush retries it): PostgreSQL a unique violation (the other committed the
    same key first); SQLite a busy database (its writers never interleave otherwise)."""
    import sqlite3

    from sqlalchemy.exc import IntegrityError, OperationalError

    if instance.dialect == "postgresql":
        from psycopg.errors import UniqueViolation

        return IntegrityError("INSERT", {}, UniqueViolation("duplicate key (injected)"))
    busy = sqlite3.OperationalError("database is locked (injected)")
    busy.sqlite_errorcode = 5  # SQLITE_BUSY
    return OperationalError("INSERT", {}, busy)


class Pause:
    """A checkpoint hold shared with a child process: the child calls `hold()` at the point
    (from its hook), the test waits for `reached()` and then calls `release()`."""

    def __init__(self) -> None:
        self._reached = SPAWN.Event()
        self._go = SPAWN.Event()

    def hold(self) -> None:
        self._reached.set()
        if not self._go.wait(120):
            raise TimeoutError("the test never released the pause")

    def reached(self, timeout: float = 120) -> bool:
        return self._reached.wait(timeout)

    def release(self) -> None:
        self._go.set()


def run_paused(target: Callable[..., Any], *args: Any) -> tuple[Any, Pause]:
    """Start `target(pause, *args)` in a fresh process; returns (process, pause)."""
    pause = Pause()
    process = SPAWN.Process(target=target, args=(pause, *args))
    process.start()
    return process, pause


def second_while_held(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    second: Callable[[], Any],
    engine: Any,
    what: str,
    *,
    waits: bool = True,
) -> tuple[int | None, list[Any]]:
    """`target(pause, *args)` held at its pause in a fresh process while `second()` runs in a
    thread; once that waits for a lock (`waits`: PostgreSQL; `what` names it in the failure)
    the process goes on. Returns (the process's exit code, [what `second` returned or raised])."""
    import threading

    from statements import until_waiting_on_a_lock

    process, pause = run_paused(target, *args)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(second())
        except Exception as exc:  # reported by the caller's assertion
            outcome.append(exc)

    thread = threading.Thread(target=run)
    try:
        assert pause.reached()
        thread.start()
        if waits:
            until_waiting_on_a_lock(engine, thread, what)
    finally:
        pause.release()
        process.join(120)
        thread.join(120)
    return process.exitcode, outcome


def kill_at_random(
    target: Callable[..., Any], args: tuple[Any, ...], *, seed: int, within: float
) -> int | None:
    """Run `target(started, *args)` in a fresh process and kill -9 it a random time (seeded,
    at most `within` seconds) after it calls `started.set()` (when its real work begins, past
    the interpreter start); returns its exit code (None: it finished first)."""
    started = SPAWN.Event()
    process = SPAWN.Process(target=target, args=(started, *args))
    process.start()
    if not started.wait(120):
        raise TimeoutError("the process never started its work")
    process.join(random.Random(seed).uniform(0.0, within))
    if process.exitcode is not None:
        return None
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    return process.exitcode


@contextmanager
def database_down(instance: Instance) -> Iterator[None]:
    """The instance's database unreachable inside the block (existing connections die too)."""
    engine = instance.engine
    url = engine.url
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        db = Path(url.database)
        engine.dispose()
        moved = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
        for p in moved:
            p.rename(p.with_name(p.name + ".down"))
        db.mkdir()  # opening a folder as a database fails
        try:
            yield
        finally:
            db.rmdir()
            for p in moved:
                p.with_name(p.name + ".down").rename(p)
        return
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": name},
            )
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            engine.dispose()
    finally:
        admin.dispose()
