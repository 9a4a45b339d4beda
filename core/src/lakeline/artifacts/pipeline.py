"""Large saves of small local files, pipelined: the files of one batch are read, hashed and
stored while the records of the batch before are written.

The file work goes to a worker process (artifacts/offload.py, filework.py) when one can be
had: this process then only writes the records, the worker runs ahead on the other core. On
SQLite in this thread (the worker's results arrive a chunk at a time: no GIL to share); on
PostgreSQL a `Writer` thread writes while this thread turns the worker's results into plans
(the server's work runs while the GIL is free). Without the worker (another save of this
process uses it, or no Python to start one), on PostgreSQL only: this thread stores the
files while the writer thread writes (on SQLite two threads lost: their Python shares the GIL).

One transaction still holds every record, committed after the last batch, so a save stays
all or nothing: a failure anywhere (reading a file, storing it, a statement, the worker
dying) rolls the transaction back and the caller removes the bytes this save stored, as for
any save. On SQLite its write lock is held from the first batch to the commit: other
writers wait (busy_timeout) for about the whole save's time, so only saves of at most
`SQLITE_MAX_FILES` files and `SQLITE_MAX_BYTES` bytes are pipelined there (docs/scaling.md).
Only saves whose batches cannot depend on each other take this path: every artifact new, with
its own key and its own source file, when the cores have room for it (`spare_core`).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from queue import Queue
from typing import TYPE_CHECKING

from lakeline import checkpoints
from lakeline.artifacts.newrows import Prepared, Survey, prepare
from lakeline.artifacts.reference import LOCAL_ROOT
from lakeline.artifacts.store import (
    claim,
    io_bound,
    missing_local,
    object_lock,
    storage_of,
    upload,
)
from lakeline.db.locks import buckets, lock_buckets
from lakeline.db.rows import chunks
from lakeline.storage.roots import protocol_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.artifacts.edit import Edits
    from lakeline.artifacts.filework import Result
    from lakeline.artifacts.offload import Job
    from lakeline.artifacts.save import Plan, Progress
    from lakeline.instance import Instance
    from lakeline.models import Artifact, Run

BATCH = 2_000  # artifacts per batch
# the first batch: the writer idles until it is stored, so it is smaller (a head of 500 files'
# reading and storing instead of 2,000 before the two threads overlap)
FIRST = 500
MIN_FILES = 2 * BATCH  # fewer: one thread (nothing to overlap)
_END, _ABORT = "end", "abort"


def eligible(instance: Instance, artifacts: Sequence[Artifact]) -> bool:
    """Whether a save of these new artifacts can be pipelined: on PostgreSQL, or on SQLite
    with a worker process for the files (`offload_ok`); room on the cores (`spare_core`),
    enough of them, all small local files (no folders, references or staged objects) into
    local storage, each with a key of its own and a source of its own (so no batch finds the
    records of another)."""
    if len(artifacts) < MIN_FILES:
        return False
    if instance.dialect != "postgresql" and not offload_ok():
        return False
    local = protocol_of(instance.storage.root) == "local"
    if not local or not spare_core():
        return False
    keys, sources = set(), set()
    for artifact in artifacts:
        source = artifact._source
        if (
            artifact.key is None
            or getattr(artifact, "_reference", False)
            or artifact._staged
            or not isinstance(source, str)
            or protocol_of(source) != "local"
        ):
            return False
        keys.add(artifact.key)
        sources.add(source)
    if len(keys) != len(artifacts) or len(sources) != len(artifacts):
        return False
    if io_bound(instance, artifacts):
        return False
    return instance.dialect == "postgresql" or _short_lock(artifacts)


# SQLite pipelined holds its one write lock for the whole save (reading and storing every
# file), not only for the writes: at most this many files (~9 s at ~11k small files/s) or
# bytes (the files' reading and copying, ~0.5 s at ~600 MiB/s), so another writer waits
# seconds, far from its busy timeout (60 s). Larger saves write after the files, as without
# the worker (review20: 4,000 files of 256 KiB held it 7.0 s against 0.43 s).
SQLITE_MAX_FILES = 100_000
SQLITE_MAX_BYTES = 256 << 20


def _short_lock(artifacts: Sequence[Artifact]) -> bool:
    """SQLite: whether a pipelined save of these holds the write lock briefly enough."""
    if len(artifacts) > SQLITE_MAX_FILES:
        return False
    total = 0
    for artifact in artifacts:
        total += getattr(artifact, "_source_size", None) or 0
        if total > SQLITE_MAX_BYTES:
            return False
    return True


# the 1-minute load average, per CPU of this process, under which the second thread pays
# (docs/scaling.md, "The two-thread save against the load": alternated on/off at loads 2.9-9.6
# on 2 cores: below load 4 new files +15 %, re-saves +8 %; above it re-saves lost 3-15 %)
LOAD_PER_CPU = 2.0


def offload_ok() -> bool:
    """Whether the file work may go to a worker process (artifacts/offload.py): `OFFLOAD`
    (False: this process stores the files, as before the worker) and a Python to start."""
    from lakeline.artifacts import offload

    return OFFLOAD and offload.available()


OFFLOAD = True  # the file work of a pipelined save in a worker process


def spare_core() -> bool:
    """Whether the cores have room for the second thread: the load average below
    `LOAD_PER_CPU` times this process's CPUs. Both threads' Python runs under one GIL: only the
    database's own work overlaps, and on busy cores every hand-over of the GIL waits for the
    scheduler (3-5 us more CPU a file at any load; re-saves, whose batches leave the server
    little to do, ran slower from 2 runnable tasks per CPU). A load that cannot be read (no
    `os.getloadavg` on Windows): no, one thread (the save as without the pipeline)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return load < LOAD_PER_CPU * (cpus or 1)


