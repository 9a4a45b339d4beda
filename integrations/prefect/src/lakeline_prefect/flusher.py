"""The thread that writes the batches of flow runs whose task hooks are idle.

A busy flow's hooks flush their own batch when it is due (`steps` finished tasks or `ms`,
large: a flush has a fixed cost, so big batches cost less per task); while a long task runs
no hook is called, so this thread writes what is queued once the hooks have been idle for
`IDLE` seconds: a finished task run reaches the catalog within about a second whatever the
batch's age. The task runs that ended and wait to be recorded (`ended`) are recorded first,
back to back, by this thread. Task runs that only started wait for their end, or the
Recorder's `started_ms` (10 s), so that each is written once (`BatchRecorder.flush_idle`).
It runs while flow runs are recorded and stops when none is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from lakeline.errors import StepsNotRecorded
from lakeline.lineage.recorder import BatchRecorder

from lakeline_prefect.files import AUDIT

IDLE = 0.5  # s without a task hook call before a due batch is flushed here
log = logging.getLogger("lakeline.prefect")


class Flusher:
    """Flushes due batches of `running()`: (recorder, monotonic time of the last task hook
    call) per flow run being recorded; taken under `lock`, which also guards the thread.
    `record()`: records what waits to go into the batches, before each flush; `flushing(
    recorder)`: told first (the hooks start their batch's age anew, as after their flush)."""

    def __init__(
        self,
        running: Callable[[], Iterable[tuple[Any, float]]],
        lock: threading.RLock,
        record: Callable[[], Any] = lambda: None,
        flushing: Callable[[Any], None] = lambda recorder: None,
    ) -> None:
        self._running, self._lock, self._record = running, lock, record
        self._flushing = flushing  # told before a recorder's batch is written here
        self._thread: threading.Thread | None = None
        self._said: str | None = None  # the last failed flush's error, said once

    def start(self) -> None:
        """Start the thread unless it runs (call with a flow run registered in `running`)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="lakeline-prefect-flusher", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(IDLE / 2)
            with self._lock:
                flows = list(self._running())
                if not flows:
                    self._thread = None
                    return
            for recorder, touched in flows:
                if isinstance(recorder, BatchRecorder) and time.monotonic() - touched > IDLE:
                    try:
                        self._flushing(recorder)
                        with AUDIT.quiet():
                            self._record()  # the task runs that ended, into the batch
                            recorder.flush_idle()  # started only: at its end or started_ms
                    except StepsNotRecorded as exc:  # left out, the rest written: said once
                        log.warning("lakeline: %s", exc)
                    except Exception as exc:  # queued again: the next flush writes it
                        said = f"{type(exc).__name__}: {exc}"
                        if said != self._said:  # once per error, not every IDLE / 2 s
                            log.warning("lakeline could not write a batch (kept): %s", said)
                        self._said = said
                    else:
                        self._said = None
