"""Named points on lakeline's write paths where a test can pause or fail a real operation.

`reach(name)` does nothing unless a hook is set for `name` with `at(name, hook)`. Tests use it
to hold a real save between storing its bytes and writing its records while another process
deletes or collects garbage. Points: `save.stored` (bytes stored, records not yet written),
`source.read` (a file's bytes were read, hashed or copied; its stat not yet checked again),
`save.written` (a one-thread save's records written, not committed), `delete.deleted` (a
delete's row deleted, the previous version not yet made the latest, not committed),
`save.committed` (a one-thread save's records committed, the save not yet finished),
`save.read_keys` (a save's records' transaction met keys its plans' locations keep, not yet
locked nor read),
`save.claimed` (a pipelined save's writer thread: every record written, the objects locked and
checked, the commit next),
`object.written` (a new object's bytes in a named temporary file, on a filesystem without
unnamed ones; not yet linked into place), `recorder.flush` (a BatchRecorder's batch half
written inside its transaction), `recorder.transform` (a Recorder's new transform written,
not committed), `recorder.clash` (a Recorder's insert of a run met one recorded under its
engine id, not yet looked up), `gc.listed` (`lakeline gc` found its garbage and is about to
remove it),
`migrate.locked` (a migration holds the database's migration lock, nothing migrated yet),
`migrate.audits` (`lakeline migrate` at head made the triggers and audit functions again,
not committed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_hooks: dict[str, Callable[[], None]] = {}


def reach(name: str) -> None:
    """Run the hook set for `name`, if any."""
    hook = _hooks.get(name)
    if hook is not None:
        hook()


@contextmanager
def at(name: str, hook: Callable[[], None]) -> Iterator[None]:
    """Run `hook` whenever `name` is reached inside this block."""
    previous = _hooks.get(name)
    _hooks[name] = hook
    try:
        yield
    finally:
        if previous is None:
            _hooks.pop(name, None)
        else:
            _hooks[name] = previous