class Writer:
    """The thread writing the batches' records in one transaction (opened at the first)."""

    def __init__(
        self,
        instance: Instance,
        user_id: int,
        run: Run | None,
        artifacts: Sequence[Artifact] = (),
        edits: Edits | None = None,
    ) -> None:
        self.instance, self.user_id, self.run = instance, user_id, run
        self.edits = edits  # loaded records' edits: written first (artifacts/edit.py)
        # `artifacts`: the save's, surveyed before the first batch (artifacts/newrows.py):
        # `found` once read, then the saving thread hands batches over prepared
        self.keys = sorted({k for a in artifacts if (k := vars(a).get("key")) is not None})
        self.roots = sorted({LOCAL_ROOT} if artifacts else set())
        self.found: Survey | None = None
        self.surveyed = threading.Event()  # `found` read (or the survey failed)
        self.dialect = instance.engine.dialect
        self.queue: Queue[Sequence[Plan] | Prepared | str] = Queue(maxsize=2)
        # the objects' locks (buckets), set by the saving thread once it made every plan, and
        # taken before the next batch (`_lock_objects`); the saving thread then checks the
        # objects while the writer writes the last batches (`check_objects`)
        self.object_locks: list[int] | None = None
        self.objects_locked = False
        # batches of plans handed over (counted by the saving thread) and written (by this
        # one): none may be written under the objects' locks, whose holder then waits for
        # rows (`write_batch` marks a key's previous record; a delete of that record holds its
        # row while it waits for the object's lock: a deadlock), so the locks wait for them
        self.plans_queued = self.plans_written = 0
        self.locked = threading.Event()  # taken, or never will be (the end, a failure)
        self.checked = threading.Event()  # the saving thread's check done, or given up
        self.missing: list[Plan] | None = None  # what it found missing (None: not checked)
        self.error: BaseException | None = None
        self.created: list[Artifact] = []
        self.new_storage = False
        self.ended = False  # the end (or abort) was taken from the queue
        self.committed = False  # its transaction committed: the records are saved
        # set once the last batch is written and claimed, as the commit starts, or once the
        # writer failed: the caller detaches the new records meanwhile (`save`)
        self.committing = threading.Event()
        # the last batch written held no new record: the rest is written in one go, after
        # the files (a re-save's lookups leave the database little to overlap, and the two
        # threads would only contend for the GIL)
        self.found_all = False
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._work,), daemon=True)
        self.thread.start()

    def hand_over(self, plans: Sequence[Plan]) -> Sequence[Plan] | Prepared:
        """A batch as the saving thread queues it: its records built there (`Prepared`) when
        the survey says they are all new (artifacts/newrows.py), else its plans; a survey
        not read yet is not waited for."""
        prepared = prepare(plans, self.found, self.user_id, self.run, self.dialect)
        return plans if prepared is None else prepared

    def _next(self) -> Sequence[Plan] | Prepared | str:
        item = self.queue.get()
        self.ended = isinstance(item, str)
        return item

    def _work(self) -> None:
        try:
            self._write()
        except BaseException as exc:
            self.error = exc
            self.locked.set()
            while not self.ended:  # the producer never waits on a full queue
                self._next()
        finally:
            self.locked.set()
            self.committing.set()

    def lock_objects(self, plans: Sequence[Plan]) -> None:
        """Have the objects of `plans` (every plan of the save) locked before the next batch:
        all at once, in sorted order, as `claim` would at the end. Asked for when the last
        batch is `Prepared`, taken once no batch of plans is left (`plans_queued`)."""
        names = [object_lock(storage_of(p).id, p.store_key) for p in _stored(plans)]
        self.object_locks = buckets("object", names)

    def _lock_objects(self, session: Session, *, end: bool = False) -> bool:
        """Take the objects' locks when asked for, not taken yet, and no batch of plans is left
        to write (at the `end` none is); whether they are held. At the `end` the saving thread
        learns it either way."""
        pending = self.plans_queued != self.plans_written
        if not self.objects_locked and self.object_locks is not None and (end or not pending):
            lock_buckets(session, "object", self.object_locks)
            self.objects_locked = True
        if self.objects_locked or end:
            self.locked.set()
        return self.objects_locked

    def _write(self) -> None:
        from lakeline.artifacts import newrows
        from lakeline.artifacts.save import write_batch

        written: list[Plan] = []
        with self.instance.sessions.write() as session:
            try:
                if self.edits is not None:
                    self.edits.write(session, self.keys)
                if self.keys:  # while the first batch's files are stored
                    self.found = newrows.survey(session, self.keys, self.roots)
            finally:
                self.surveyed.set()
            item = self._next()
            while not isinstance(item, str):
                self._lock_objects(session)
                if isinstance(item, Prepared):
                    created = newrows.write(session, item)
                    written += item.plans
                else:
                    created, new_storage = write_batch(
                        session, self.instance, item, self.user_id, self.run
                    )
                    self.new_storage |= new_storage
                    written += item
                    self.plans_written += 1
                self.created += created
                self.found_all = not created
                item = self._next()
            if item == _ABORT:
                raise Aborted
            # as guarded() does, before the commit; once, not per batch: the writer's chain
            # (its Python, then the server) is the save's critical path, and a claim per batch
            # took ~50 % more CPU and waited for the GIL held by the file thread
            locked = self._lock_objects(session, end=True)
            self.checked.wait()  # set by the saving thread once it handed the end over
            if self.missing != []:  # not checked there (interrupted), or some object gone:
                claim(self.instance, session, written, locked=locked)  # which records need it
            checkpoints.reach("save.claimed")
            self.committing.set()
        self.committed = True


