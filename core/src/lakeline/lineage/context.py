"""Which run is current: a ContextVar per thread/async task, falling back to the tracked run.

`track()` sets the process-wide run of a script or notebook, which every thread sees;
`@tracked` functions and the Recorder set the ContextVar, so concurrent calls (threads,
asyncio tasks) each attribute their inputs and outputs to their own run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.models import Run

_run: ContextVar[Run | None] = ContextVar("lakeline_run", default=None)
# how to get the current run written when it is read before it is (a BatchRecorder's queued run)
_written: ContextVar[Callable[[], Run] | None] = ContextVar("lakeline_run_written", default=None)
_process_run: Run | None = None


def current_run() -> Run | None:
    """The run that inputs and outputs are attributed to right now, if any."""
    run = _run.get()
    if run is not None and not _committed(run) and (written := _written.get()) is not None:
        return written()
    return run or _process_run


def _committed(run: Run) -> bool:
    """Whether a run is in the database: it has an id and was stamped with its instance. A
    BatchRecorder's flush sets the ids of the runs it inserts inside its transaction and
    stamps them after the commit: a run read in between (another thread's flush) is written
    first (`written` waits for that flush), not named by a save its database refuses."""
    return run.id is not None and "_lakeline_instance" in run.__dict__  # db.session.INSTANCE_ATTR


def current_run_in(instance: Instance) -> Run | None:
    """The current run if it belongs to `instance` (a run of another instance cannot be
    linked to its records: then None, with a warning)."""
    import warnings

    from lakeline.db.session import instance_of

    run = current_run()
    owner = None if run is None else instance_of(run)
    if run is None or owner is None or owner.uid == instance.uid:
        return run
    warnings.warn(
        f"run {run.uid} of instance {owner.name!r} is current, but this writes to instance "
        f"{instance.name!r}: it is not linked to that run (links cannot cross instances)",
        stacklevel=3,
    )
    return None


def set_process_run(run: Run | None) -> None:
    """Make `run` the run of the whole process (what `track()` does)."""
    global _process_run
    _process_run = run


def process_run() -> Run | None:
    """The run `track()` started in this process, if any."""
    return _process_run


@contextmanager
def run_context(run: Run, written: Callable[[], Run] | None = None) -> Iterator[Run]:
    """Attribute what happens inside the block (in this thread or task) to `run`.

    `written`: for a run not yet in the database, writes it and returns it (as the database
    holds it); called when the block reads the current run while its id is unset."""
    token, how = _run.set(run), _written.set(written)
    try:
        yield run
    finally:
        _written.reset(how)
        _run.reset(token)
