"""What integrations need besides the Recorder, as public functions (re-exported by
`lakeline.lineage.recorder`, the module integrations import):

- `current(handle)`: make a step's run the current run inside a block, so artifacts saved or
  loaded with the lakeline API there are its outputs and inputs; `current_run()`: that run.
- `location_exists(location)`: whether a file or object exists now (True/False), or None when
  it cannot be reached (no filesystem for the scheme, no credentials, no network).
- `written_since(path, moment)`: whether a step that started at `moment` may have written the
  file (only what a step wrote gets it as producer; a file it only returned is a use).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from lakeline.lineage.context import current_run, run_context

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.lineage.handles import Handle
    from lakeline.models import Run

__all__ = ["current", "current_run", "location_exists", "written_since"]

# the kernel stamps files with a coarse clock (updated every tick, <= 10 ms behind the one
# `datetime.now()` reads); filesystems that keep whole seconds (FAT keeps 2 s) get 2 s
_SLACK = 0.05
_COARSE_SLACK = 2.0


@contextmanager
def current(step: Handle, written: Callable[[], Run] | None = None) -> Iterator[Run]:
    """Make the step's (or workflow's) run the current run inside the block (in this thread
    or task).

    `written`: for a step a BatchRecorder queued, writes its run (a flush) and returns it;
    called only if the block reads the current run (saves or loads with the lakeline API)
    before the batch is flushed."""
    with run_context(step.run, written) as run:
        yield run


def location_exists(
    location: str | os.PathLike[str], instance: Instance | None = None
) -> bool | None:
    """Whether the local path or URL exists now, through the filesystem (and options) of the
    storage of `instance` (default: the current one) that contains it; None when it cannot
    be reached."""
    from lakeline.storage.roots import protocol_of

    text = os.fspath(location)
    if protocol_of(text) == "local":
        return os.path.exists(text)
    from lakeline.artifacts.locate import fs_for_location
    from lakeline.instance import current

    try:
        return bool(fs_for_location(text, instance or current()).exists(text))
    except Exception:  # no filesystem for the scheme, no credentials, no network, ...
        return None


def _changed(stat: os.stat_result) -> tuple[float, bool]:
    """The last time the entry's bytes or metadata changed, and whether the filesystem keeps
    whole seconds only."""
    whole = stat.st_mtime_ns % 1_000_000_000 == 0 and stat.st_ctime_ns % 1_000_000_000 == 0
    return max(stat.st_mtime, stat.st_ctime), whole


def written_since(path: str | os.PathLike[str], moment: datetime | float) -> bool:
    """Whether the local file (or any entry of the folder) at `path` was created or changed at
    or after `moment` (a timezone-aware datetime or a POSIX timestamp), judged by its mtime and
    ctime (a copy keeping the source's mtime still has a new ctime).

    True when nothing tells otherwise: a path that does not exist, or a URL.
    """
    from lakeline.storage.roots import protocol_of

    text = os.fspath(path)
    if protocol_of(text) != "local":
        return True
    since = moment.timestamp() if isinstance(moment, datetime) else float(moment)
    try:
        for entry in _entries(text):
            changed, whole = _changed(os.stat(entry))
            if changed >= since - (_COARSE_SLACK if whole else _SLACK):
                return True
    except OSError:  # gone (meanwhile)
        return True
    return False


def _entries(path: str) -> Iterator[str]:
    """The path, and everything inside it when it is a folder (stops when the caller does)."""
    yield path
    if os.path.isdir(path):
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                yield os.path.join(folder, name)