def check_objects(writer: Writer, plans: Sequence[Plan]) -> None:
    """Once the writer holds the objects' locks (`Writer.lock_objects`): which objects of
    `plans` (every plan of the save) are missing. `claim`'s check of every object a record
    may point to, here while the writer writes its last batches instead of after them: when
    none is missing the writer claims nothing more."""
    if writer.locked.wait() and writer.objects_locked and writer.error is None:
        writer.missing = missing_local(_stored(plans))


def _stored(plans: Sequence[Plan]) -> list[Plan]:
    """The plans whose records may point to an object they stored (`claim`'s candidates)."""
    return [p for p in plans if p.digest is not None and not p.in_place and p.storage]


class Aborted(Exception):
    """The save failed outside the writer: its transaction is rolled back."""


def save(
    instance: Instance,
    artifacts: Sequence[Artifact],
    plan_one: Callable[[Artifact], Plan],
    progress: Progress | None,
    run: Run | None,
    retried: Callable[[BaseException], bool],
    job: Job | None = None,
    plan_stored: Callable[[Artifact, Result], Plan] | None = None,
    edits: Edits | None = None,
) -> tuple[list[Plan], Writer, BaseException | None]:
    """Plan and store `artifacts` batch by batch, each handed to a `Writer` once stored (the
    rest at the end, once a batch turned out to be records already saved). Returns every
    plan, the writer, finished: committed unless `writer.error` says why not (the plans are
    then all stored, for the caller's retry, when `retried(error)`; else the files after the
    error are not read), and an interrupt (Ctrl-C) that arrived once the writer had the end:
    it committed anyway, the caller raises it once the save is settled. The new records are
    detached records once committed (`settle.settle`'s first part, done while the server
    commits: ~4 us a record less after the commit); transient again when the commit or the
    save failed."""
    from lakeline.artifacts.settle import detach

    writer = Writer(instance, instance.user.id, run, artifacts, edits)
    plans: list[Plan] = []
    held: list[Plan] = []
    ended = done = False
    late: BaseException | None = None
    try:
        for batch in batches(artifacts):
            if writer.error is not None and not retried(writer.error):
                break  # the save fails whatever follows: no more files to store
            if job is None:
                made = [plan_one(artifact) for artifact in batch]
                plans += made
                upload(instance, made, progress)
            else:  # stored by the worker process meanwhile
                assert plan_stored is not None
                made = [plan_stored(artifact, result) for artifact, result in job.take(len(batch))]
                plans += made
                if progress:
                    progress("hash", len(made))
                    progress("upload", len(made))
                if len(made) < len(batch):
                    raise job.failure()
            checkpoints.reach("save.batch")
            if writer.found_all:  # re-saves: nothing for the database to do meanwhile
                held += made
            elif writer.error is None:  # its records built here while the writer writes
                item = writer.hand_over(made)
                if not isinstance(item, Prepared):
                    writer.plans_queued += 1
                elif len(plans) == len(artifacts) and not held:  # the last: new records
                    writer.lock_objects(plans)  # taken before the writer's next new records
                writer.queue.put(item)
        if held and writer.error is None:
            writer.queue.put(held)
        checkpoints.reach("save.stored")
        try:
            writer.queue.put(_END)
            ended = True
            check_objects(writer, plans)
        finally:
            writer.checked.set()
        writer.committing.wait()
        if writer.error is None:
            detach(writer.created)  # while the writer's connection waits for the commit
        done = True
    except BaseException as exc:  # raised below unless the writer commits all the same
        late = exc
    if job is not None:  # the files it stored after a failure: removed with the others
        assert plan_stored is not None
        try:
            job.finish(plan_stored)
        except BaseException as exc:
            late = late or exc
    try:
        if not ended:
            _to_the_end(lambda: writer.queue.put(_ABORT))
        _to_the_end(writer.thread.join)
    except BaseException as exc:  # an interrupt meanwhile
        late = late or exc
    if writer.committed:  # saved, whatever arrived meanwhile: detached records
        if not done:
            from sqlalchemy.orm.attributes import instance_state

            detach([a for a in writer.created if instance_state(a).key is None])
        return plans, writer, late
    _transient(writer.created)  # not saved (the writer failed, or was aborted): as they were
    if late is not None:
        raise late
    return plans, writer, None


