"""The Snakemake log handler: `snakemake --logger lakeline`.

Snakemake calls `emit` for every record, in its queue-listener thread; `emit` only keeps the
record. The plugin's own thread takes the kept records in batches (every FLUSH_EVERY, or at
BATCH_RECORDS): parses them, journals them (one write) and records them through the Tracker,
which queues their files and writes the catalog when its batch is due. A record Snakemake
waits for (a temp() removal, a job with update() outputs: see live.py) is taken at once,
with every record before it, in the logging thread. `close` (at the end of the run) finishes what is
open and prints what could not be recorded. Nothing here raises into Snakemake, except with
`strict`: then a catalog that cannot be reached stops the workflow (an interrupt of the main
thread, best effort, and for certain: no job starts once recording has failed, see live.py).
The set-up (connecting; the first job's Recorder and workflow run) runs with the cyclic
collector paused, and then freezes what it tracks (`gc.freeze`) until `close`: Snakemake's
heap and the set-up's objects, which live to the end of the run, are not walked again.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from lakeline.gc_pause import gc_paused
from snakemake_interface_logger_plugins.base import LogHandlerBase

from snakemake_logger_plugin_lakeline.events import from_record, may_carry
from snakemake_logger_plugin_lakeline.live import LiveHook
from snakemake_logger_plugin_lakeline.outcome import note_lineage
from snakemake_logger_plugin_lakeline.settings import LogHandlerSettings
from snakemake_logger_plugin_lakeline.tracker import Tracker, one_line

SNAKEMAKE_LOGGER = "snakemake.logging"
FLUSH_EVERY = 0.5  # seconds between checks for a batch that is due, and of quiet before the
# batch is written whatever its age (a long job: what finished reaches the catalog meanwhile)
BATCH_RECORDS = 2000  # kept records that wake the plugin's thread before FLUSH_EVERY is up


def _quiet_about_progress(quiet: Any) -> bool:
    """Whether Snakemake's quietness suppresses `job_finished` (progress) records."""
    if not quiet:
        return False
    names = {str(getattr(q, "name", q)).lower() for q in quiet}
    return bool(names & {"progress", "all"})


def _freeze() -> bool:
    """Move every object the collector tracks now out of its reach until `close`: Snakemake's
    imports and settings and the plugin's set-up (modules, the engine, the models: alive to
    the end of the run), so that no collection walks them again (Snakemake's full ones
    mid-run: ~100 -> ~25 ms each at 200 jobs). Not if something else froze objects. Called
    with the collector paused over the set-up, which leaves no cyclic garbage to hold."""
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


