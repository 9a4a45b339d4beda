"""A Recorder that writes in batches: one transaction per `steps` finished steps or per
`ms` milliseconds, instead of one per call.

    rec = BatchRecorder("nextflow", root=workdir, steps=100, ms=500)

`use`, `produce` and `finish_step` queue what they record (the files are described at once,
hashed and written at the flush); everything else writes as the plain Recorder does, after a
flush. A flush is one bulk save of the queued files with their used-by edges, producers and
the queued step finishes, in one transaction: a process killed before or during it loses the
unflushed batch and never leaves part of one; a flush that fails keeps its batch queued (its
files read again) for the next one, but for the steps the database refuses: left out, named
(`batch_refusals`). It happens when `steps` steps finished, `ms` passed since the first
queued finish, use, produce or link, or `started_ms` (default 5 * `ms`, at least 5 s) since
the first queued start (checked at the next call, or by `flush_if_due` / `flush_idle` from an
integration's timer). Such a flush keeps queued the steps started less than `started_ms` ago
that nothing of the batch names (`batch_hold`): a step is written once, inserted finished,
not inserted, then updated (an engine starts many steps well before they end), yet a long
step appears as started within `started_ms`. It also happens, writing all, before any call
that reads or changes what is queued (a `use` of a queued output, a file that is gone,
`mark_gone`, `reference`, `link`, `save_files`, `mark`, `annotate` of a written run, ...), at
`finish_workflow`, on `flush()` and at interpreter exit. Flushes share a connection kept
between them (`db.session.KeptConnection`). Queued calls return the Artifact they will save
(its id is set at the flush) and the step's run as it was when started.

`make_recorder(engine, batch=...)` is how an integration gets its Recorder: `batch` is the
engine's default, `LAKELINE_CAPTURE_BATCH` (on/off) the user's choice over it.
"""

from __future__ import annotations

import atexit
import logging
import os
import stat
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeline.artifacts.describe import check_kind, describe_new
from lakeline.artifacts.locate import storage_containing
from lakeline.artifacts.save import plan_file
from lakeline.db.session import stamp
from lakeline.errors import InvalidValue, LakelineError, StepsNotRecorded
from lakeline.lineage.batch_files import QueuedFile, replan, requeue, unsaved_runs
from lakeline.lineage.batch_refusals import (
    check_recorded,
    flush_leaving_out,
    raise_left_out,
    unbatched,
)
from lakeline.lineage.batch_write import insert_queued, retried, write_batch
from lakeline.lineage.handles import FileRecord, Handle, check_stat, loaded
from lakeline.lineage.recorder import Recorder
from lakeline.lineage.records import fire_each, new_run
from lakeline.lineage.run_rows import Finish
from lakeline.lineage.run_updates import check_meta
from lakeline.lineage.track import checked_params
from lakeline.lineage.usage import check_role
from lakeline.models.base import utcnow
from lakeline.storage.keys import validate_key

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from sqlalchemy.orm import Session

    from lakeline.db.session import KeptConnection
    from lakeline.models import Artifact, Run, Transform

log = logging.getLogger("lakeline.recorder")

BATCH_ENV = "LAKELINE_CAPTURE_BATCH"
_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off"}


def _flush_at_exit(ref: weakref.ReferenceType[BatchRecorder]) -> None:
    recorder = ref()
    if recorder is not None:
        try:
            recorder.flush()
        except StepsNotRecorded as exc:  # the rest was written
            log.warning("lakeline: %s", exc)
        except Exception:  # exiting: say what was lost, never raise from atexit
            log.exception("lakeline: the Recorder's last batch could not be written")
        recorder._kept.release()