def _transient(created: Sequence[Artifact]) -> None:
    """Records `detach` made detached transient again (their transaction did not commit, or
    the save failed meanwhile: as if never detached)."""
    from sqlalchemy.orm import make_transient
    from sqlalchemy.orm.attributes import instance_state

    for artifact in created:
        if instance_state(artifact).key is not None:
            make_transient(artifact)


def batches(artifacts: Sequence[Artifact]) -> Iterator[Sequence[Artifact]]:
    """`artifacts` in batches of `BATCH`, the first of `FIRST`."""
    yield artifacts[:FIRST]
    yield from chunks(artifacts[FIRST:], BATCH)


def _to_the_end(wait: Callable[[], None]) -> None:
    """Run `wait` (handing the writer its abort, joining it) to its end even when an
    interrupt (Ctrl-C) arrives meanwhile, then raise the first such: a writer left waiting
    for its abort would keep its transaction, and SQLite's write lock, open for good."""
    interrupt: BaseException | None = None
    while True:
        try:
            wait()
            break
        except BaseException as exc:  # KeyboardInterrupt, or what a signal handler raises
            interrupt = interrupt or exc
    if interrupt is not None:
        raise interrupt


class Outcome:
    """How a save whose files a worker process stored wrote its records (as `Writer`)."""

    def __init__(self) -> None:
        self.created: list[Artifact] = []
        self.new_storage = False
        self.committed = False
        self.error: BaseException | None = None