class LogHandler(LogHandlerBase):
    """Records every job's lineage in a lakeline instance."""

    tracker: Tracker | None
    hook: LiveHook | None

    def __post_init__(self) -> None:
        settings = self.settings if isinstance(self.settings, LogHandlerSettings) else None
        settings = settings or LogHandlerSettings()
        self.strict = bool(settings.strict)
        self.hook = None
        self._lock = threading.Lock()
        self._closed = False
        self.busy = 0.0  # seconds spent recording (reported at the end)
        self._quiet = False  # no event since the batch was last written by the timer
        self._last = time.monotonic()  # when the last event came
        self.cpu = 0.0  # of which CPU time of the threads recording
        self._records: deque[logging.LogRecord] = deque()  # kept for the next batch
        self.tracker = None
        self._froze = False
        if getattr(self.common_settings, "dryrun", False):
            return  # a dry run executes nothing: nothing to record
        # the set-up (imports, connecting, the instance's checks) runs in Snakemake's main
        # thread before any job: counted in the time and CPU reported at the end
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            with gc_paused():  # the set-up's objects live to the end of the run
                self._connect(settings)
                self._froze = _freeze()  # (not if strict stops the run: no close() thaws)
        finally:
            self._spent(start, cpu)
        refusal = self._refusal if self.strict else None
        self.hook = LiveHook(logging.getLogger(SNAKEMAKE_LOGGER), refusal=refusal)
        self.hook.install()
        self._stop = False
        self._wake = threading.Event()
        self._flusher = threading.Thread(target=self._flush_batches, name="lakeline", daemon=True)
        self._flusher.start()

    def _connect(self, settings: LogHandlerSettings) -> None:
        self.tracker = Tracker(
            instance_name=settings.instance,
            upload=bool(settings.upload),
            pipeline=settings.pipeline,
            report=self.report,
            on_failure=self._stop_workflow if self.strict else None,
            expect_finished=not _quiet_about_progress(getattr(self.common_settings, "quiet", None)),
            journaling=settings.journal is not False,
            setting_up=self._first_set_up,
        )
        try:
            self.tracker.connect()
        except Exception as exc:
            if self.strict:
                from snakemake_interface_common.exceptions import WorkflowError

                message = f"lakeline (strict): cannot record lineage: {one_line(exc)}"
                raise WorkflowError(message) from exc
            self.tracker.fail(exc)

    def _flush_batches(self) -> None:
        """Take the kept records every FLUSH_EVERY (sooner if many wait), write a due batch
        even when Snakemake logs nothing for a while, and the batch once it has logged
        nothing for FLUSH_EVERY (a long job runs: what finished reaches the catalog; a step
        only started waits for its finish, or the batch's `started_ms`)."""
        while True:
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            with self._lock:
                if self._stop or self._closed or self.tracker is None:
                    return
                quiet = not self._quiet and time.monotonic() - self._last >= FLUSH_EVERY
                start, cpu = time.perf_counter(), time.thread_time()
                self._take(idle=quiet)
                self._quiet = self._quiet or quiet
                self._spent(start, cpu)

    def _take(self, *, idle: bool = False) -> None:
        """Under the lock: parse, journal and record the kept records, in order, then write
        what is due (`idle`: Snakemake is quiet, the whole batch but the steps only started,
        see `Tracker.apply_many`). Never raises."""
        assert self.tracker is not None
        events = []
        records = self._records
        try:
            while records:
                event = from_record(records.popleft())
                if event is not None:
                    events.append(event)
        except Exception as exc:  # a bug here must not take the workflow down
            self.tracker.fail(exc)
        try:
            self.tracker.apply_many(events, idle=idle)
        except Exception as exc:
            self.tracker.fail(exc)

    @contextlib.contextmanager
    def _first_set_up(self) -> Iterator[None]:
        """The first job sets up the rest (the Recorder, the plugin manager, the workflow's
        run): paused and frozen as the connection was, and only that, not the writes of its
        batch (hashing its files can take long while Snakemake and `run:` jobs go on). The
        pause is lakeline's own, nested across threads: one that another thread begins
        meanwhile, where a collection must not run, outlasts this one."""
        if not self._froze:
            yield
            return
        with gc_paused():
            yield
            gc.freeze()  # (and Snakemake's DAG; ~160 cyclic garbage objects held)

    def _spent(self, start: float, cpu: float) -> None:
        """Add the time since `start` (perf_counter) and this thread's CPU since `cpu`."""
        self.busy += time.perf_counter() - start
        self.cpu += time.thread_time() - cpu

    # -- reporting ------------------------------------------------------------------------------

    def report(self, message: str) -> None:
        """Tell the user (stderr: this plugin does not own Snakemake's output stream)."""
        with contextlib.suppress(OSError, ValueError):
            print(message, file=sys.stderr, flush=True)

    def _stop_workflow(self) -> None:
        """strict: interrupt Snakemake's main thread, as Ctrl-C would (it cancels the jobs).

        Best effort: the interrupt is lost if it lands while Snakemake's log handler writes
        (it swallows KeyboardInterrupt) or if SIGINT is ignored (`snakemake ... &` in a
        script). `_refusal` is what guarantees that no further job starts. Not once the run
        is closing: Snakemake is done then, and an interrupt would only turn the end of the
        run into a traceback (the summary lists what is missing)."""
        if self._closed or threading.current_thread() is threading.main_thread():
            return
        _thread.interrupt_main()

    def _refusal(self) -> str | None:
        """strict: why Snakemake may start no more jobs (recording failed), else None.

        Asked by the LiveHook in Snakemake's scheduling thread as each job is logged."""
        tracker = self.tracker
        if self._closed or tracker is None or tracker.failure is None:
            return None
        return f"cannot record lineage: {tracker.failure}"

    # -- logging.Handler ------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record for the next batch if it may carry an event (`may_carry`); one
        Snakemake waits for is taken at once."""
        done = record.__dict__.get("lakeline_done")
        try:
            if self.tracker is not None:  # (not timed: timing an append costs more than it)
                self._last, self._quiet = time.monotonic(), False
                if done is None and not may_carry(record):
                    return  # progress, shell commands, ...: no event of ours
                self._records.append(record)
                if isinstance(done, threading.Event):
                    with self._lock:
                        start, cpu = time.perf_counter(), time.thread_time()
                        if not self._closed:
                            self._take()
                        self._spent(start, cpu)
                elif len(self._records) >= BATCH_RECORDS:
                    self._wake.set()
        except Exception as exc:  # a bug here must not take the workflow down
            if self.tracker is not None:
                self.tracker.fail(exc)
        finally:
            if isinstance(done, threading.Event):
                done.set()

    def close(self) -> None:
        self._stop = True
        wake = getattr(self, "_wake", None)
        if wake is not None:
            wake.set()
        with self._lock:
            if not self._closed:
                self._closed = True
                if self.hook is not None:
                    self.hook.remove()
                if self.tracker is not None:
                    start, cpu = time.perf_counter(), time.thread_time()
                    try:
                        self._take()
                        lines = self.tracker.close()
                        note_lineage(self.tracker)  # on the run: its lineage incomplete
                    except Exception as exc:
                        self.tracker.fail(exc)
                        lines = self.tracker.summary()
                    self._spent(start, cpu)
                    hook_cpu = 0.0 if self.hook is None else self.hook.cpu
                    done = self.tracker.done_line(self.busy, self.cpu + hook_cpu)
                    if not lines and done and not getattr(self.common_settings, "quiet", None):
                        lines = [done]
                    for line in lines:
                        self.report(line)
                if self._froze:
                    self._froze = False
                    gc.unfreeze()
        super().close()

    # -- what Snakemake asks of a logger plugin -------------------------------------------------

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True  # every record, whatever --quiet says: job events are lineage

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False


__all__ = ["LogHandler"]
