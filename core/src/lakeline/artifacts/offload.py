"""This process's side of the file worker (artifacts/filework.py): started at the first save
that uses it, kept for the next ones, ended at exit, at `lakeline.disconnect()`, or once it
failed (the next save starts another).

One save at a time uses it (`Worker.lock`); another save meanwhile (another thread) stores
its files itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lakeline.artifacts.filework import CHUNK, RESULT, Pipe, Result
from lakeline.errors import StorageError

if TYPE_CHECKING:
    import subprocess

    from lakeline.instance import Instance
    from lakeline.models import Artifact

# lakeline imported from the folder this process imported it from (its submodules then
# from the package's own path), that folder not put on sys.path: a site-packages first on
# the path would put what it holds (a backport named as a standard module) before the
# standard library, which this process imports first
_BOOT = (
    "import sys, importlib.util as u; from importlib.machinery import PathFinder; "
    "s = PathFinder.find_spec('lakeline', [sys.argv[1]]); m = u.module_from_spec(s); "
    "sys.modules['lakeline'] = m; s.loader.exec_module(m); "
    "from lakeline.artifacts.filework import main; main(sys.argv[2:])"
)


class Worker:
    """A running worker process and the pipes to it."""

    def __init__(self) -> None:
        import subprocess

        import lakeline

        to_worker, from_worker = os.pipe(), os.pipe()  # not inherited but as passed
        ours = (from_worker[0], to_worker[1])
        theirs = (to_worker[0], from_worker[1])
        # isolated (-I): no PYTHON* variables, user site or current folder on its path;
        # lakeline from the folder this process imported it from (the same code, whatever
        # sys.path is: `_BOOT`)
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(lakeline.__file__)))
        # its file names' encoding this process's: -I drops PYTHONUTF8, and under a locale
        # not UTF-8 the worker would encode the same names to other bytes (other files)
        utf8 = f"utf8={sys.flags.utf8_mode}"
        try:
            self.process: subprocess.Popen[bytes] = subprocess.Popen(
                [sys.executable, "-I", "-X", utf8, "-c", _BOOT, package_parent, *map(str, theirs)],
                pass_fds=theirs,
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            for fd in (*ours, *theirs):
                os.close(fd)
            raise
        for fd in theirs:
            os.close(fd)
        self.pipe = Pipe(*ours)
        self.pid = os.getpid()  # the process that started it (a fork's child does not own it)
        self.lock = threading.Lock()
        self.broken = False
        self.answered = False  # a message came from it: it started

    def end(self, *, kill: bool = False) -> None:
        """Close its pipes (it ends at their end; killed when `kill`, or when it does not end
        within 5 s) and wait for it: no zombie, no descriptor left."""
        import subprocess

        self.broken = True
        self.pipe.close()
        if kill:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def gone(self) -> StorageError:
        """The error of a save whose worker ended under it (it is waited for)."""
        self.end()
        code = self.process.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        if not self.answered and code is not None and code > 0:  # it exited at its start
            # (not a Python: an embedding host, a frozen app; not killed, as after a Ctrl-C):
            _unbootable.append(True)  # this process's saves store their files themselves
            return StorageError(
                f"the file worker process ({sys.executable} -I, pid {self.process.pid}) ended "
                f"before it answered ({how}): nothing was saved; save again (this process "
                "stores the files of its saves itself from now on)"
            )
        return StorageError(
            f"the file worker process (pid {self.process.pid}) ended during the save ({how}): "
            "nothing was saved; save again"
        )


_worker: Worker | None = None
_guard = threading.Lock()
_unbootable: list[bool] = []  # a worker of this process ended before it answered


def available() -> bool:
    """Whether a worker process can be started here: a Python executable to start (not a
    frozen app's), and no worker of this process that could not start."""
    return (
        bool(sys.executable)
        and not getattr(sys, "frozen", False)
        and not _unbootable
        and hasattr(os, "pipe")
        and os.name == "posix"
    )


def acquire() -> Worker | None:
    """The process's worker, started if there is none, locked for one save; None when
    another save uses it."""
    global _worker
    with _guard:
        worker = _worker
        if worker is not None and (worker.broken or worker.pid != os.getpid()):
            worker = _worker = None
        if worker is None:
            worker = _worker = Worker()
            _register()
        if not worker.lock.acquire(blocking=False):
            return None
        return worker


def end() -> None:
    """End the worker of this process, if any (at exit, `lakeline.disconnect()`)."""
    global _worker
    with _guard:
        worker, _worker = _worker, None
    if worker is not None and worker.pid == os.getpid():
        # a save using it (another thread) ends first, unless it hangs
        kill = not worker.lock.acquire(timeout=DRAIN_S)
        worker.end(kill=kill)


_registered: list[bool] = []


def _register() -> None:
    if _registered:
        return
    import atexit

    atexit.register(end)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_forget)
    _registered.append(True)


def _forget() -> None:
    """In a fork's child: the parent's worker is not this process's (its pipes closed here)."""
    global _worker
    worker, _worker = _worker, None
    if worker is not None:
        worker.pipe.close()


