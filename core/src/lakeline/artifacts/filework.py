"""The file work of a large save in a second process: each small local file read, hashed and
stored as its object (`store_file`) by a worker while this process writes the records.

The worker is `python -I -c <boot> PACKAGE_PARENT READ_FD WRITE_FD` (offload.Worker: this
process's own lakeline, loaded from its folder, runs `main`), a plain subprocess speaking
length-prefixed pickles over two pipes (no multiprocessing: its spawn re-imports
the user's `__main__`, and a fork copies this process's threads' state). It imports only the
file functions (no SQLAlchemy, no fsspec), ignores SIGINT (a Ctrl-C in the terminal is this
process's to handle) and ends when its pipe closes (this process ended or closed it).

A job: this process sends the sources and the objects' folder; the worker answers with the
results of each chunk of files (digest, stored object's tag, whether it wrote the object),
then an end holding the error that stopped it, if any (the first file it could not read or
store: the rest is not read, as in a save in one process). A `stop` between two chunks ends
the job early. Every object the worker wrote is in a result it sent: an object written and
not reported (the worker killed between the two) holds the hash of its bytes under its own
name, and no record references it: `lakeline gc` removes it (artifacts/sweep.py).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import sys
from typing import Any

HEADER = struct.Struct("<Q")
CHUNK = 250  # files a result message
# a file's result, packed: sha256, size, the stored object's mtime_ns, whether the worker
# wrote it (49 bytes: the pipe holds thousands, so the worker runs ahead of the writes)
RESULT = struct.Struct("<32sQq?")  # mtime signed: an object may be dated before 1970
Result = tuple[bytes, int, int, bool]
PIPE_SIZE = 1 << 20  # asked for the results' pipe (Linux's default limit for a user)


class Pipe:
    """Length-prefixed pickles over a pair of pipe descriptors. A read interrupted (a
    Ctrl-C) keeps what it read: the next read goes on from there."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.buffer = bytearray()

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        view = memoryview(HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    def recv(self) -> Any:
        """The next message; EOFError once the other end closed."""
        self._fill(HEADER.size)
        (size,) = HEADER.unpack_from(self.buffer)
        self._fill(HEADER.size + size)
        data = bytes(self.buffer[HEADER.size : HEADER.size + size])
        del self.buffer[: HEADER.size + size]
        return pickle.loads(data)

    def ready(self) -> bool:
        """Whether a message (or the end) waits to be read."""
        return self.wait(0)

    def wait(self, timeout: float) -> bool:
        """Whether something arrives to be read within `timeout` seconds."""
        import select

        if self.buffer:
            return True
        poll = select.poll()  # not select(): descriptors past 1023 are fine
        poll.register(self.read_fd, select.POLLIN)
        return bool(poll.poll(max(timeout, 0) * 1000))

    def _fill(self, size: int) -> None:
        while len(self.buffer) < size:
            # all that is there, up to the pipe's size: few reads (each hands the GIL over)
            part = os.read(self.read_fd, max(size - len(self.buffer), PIPE_SIZE))
            if not part:
                raise EOFError("the other end closed the pipe")
            self.buffer += part

    def close(self) -> None:
        """Close both descriptors, once (a number closed twice may be another file's by then)."""
        fds, self.read_fd, self.write_fd = {self.read_fd, self.write_fd} - {-1}, -1, -1
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def store_file(source: str, suffix: str, prefix: str, folder: str, fresh: bool) -> Result:
    """Read and hash the local file `source` and store it as the object of its hash under
    `prefix` (the storage root and "/"), as a save in one process does (`store.upload`): a
    new object written where nothing is (`fresh`: the last one was new, so no look first),
    else the one there taken when it holds these bytes, replaced otherwise. `folder`: where
    a copy of a file too large to hold in memory waits to be placed."""
    from lakeline.artifacts import transfer
    from lakeline.storage.keys import object_key

    staged, digest = transfer.stage_local(source, folder)
    target = prefix + object_key(digest.hash, suffix)
    raw = bytes.fromhex(digest.hash)
    if isinstance(staged, bytes):
        if fresh or not os.access(target, os.F_OK):
            written = transfer.place_new(staged, target)
            if written is not None:
                return raw, digest.size, written.st_mtime_ns, True
        stored = transfer.holding(target, staged)
        if stored is not None:
            return raw, digest.size, stored.st_mtime_ns, False
        written = transfer.place(staged, target, None)
        return raw, digest.size, written.st_mtime_ns, True
    # a large file's copy (it grew past `SMALL` since it was planned): linked into place,
    # what is there already kept when it holds these bytes (no record to say it was
    # checked: compared), replaced otherwise
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        try:
            os.link(staged, target)
        except FileExistsError:
            import filecmp

            if filecmp.cmp(staged, target, shallow=False):
                return raw, digest.size, os.stat(target).st_mtime_ns, False
            os.replace(staged, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
    return raw, digest.size, os.stat(target).st_mtime_ns, True


def _job(
    pipe: Pipe,
    prefix: str,
    folder: str,
    items: list[tuple[str, str]],
    chunk: int = CHUNK,
    umask: int | None = None,
) -> None:
    """Store `items` ((source, suffix) each), a result message every `chunk` files, then the
    end. `umask`: the saving process's now (it may have changed it since it started this
    worker): the objects' modes are those a save in that process gives."""
    if umask is not None:
        os.umask(umask)
    results = bytearray()
    pack = RESULT.pack
    fresh = True
    error: BaseException | None = None
    for source, suffix in items:
        try:
            result = store_file(source, suffix, prefix, folder, fresh)
            results += pack(*result)
        except Exception as exc:
            error = exc
            break
        fresh = result[3]
        if len(results) == chunk * RESULT.size:
            pipe.send(("files", bytes(results)))
            results.clear()
            if pipe.ready():  # a stop: nothing else is sent during a job
                pipe.recv()
                break
    if results:
        pipe.send(("files", bytes(results)))
    try:
        pickle.loads(pickle.dumps(error))  # the other end must be able to make it again
    except Exception:  # said as text
        error = RuntimeError(f"{type(error).__name__}: {error}")
    pipe.send(("end", error))


def main(argv: list[str]) -> None:
    """The worker: jobs until the pipe closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pipe = Pipe(int(argv[0]), int(argv[1]))
    try:
        import fcntl

        fcntl.fcntl(pipe.write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):  # not Linux, or a lower limit: as it is
        pass
    while True:
        try:
            message = pipe.recv()
            if message[0] == "job":
                _job(pipe, *message[1:])
            # a stop arriving after its job ended: nothing to do
        except (EOFError, BrokenPipeError):  # the saving process closed or died: quietly
            return


if __name__ == "__main__":
    main(sys.argv[1:])
