"""Task runs that ended, queued to be recorded later with the others, back to back.

A task run's Recorder calls (its files used and produced, its metadata, its finish) cost 2-3x
more one task at a time between Prefect's own code than back to back (Prefect evicts
lakeline's code and data from the CPU caches: bench/cold_calls.py). So, with a batched
Recorder and not strict, `task_finished` judges at the task's end what only its end can tell
— its status, time and error, which files of its result it wrote, the files it opened, the
state (inode, size, mtime, ctime) of each file — and queues the rest here: the queue is
recorded just before a batch is written (due in a hook, by the idle flusher, before a body
reads its run, before a flow run's finish, at process exit) and before anything reads what
it would record (a task run that starts with a queued one's output as its parameter, a task
run recorded at once).

A file changed between the end and the recording (another task rewrote it) is left out
with a warning, never recorded with the other task's bytes. What a stat cannot vouch for is
not queued (the task run is recorded at its end): a folder (a file inside rewritten in place
leaves its stat as it was), a remote object, a path with no file.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lakeline.errors import StepsNotRecorded
from lakeline.lineage.recorder import BatchRecorder, file_state

from lakeline_prefect.files import remote

log = logging.getLogger("lakeline.prefect")

State = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns


def state_of(path: str) -> State | None:
    """A local regular file's state; None for a remote object, a folder or no file."""
    return None if remote(path) else file_state(path)


@dataclass
class Finish:
    """What a task run's end told, for recording it (`step`: the hooks' entry of the run).

    `used`: (path, role) of files used that its start did not record; `produced`: its
    outputs; `cache`: (task name, storage key) of a cache hit, to look its original up;
    `states`: each file's state at the end, when recorded later (empty: recorded at once)."""

    step: Any
    name: str
    status: str
    finished_at: datetime | None
    error: str | None
    used: list[tuple[str, str]] = field(default_factory=list)
    produced: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    cache: tuple[str, str] | None = None
    states: dict[str, State] = field(default_factory=dict)

    def judged(self) -> bool:
        """Take the state of each file now (at the task's end): False if a file of it has
        none a stat can vouch for (then it is recorded now)."""
        for path in [*(p for p, _ in self.used), *self.produced]:
            state = state_of(path)
            if state is None:
                return False
            self.states[path] = state
        return True

    def changed(self, path: str) -> bool:
        """Whether a file is not as the task's end left it (another task rewrote it since):
        it is then not recorded as this task run's (a warning; a missing edge, not a wrong
        one)."""
        seen = self.states.get(path)
        if seen is None or state_of(path) == seen:
            return False
        log.warning(
            "lakeline: %s changed after task run %r ended (another task wrote it): "
            "not recorded as its",
            path,
            self.name,
        )
        return True


class Ended:
    """The queue of task runs that ended, recorded in the order they ended by `record`
    (`finish(entry)`: the hooks' recording of one, which reports its own problems)."""

    def __init__(
        self, finish: Callable[[Finish], None], running: Callable[[], Iterable[Any]] = tuple
    ) -> None:
        self._finish = finish
        self._running = running  # the Recorders of the flow runs being recorded (at exit)
        self._queue: list[Finish] = []
        self._lock = threading.Lock()  # the queue
        self._recording = threading.RLock()  # one pass at a time, in order
        # outputs of the queued task runs, until recorded (a task run using one waits): added
        # to in place (a new set a pass, not a new one an end: quadratic in a batch)
        self.made: set[str] = set()
        self._exit = False

    def __len__(self) -> int:
        return len(self._queue)

    def queue(self, entry: Finish) -> None:
        with self._lock:
            if not self._exit:  # registered after the Recorders: run before their flush;
                atexit.register(self.at_exit)  # before the first end is queued, never after
                self._exit = True
            self._queue.append(entry)
            self.made.update(entry.produced)

    def record(self) -> list[Any]:
        """Record the task runs queued so far (after a pass another thread is making);
        returns their hooks' entries. Interrupted (a Ctrl-C), the task runs not recorded yet
        are queued again, first, the one being recorded with them (recorded again: the same
        edges and finish, no other fact)."""
        with self._recording:
            taken: list[Finish] = []
            done = 0
            try:  # taken inside: an interrupt as the lock is released queues them again
                with self._lock:
                    taken, self._queue = self._queue, []
                for entry in taken:
                    self._finish(entry)
                    done += 1
            finally:
                with self._lock:
                    self._queue[:0] = taken[done:]
                    self.made = {p for e in self._queue for p in e.produced}
            return [entry.step for entry in taken]

    def settled(self, recorder: Any) -> bool:
        """Whether no queued end goes into `recorder`, checked between passes; if none does,
        its batch is written (`flush`, which raises if it fails) before another pass can put
        one in it: what it holds is then written."""
        with self._recording:
            with self._lock:
                if any(entry.step.flow.recorder is recorder for entry in self._queue):
                    return False
            if isinstance(recorder, BatchRecorder):
                try:
                    recorder.flush()
                except StepsNotRecorded as exc:  # left out, the rest written
                    log.warning("lakeline: %s", exc)
            return True

    def at_exit(self) -> None:
        """Process exit: record what is queued (after a pass the flusher is making) and write
        the Recorder of each flow run being recorded and each the ends went into (a Recorder
        made after this was registered has flushed already: its exit handler ran first)."""
        steps = self.record()
        recorders = {id(r): r for r in self._running()}
        recorders.update((id(s.flow.recorder), s.flow.recorder) for s in steps)
        for recorder in recorders.values():
            if not isinstance(recorder, BatchRecorder):  # none, or plain: nothing queued
                continue
            try:
                recorder.flush()
            except StepsNotRecorded as exc:  # the rest was written
                log.warning("lakeline: %s", exc)
            except Exception as exc:  # exiting: say what was lost, never raise from atexit
                log.warning("lakeline: the last task runs could not be written: %s", exc)