class Job:
    """One save's files stored by the worker: results taken in the artifacts' order."""

    def __init__(
        self, worker: Worker, artifacts: Sequence[Artifact], prefix: str, folder: str
    ) -> None:
        from lakeline.artifacts import pipeline

        self.worker = worker
        self.artifacts = artifacts
        self.taken = 0  # results handed out
        self.pending: list[Result] = []
        self.ended = False
        self.done = False  # finished: the worker is free
        self.error: BaseException | None = None
        items = [(a._source, vars(a).get("suffix") or "") for a in artifacts]
        # sent by a thread: a large job's list fills the pipe before the worker (starting)
        # reads it, and this thread has records to write meanwhile; Ctrl-C never stops it
        # results a message: a chunk, or the first batch when smaller (the writer waits)
        chunk = min(CHUNK, pipeline.FIRST)
        job = ("job", prefix, folder, items, chunk, current_umask())
        self.sender = threading.Thread(target=self._send, args=(job,), daemon=True)
        self.sender.start()

    def _send(self, message: Any) -> None:
        with contextlib.suppress(OSError):  # the worker is gone: its end says so
            self.worker.pipe.send(message)

    def take(self, n: int) -> list[tuple[Artifact, Result]]:
        """The next `n` files' results (fewer: the job ended; `failure()` says why)."""
        while len(self.pending) < n and not self.ended:
            self._receive()
        out, self.pending = self.pending[:n], self.pending[n:]
        start = self.taken
        self.taken += len(out)
        return list(zip(self.artifacts[start : self.taken], out, strict=True))

    def failure(self) -> BaseException:
        """Why the job ended before its last file; a file it could not open as a save in
        this process says it (`planning.plan_read`: `describe.unreadable` naming it)."""
        assert self.ended
        error = self.error
        if isinstance(error, PermissionError) and any(
            a._source == error.filename for a in self.artifacts
        ):
            from lakeline.artifacts.describe import unreadable

            return unreadable(error.filename)
        return error or StorageError("the file worker stopped before the last file")

    def _receive(self) -> None:
        try:
            kind, body = self.worker.pipe.recv()
        except EOFError:
            self.ended = True
            self.error = self.worker.gone()
            return
        self.worker.answered = True
        if kind == "files":
            self.pending += RESULT.iter_unpack(body)
        else:
            self.ended = True
            self.error = body

    def finish(self, keep: Callable[[Artifact, Result], object]) -> None:
        """End the job (stopped early unless it ended) and free the worker for the next
        save; `keep(artifact, result)` for each result not taken yet (objects it stored:
        the caller removes them), whatever happens meanwhile. A worker that does not stop
        within `DRAIN_S` (a file whose read hangs), or an interrupt meanwhile: killed, what
        it reported read to the end of the pipe (objects it stored after: `lakeline gc`)."""
        if self.done:
            return
        self.done = True
        try:
            self.sender.join()
            if not self.ended:
                self._send(("stop",))
                deadline = time.monotonic() + DRAIN_S
                while not self.ended and self.worker.pipe.wait(deadline - time.monotonic()):
                    self._receive()
            if not self.ended:
                self._kill()
        except BaseException:
            self._kill()
            raise
        finally:
            self.worker.lock.release()
            for artifact, result in self.take(len(self.pending)):
                keep(artifact, result)

    def _kill(self) -> None:
        """Kill the worker, then read what it sent before it died."""
        self.worker.process.kill()
        self.worker.process.wait()
        while not self.ended:
            try:
                self._receive()
            except Exception:  # a message cut short: the rest is lost
                break
        self.ended = True
        self.worker.end()


def current_umask() -> int:
    """This process's umask, read without changing it (Linux: /proc; elsewhere set and set
    back at once)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # meanwhile (another thread creating a file): owner-only
    os.umask(mask)
    return mask


DRAIN_S = 5.0  # how long a stopped job may take to end (its current chunk: milliseconds)


def job_for(instance: Instance, new: Sequence[Artifact]) -> Job | None:
    """A file worker's job storing the files of `new`, when the save is large enough to be
    pipelined (`pipeline.eligible`), no file lies inside a storage root (those are hashed
    where they are) and no other save of this process uses the worker; else None. The
    worker (started at the first such save) boots while the artifacts are checked."""
    from lakeline.artifacts import pipeline
    from lakeline.artifacts.locate import storage_containing
    from lakeline.storage.keys import OBJECTS_PREFIX
    from lakeline.storage.roots import protocol_of

    root = instance.storage.root
    if (
        len(new) < pipeline.MIN_FILES
        or not pipeline.offload_ok()
        or protocol_of(root) != "local"
        or not pipeline.spare_core()
    ):
        return None
    worker = acquire()
    if worker is None:
        return None
    try:
        if not pipeline.eligible(instance, new) or any(
            storage_containing(a._source, instance, normalized=True) for a in new
        ):
            worker.lock.release()
            return None
        prefix = root if root.endswith("/") else f"{root}/"
        return Job(worker, new, prefix, prefix + OBJECTS_PREFIX)
    except BaseException:
        worker.lock.release()
        raise