def save_offloaded(
    instance: Instance,
    artifacts: Sequence[Artifact],
    job: Job,
    plan_stored: Callable[[Artifact, Result], Plan],
    progress: Progress | None,
    run: Run | None,
    retried: Callable[[BaseException], bool],
    edits: Edits | None = None,
) -> tuple[list[Plan], Outcome, BaseException | None]:
    """As `save`, the files stored by `job`'s worker process while this thread writes the
    records of the batches it stored before, in one transaction (one thread: the worker's
    results arrive a chunk at a time, no GIL to hand over)."""
    from functools import partial

    from lakeline.artifacts.save import write_batch
    from lakeline.artifacts.settle import detach
    from lakeline.db.session import after_commit

    outcome = Outcome()
    plans: list[Plan] = []
    late: BaseException | None = None
    committed: list[bool] = []

    def stored(n: int) -> list[Plan]:
        made = [plan_stored(artifact, result) for artifact, result in job.take(n)]
        plans.extend(made)
        if progress:
            progress("hash", len(made))
            progress("upload", len(made))
        if len(made) < n:
            raise job.failure()
        return made

    user_id = instance.user.id
    try:
        with instance.sessions.write() as session:
            after_commit(session, partial(committed.append, True))  # not a listener on the session
            if edits is not None:  # loaded records' edits: written first (artifacts/edit.py)
                edits.write(session, [k for a in artifacts if (k := vars(a).get("key"))])
            for batch in batches(artifacts):
                made = stored(len(batch))
                checkpoints.reach("save.batch")
                created, new_storage = write_batch(session, instance, made, user_id, run)
                outcome.created += created
                outcome.new_storage |= new_storage
            checkpoints.reach("save.stored")
            claim(instance, session, plans)
    except BaseException as exc:
        if not committed:
            if not retried(exc):
                raise  # the caller removes what the worker stored (`Job.finish` first)
            outcome.error = exc  # the caller writes every record again: every file stored
            stored(len(artifacts) - job.taken)
        else:  # an interrupt once committed: saved, raised once the save is settled
            late = exc
    if committed:
        outcome.committed = True
        detach([a for a in outcome.created if _unkeyed(a)] if late else outcome.created)
    try:
        job.finish(plan_stored)  # its last message read; the worker free
    except BaseException as exc:
        if not committed:
            raise
        late = late or exc  # saved all the same: raised once the save is settled
    return plans, outcome, late


def _unkeyed(artifact: Artifact) -> bool:
    from sqlalchemy.orm.attributes import instance_state

    return instance_state(artifact).key is None
