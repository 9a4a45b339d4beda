"""Is the process of a run still there? pid + host + the process's start time.

A run records the pid, host and start time of the process that runs it (`track()`,
`@tracked`). On the same host, the run's process is alive when a process with that pid exists
*and* started at the recorded time (a pid reused by another process has another start time).
From another host nothing can be told: the answer is None.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.models import Run

# start times are read from the OS (whole clock ticks since boot) and stored to the microsecond;
# a clock adjustment can move the computed boot time a little
TOLERANCE_SECONDS = 2.0


@cache
def this_host() -> str:
    """The host name runs record (`socket.gethostname()`)."""
    return socket.gethostname()


def process_identity(pid: int | None = None) -> tuple[int, datetime]:
    """(pid, start time) of this process, or of process `pid`."""
    import os

    import psutil

    pid = os.getpid() if pid is None else pid
    started = psutil.Process(pid).create_time()
    return pid, datetime.fromtimestamp(started, UTC)


def process_gone(run: Run) -> bool | None:
    """True when the run's process has ended, False while it runs, None when unknown
    (no process recorded, or recorded on another host)."""
    if run.pid is None or run.process_started_at is None or run.host != this_host():
        return None
    import psutil

    try:
        process = psutil.Process(run.pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # ended, not yet reaped by its parent
            return True
        started = datetime.fromtimestamp(process.create_time(), UTC)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.Error:  # exists, but hidden from us (another user's process on some systems)
        return None
    return abs((started - run.process_started_at).total_seconds()) > TOLERANCE_SECONDS