@dataclass
class BatchRecorder(Recorder):
    """A `Recorder` writing one transaction per `steps` finished steps or `ms` milliseconds."""

    steps: int = 100
    ms: float = 500.0
    # age of a batch of started steps alone before it is due (None: 5 * ms, at least 5 s)
    started_ms: float | None = None
    # False while an integration's timer calls `flush_if_due`: a batch due by time is then
    # written by the timer's thread, not by the engine's call that finds it due
    flush_on_calls: bool = True
    _files: dict[str, QueuedFile] = field(default_factory=dict, repr=False)
    _finishes: list[tuple[Handle, Finish]] = field(default_factory=list, repr=False)
    _runs: dict[str, tuple[Handle, Handle]] = field(default_factory=dict, repr=False)
    # metadata given to queued runs (engine_ref: namespace: meta), for a run found at the flush
    _notes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _links: list[tuple[Handle, Artifact, str]] = field(default_factory=list, repr=False)
    _since: float | None = field(default=None, repr=False)  # first queued finish/use/produce/link
    _first_start: float | None = field(default=None, repr=False)  # first queued run's start
    _start_times: dict[str, float] = field(default_factory=dict, repr=False)  # by engine ref
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # steps left out of a flush, not yet raised: engine ref -> (why, the refusal)
    _left_out: dict[str, tuple[str, BaseException]] = field(default_factory=dict, repr=False)
    # runs a flush found deleted, by id(run): what names them is left out (SQLite gives
    # their id to the next run inserted)
    _gone_runs: dict[int, Run] = field(default_factory=dict, repr=False)
    _step_transforms: dict[tuple[Any, ...], Transform] = field(default_factory=dict, repr=False)
    _kept: KeptConnection = field(init=False, repr=False)  # the flushes' connection

    def __post_init__(self) -> None:
        if self.started_ms is None:
            self.started_ms = max(5 * self.ms, 5000.0)
        if self.steps < 1 or self.ms <= 0 or self.started_ms <= 0:
            raise LakelineError("a BatchRecorder needs steps >= 1, ms > 0 and started_ms > 0")
        super().__post_init__()
        assert self.instance is not None
        self._kept = self.instance.sessions.keep(self)
        atexit.register(_flush_at_exit, weakref.ref(self))

    # -- queueing -------------------------------------------------------------------------------

    def _queue(
        self,
        location: str,
        st: os.stat_result | None,
        *,
        key: str | None,
        kind: str | None,
        producer: Handle | None,
        user: tuple[Handle, str] | None,
    ) -> Artifact | None:
        """Queue a file (`st`: its stat, from `_located`); None when it cannot be queued (the
        caller records it unbatched).

        A file used that this Recorder saved and that is unchanged since (queued in this
        batch, or written before) is not hashed again: its edge is queued."""
        assert self.instance is not None
        if st is None or not ((is_dir := stat.S_ISDIR(st.st_mode)) or stat.S_ISREG(st.st_mode)):
            return None  # gone, remote, a FIFO or device: the plain path handles those
        contained = storage_containing(location, self.instance, normalized=True)
        want = key  # the key the record has: a link and its target differ
        if want is None and contained is not None:
            want = contained[1]  # the save derives it so
        queued = self._files.get(location)
        if queued is not None:
            # an output of this batch, unchanged: used as it is; an input queued by another
            # step: written first unless the keys are the same as given (a step's body may
            # read what its start recorded, as Prefect's do) and the file is unchanged
            mine = want if queued.producer is not None else key
            same = producer is None and mine == queued.artifact.key
            changed = queued.stat is None or _state(st) != queued.stat  # a folder: may be
            if not same or changed:
                return None  # rewritten since it was hashed, or reported twice: write first
            assert user is not None
            queued.used_by.append(user)  # used by several steps of one batch: hashed once
            return queued.artifact
        now = None if is_dir else (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)  # _state
        if user is not None and (seen := self._seen.get(location, key, contained, now)) is not None:
            self._links.append((user[0], seen, user[1]))
            self._clock()
            return seen
        registers = contained is None and not self.upload
        if registers:
            self.instance.register_storage(os.path.dirname(location))
        # described and hashed now, what the step saw, from the stat taken (producer: at flush;
        # until then only used: `keying.may_be`); unreadable: plan_file's read says so
        inst, only = self.instance, producer is None
        artifact = describe_new(
            location, lambda: inst, key=key, kind=kind, resolved=st, used_only=only, read_now=True
        )
        if registers:  # its storage is new: looked up again
            plan = plan_file(artifact, self.instance, now)
        else:
            plan = plan_file(artifact, self.instance, now, contained)
        users = [] if user is None else [user]
        entry = QueuedFile(location, artifact, plan, producer, users, now, key)
        self._files[location] = entry
        self._clock()
        return artifact

    def _clock(self) -> None:
        """Start the batch's age clock (`ms`), at its first queued finish, use, produce or link."""
        if self._since is None:
            self._since = time.monotonic()

    def _aged(self) -> bool:
        """Whether the batch is due by age: `ms` since its first queued finish, use, produce
        or link, or `started_ms` since its first queued start."""
        if self._since is None and self._first_start is None:
            return False
        now = time.monotonic()
        if self._since is not None and (now - self._since) * 1000 >= self.ms:
            return True
        started = self._first_start
        assert self.started_ms is not None
        return started is not None and (now - started) * 1000 >= self.started_ms

    def _due(self, timer: bool = False) -> None:
        if len(self._finishes) >= self.steps or (
            (timer or self.flush_on_calls)
            and (self._since is not None or self._first_start is not None)
            and self._aged()
        ):
            self._flush_due()

    def use_saved(self, step: Handle, artifact: Artifact, role: str = "") -> None:
        """Queue that `step` used `artifact`, a record of a file the engine knows is
        unchanged (not hashed again): a saved record (`link`, written at the flush), or one
        this Recorder returned for a file of the batch not yet written (a used-by edge of
        that file, as `use` queues it)."""
        check_role(role) if role.__class__ is not str or role else None  # at the call ("": fine)
        with self._lock:
            if loaded(artifact, "id") is None:  # (the ORM's read of a new record's: ~1.7 us)
                queued = self._files.get(vars(artifact).get("_source") or "")
                if queued is None or queued.artifact is not artifact:
                    raise LakelineError(
                        "use_saved takes a saved record or one queued in this batch "
                        "(its id is None and it is not queued)"
                    )
                queued.used_by.append((step, role))
                self._due()
                return
            self._links.append((step, artifact, role))
            self._clock()
            self._due()

    def flush_if_due(self) -> None:
        """Flush if the batch is due (`steps` finished steps, or by age: `_aged`): for an
        integration's timer, so a batch waits no longer while the engine is silent (a long job)."""
        with self._lock:
            self._due(timer=True)
            raise_left_out(self)

    def flush_idle(self) -> None:
        """Flush what is queued, unless it is only started steps, started less than
        `started_ms` ago: for an integration's timer once the engine is idle (a finished
        step reaches the catalog at once; a started one waits for its finish, or
        `started_ms`, so that it is written once)."""
        with self._lock:
            if self._since is not None or self._aged():
                self._flush_due()
            raise_left_out(self)

    def start_step(
        self,
        workflow: Handle,
        *,
        key: str,
        kind: str,
        engine_task_id: str,
        params: dict[str, Any] | None = None,
        source_code: str | None = None,
        reference: str | None = None,
        started_at: datetime | None = None,
        status: str = "started",
        scoped: bool = True,
        parent: Handle | None = None,
    ) -> Handle:
        """`Recorder.start_step`, queued: the run is inserted at the flush (its `run.id` is
        None until then); a step started again in the same batch is the same handle."""
        with self._lock:
            assert self.instance is not None
            engine_ref = f"{workflow.engine_ref}/{engine_task_id}" if scoped else engine_task_id
            queued = self._runs.get(engine_ref)
            if queued is not None:
                return queued[0]
            # the step's transform, by its code's text (not hashed again for each step)
            known = (key, kind, loaded(workflow.transform, "id"), source_code, reference)
            transform = self._step_transforms.get(known)
            if transform is None:
                transform = self._transform(
                    key=key,
                    kind=kind,
                    parent=workflow.transform,
                    source_code=source_code,
                    reference=reference,
                )
                if len(self._step_transforms) >= 1024:  # bounded: steps of a few rules
                    self._step_transforms.clear()
                self._step_transforms[known] = transform
            clean_params, checked, text = checked_params(params)
            run = new_run(
                transform,
                status=status,
                params=clean_params,
                params_checked=checked,
                params_text=text,
                engine=self.engine,
                engine_ref=engine_ref,
                created_by_id=loaded(self.instance.user, "id"),
                at=started_at,
            )
            handle = Handle(run, transform, engine_ref)
            self._runs[engine_ref] = (handle, parent or workflow)
            self._start_times[engine_ref] = now = time.monotonic()
            if self._first_start is None:
                self._first_start = now
            return handle

    def _insert_runs(self) -> None:
        """Insert the queued runs in a transaction of their own (a flush with nothing else to
        write); if it fails, they stay queued, unsaved."""
        assert self.instance is not None
        started: list[tuple[Handle, Handle]] = []
        replays: list[tuple[Handle, Run, Transform]] = []
        try:
            retried(
                self,
                lambda session: self._insert_all(session, started, replays),
                lambda: unsaved_runs(started, replays),
            )
        except BaseException:
            unsaved_runs(started, replays)
            raise
        self._runs_written(started)

    def _runs_written(
        self, started: list[tuple[Handle, Handle]], looked: list[bool] | None = None
    ) -> None:
        """After the commit that inserted the queued runs (`started`; the others were recorded
        before): they leave the queue as records (`looked`: `records.fire_each`'s)."""
        assert self.instance is not None
        runs = list(self._runs.values())
        self._runs, self._notes, self._first_start, self._start_times = {}, {}, None, {}
        for handle, _ in runs:
            stamp(handle.run, self.instance)
        fire_each("run_started", [{"run": handle.run} for handle, _ in started], looked)

    def _insert_all(
        self,
        session: Session,
        started: list[tuple[Handle, Handle]],
        replays: list[tuple[Handle, Run, Transform]] | None = None,
    ) -> None:
        """`batch_write.insert_queued`: the queued runs inserted in `session`'s transaction."""
        insert_queued(self, session, started, replays)

    def use(
        self,
        step: Handle,
        path: str | os.PathLike[str],
        *,
        role: str = "",
        key: str | None = None,
        stat: os.stat_result | None = None,
    ) -> Artifact | None:
        check_role(role) if role.__class__ is not str or role else None  # at the call ("": fine)
        with self._lock:
            location, st = self._located(path, stat)
            queued = self._queue(location, st, key=key, kind=None, producer=None, user=(step, role))
            if queued is not None:
                self._due()
                return queued
            self._flush()
            check_recorded(self, step)  # left out by that flush: not named (StepsNotRecorded)
            return super().use(step, path, role=role, key=key, stat=stat)

    def produce(
        self,
        step: Handle,
        path: str | os.PathLike[str],
        *,
        key: str | None = None,
        kind: str | None = None,
        stat: os.stat_result | None = None,
    ) -> Artifact | None:
        with self._lock:
            location, st = self._located(path, stat)
            queued = self._queue(location, st, key=key, kind=kind, producer=step, user=None)
            if queued is not None:
                self._due()
                return queued
            self._flush()
            check_recorded(self, step)
            return super().produce(step, path, key=key, kind=kind, stat=stat)

    def finish_step(
        self,
        step: Handle,
        status: str = "completed",
        *,
        finished_at: datetime | None = None,
        exit_code: int | None = None,
        error: str | None = None,
        cached_from: str | None = None,
        outputs: Sequence[str | os.PathLike[str] | FileRecord] = (),
    ) -> Run:
        with self._lock:
            for item in outputs:  # all checked before any is queued: a refusal queues nothing
                record = item if isinstance(item, FileRecord) else FileRecord(item)
                if record.producer not in (None, step) or record.used_by:
                    raise LakelineError("outputs of a step take no other producer and no used_by")
                if record.kind is not None:
                    check_kind(record.kind)
                if record.key is not None:
                    validate_key(record.key)
                check_stat(record.stat)
            self._check_error(error, "step") if error else None
            original = None
            if cached_from is not None:
                if cached_from in self._runs:
                    self._flush()  # the original is queued: written first, to have its id
                original = self._find(cached_from)
                if original is None:
                    log.warning("cached step %s: no recorded run %s", step.engine_ref, cached_from)
            change = Finish(
                status,
                finished_at or utcnow(),
                exit_code,
                error,
                None if original is None else original.id,
            )
            for item in outputs:
                record = item if isinstance(item, FileRecord) else FileRecord(item)
                self.produce(step, record.path, key=record.key, kind=record.kind, stat=record.stat)
            self._finishes.append((step, change))
            self._clock()
            self._due()
            return step.run

    def _check_error(self, error: str | None, what: str) -> None:
        """Refuse an error text with a NUL byte on PostgreSQL at the call, not at every flush."""
        assert self.instance is not None
        if error and "\x00" in error and self.instance.sessions.engine.dialect.name != "sqlite":
            raise InvalidValue(
                "the database cannot store a value: PostgreSQL text fields cannot contain "
                f"NUL (0x00) bytes (the {what}'s error text)"
            )

    def finish_workflow(
        self,
        workflow: Handle,
        status: str = "completed",
        *,
        finished_at: datetime | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> Run:
        """`Recorder.finish_workflow`, written by a flush with the rest of the batch: one
        transaction less a workflow (kept queued with the batch if the flush fails)."""
        with self._lock:
            inserted = loaded(workflow.run, "id") is not None  # else written after the flush
            if inserted:
                self._check_error(error, "workflow")
                change = Finish(status, finished_at or utcnow(), exit_code, error)
                self._finishes.append((workflow, change))
            self._flush()
            run = workflow.run
            if not inserted:
                given: dict[str, Any] = {"finished_at": finished_at, "exit_code": exit_code}
                given["error"] = error
                run = Recorder.finish_workflow(self, workflow, status, **given)
            self._kept.release()  # until a flush needs one again
            raise_left_out(self)  # the steps left out, once the workflow is finished
            return run

    # -- writing --------------------------------------------------------------------------------

    def _flush_due(self) -> None:
        """`flush` of a batch due by age, steps or an idle timer: the steps started less than
        `started_ms` ago that nothing of the batch names stay queued (`batch_hold.held`)."""
        from lakeline.lineage.batch_hold import held

        with self._lock:
            refs = held(self, time.monotonic()) if self._runs else []
            if not refs:
                self._flush()
                return
            kept = [(ref, self._runs.pop(ref), self._start_times.pop(ref, None)) for ref in refs]
            notes = {ref: self._notes.pop(ref) for ref in refs if ref in self._notes}
            try:
                self._flush()
            finally:  # queued again, ahead of any started since, with their start times
                self._runs = {**{ref: run for ref, run, _ in kept}, **self._runs}
                self._notes.update(notes)
                times = {ref: at for ref, _, at in kept if at is not None}
                self._start_times.update(times)
                self._first_start = min(self._start_times.values(), default=None)

    def flush(self) -> None:
        """Write everything queued (`_write`). Steps the database refuses (a run they name
        deleted since, hidden by space rules) are left out with what only they name, the rest
        written (`batch_refusals`): StepsNotRecorded names those left out since it was raised."""
        with self._lock:
            self._flush()
            raise_left_out(self)

    def _flush(self) -> None:
        """`flush` inside another call: steps left out are logged, raised by the next `flush`."""
        with self._lock, self._kept:  # its writes on the connection kept across flushes
            flush_leaving_out(self)

    def _write(self) -> None:
        """Write everything queued in one transaction (nothing if nothing is queued). If it
        fails, the batch is queued again (its files read again at the next flush) and the
        error raised: the next flush writes it."""
        with self._lock:
            taken = (self._files, self._links, self._finishes, self._since)
            self._files, self._links, self._finishes, self._since = {}, [], [], None
            if not any(taken[:3]):
                if self._runs:
                    self._insert_runs()
                return
            started: list[tuple[Handle, Handle]] = []  # runs inserted by the transaction
            committed: list[Callable[[], None]] = []  # what follows its commit
            try:  # the queued runs too, in the same transaction
                gone = write_batch(
                    self, list(taken[0].values()), taken[1], taken[2], started, committed
                )
            except BaseException:
                if not committed:  # rolled back: they stay queued, unsaved
                    unsaved_runs(started)
                    self._requeue(*taken)
                raise  # else written: not queued again (a Ctrl-C after the commit)
            for then in committed:  # outside the handling of a failed flush
                then()
            for f in gone:  # unreadable at a retry: recorded as the plain Recorder does
                if f.producer is not None:
                    Recorder.produce(self, f.producer, f.location, key=f.key, kind=f.artifact.kind)
                for user, role in f.used_by:
                    Recorder.use(self, user, f.location, role=role, key=f.key)

    _requeue = requeue
    _replan = replan

    def annotate(self, step: Handle, namespace: str, **meta: Any) -> Run:
        """`Recorder.annotate`; a step whose run is still queued is annotated in the queue
        (its insert writes the metadata), without a flush."""
        check_meta(namespace, meta)  # refused now: the queued run's insert would fail
        with self._lock:
            queued = self._runs.get(step.engine_ref)
            if queued is None or queued[0] is not step or step.run.id is not None:
                self._flush()
                check_recorded(self, step)
                return Recorder.annotate(self, step, namespace, **meta)
            params = dict(step.run.params or {})
            current = dict(params.get(namespace) or {})
            self._notes.setdefault(step.engine_ref, {}).setdefault(namespace, {}).update(meta)
            if any(current.get(k) != v for k, v in meta.items()):  # as Recorder.annotate
                params[namespace] = {**current, **meta}
                step.run.params = params
            return step.run

    def _flushed(name: str) -> Any:  # type: ignore[misc]
        """The Recorder's method `name`, after a flush."""

        def method(self: BatchRecorder, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._flush()  # then what it left out is not named (batch_refusals.unbatched)
                return unbatched(self, name, args, kwargs)

        method.__name__ = name
        method.__doc__ = getattr(Recorder, name).__doc__
        return method

    link = _flushed("link")
    link_many = _flushed("link_many")
    save_files = _flushed("save_files")
    reference = _flushed("reference")
    mark_gone = _flushed("mark_gone")
    mark = _flushed("mark")
    note_attempt = _flushed("note_attempt")
    find_step = _flushed("find_step")


def _state(st: os.stat_result) -> tuple[int, int, int, int]:
    """`seen.file_stat` of a stat already made."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def batching(default: bool) -> bool:
    """Whether to record in batches: `LAKELINE_CAPTURE_BATCH` (on/off) over `default`."""
    value = os.environ.get(BATCH_ENV, "").strip().lower()
    if not value:
        return default
    if value in _ON | _OFF:
        return value in _ON
    raise LakelineError(f"{BATCH_ENV}={value!r}: expected on or off (1/0, true/false, yes/no)")


def make_recorder(
    engine: str, *, batch: bool, steps: int = 100, ms: float = 500.0, **options: Any
) -> Recorder:
    """The Recorder an integration records with: a `BatchRecorder(steps=, ms=)` when
    `batching(batch)` (the engine's default, unless `LAKELINE_CAPTURE_BATCH` says otherwise),
    else a plain `Recorder`. `options`: the Recorder's own (root, upload, instance)."""
    if batching(batch):
        return BatchRecorder(engine, steps=steps, ms=ms, **options)
    return Recorder(engine, **options)
