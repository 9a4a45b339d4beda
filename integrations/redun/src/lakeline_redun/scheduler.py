"""Live capture: a redun Scheduler that records each job as it starts and ends.

    # .redun/redun.ini
    [scheduler]
    setup_scheduler = lakeline_redun::setup_scheduler

redun has no event API, so this subclass wraps three of the Scheduler's private main-thread
methods (checked against redun 0.44): a job's run starts when redun executes it (params from
its evaluated arguments), and is finished from what redun has just written to its database,
by the same code as `lakeline redun import` — so both paths give the same lineage. A job
that completed is described from what the scheduler holds (its arguments, its result, its
children's results) rather than read back from redun's database, which costs several
queries and unpickled values a job; cached and failed jobs are read back.
While the timer runs with a batched Recorder, a job that completed is queued as the scheduler
described it and recorded (its files used and produced, its finish) with the others that ended
since, by the timer just before it writes the batch, or before the workflow's root job: the
Recorder's calls back to back cost ~0.25 ms a job, spread between redun's own code ~0.6 (its
code and data out of the caches each time: bench/cold_calls.py). What is judged from the
job's end is judged then: which returned files it wrote, and the state (stat) of each file it
used; a file of the job changed meanwhile (another job rewrote it) is left out, with a
warning, rather than recorded with another job's bytes.
Recording never fails the workflow: problems are logged as warnings. Jobs run with
`prov=False` are not in redun's database and are not recorded (without a warning).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeline.lineage.recorder import BatchRecorder
from redun import Scheduler

from lakeline_redun.reader import ExecutionInfo, JobInfo, JobStart, job_info, json_list
from lakeline_redun.record import ENGINE, Ended, ExecutionRecorder
from lakeline_redun.values import FileRef, arguments, files_in, positional_names

if TYPE_CHECKING:
    from lakeline.lineage.recorder import Recorder
    from redun.config import Config
    from redun.scheduler import Job

log = logging.getLogger("lakeline.redun")
BATCH_STEPS = 500  # finished jobs in a batch at most
BATCH_MS = 2000.0  # age of a batch from its first job's end at most (started jobs: 10 s)
IDLE = 0.5  # s without a job starting or ending: the timer writes what finished
FLUSH_EVERY = IDLE / 2  # seconds between the timer's checks
_FAILED = object()  # _record_end without a result: the job failed


class LakelineScheduler(Scheduler):
    """A redun Scheduler that records every job as a lakeline run while it runs.

    `root`: the folder relative File paths start from (default: the current folder).
    """

    def __init__(
        self,
        config: Config | None = None,
        *args: Any,
        root: str | os.PathLike[str] | None = None,
        pipeline: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, *args, **kwargs)
        section: Any = config.get("lakeline", {}) if config is not None else {}
        self.lakeline_root = os.fspath(root or section.get("root") or os.getcwd())
        self.lakeline_pipeline = pipeline or section.get("pipeline")
        self._recorder: Recorder | None = None
        self._executions: dict[str, ExecutionRecorder] = {}
        # jobs started, until they end: what they were called with (redun clears it at the
        # end), the files in it, their child jobs started; the files each job returned
        self._starts: dict[str, tuple[JobStart, list[FileRef]]] = {}
        self._children: dict[str, list[str]] = {}
        self._results: dict[str, set[tuple[str, str]]] = {}
        # start and end times redun's database backend wrote for a job (until it ends): read
        # back from the database otherwise, one query a job each
        self._times: dict[str, datetime] = {}
        self._ends: dict[str, datetime] = {}
        self._names: dict[tuple[str, str], list[str]] = {}  # a task's parameter names
        # the command line redun's backend recorded for an execution (until its lineage is
        # set up): read back from the database otherwise, a query and a compile a run
        self._argv: dict[str, str] = {}
        self._timed = False  # run() keeps a timer thread flushing batches due by time
        # completed jobs queued for the timer (the Recorder's calls in one pass), since when
        self._ended: list[tuple[ExecutionRecorder, JobInfo, Ended]] = []
        self._ended_since: float | None = None
        self._ended_lock = threading.Lock()  # the queue
        self._recording = threading.RLock()  # one pass at a time, in order
        self._touched = time.monotonic()  # a job's last start or end (the timer's idle clock)
        self._capture_times()

    def _capture_times(self) -> None:
        """Wrap the database backend's `record_job_start` / `record_job_end` to keep the
        times they write (redun takes `now` from its caller, else its own `utcnow()`), and
        its `record_execution` to keep an execution's command line as it stores it."""
        import json

        from redun.backends.db import RedunBackendDb
        from redun.utils import utcnow

        backend = self.backend
        if not isinstance(backend, RedunBackendDb):
            return
        start, end = backend.record_job_start, backend.record_job_end
        execution = backend.record_execution

        def record_execution(exec_id: str, args: list[str]) -> None:
            execution(exec_id, args)
            self._argv[exec_id] = json.dumps(args)  # the text redun's Execution row holds

        def record_job_start(job: Any, now: datetime | None = None) -> Any:
            now = now or utcnow()
            row = start(job, now=now)
            self._times.setdefault(job.id, now)
            return row

        def record_job_end(
            job: Any, now: datetime | None = None, status: str | None = None
        ) -> None:
            now = now or utcnow()
            end(job, now=now, status=status)
            self._ends[job.id] = now

        backend.record_job_start = record_job_start  # type: ignore[method-assign]
        backend.record_job_end = record_job_end  # type: ignore[method-assign]
        backend.record_execution = record_execution  # type: ignore[method-assign]

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """`Scheduler.run`, with a timer that writes the Recorder's batch once it is due or
        once no job has started or ended for IDLE seconds: redun reports nothing while a long
        job runs, and a finished job must not wait for it (jobs that only started wait for
        their end, or the Recorder's `started_ms`: each is then written once)."""
        stop = threading.Event()
        timer = threading.Thread(target=self._flush_batches, args=(stop,), daemon=True)
        timer.start()
        self._timed = True  # a batch due by time is written by the timer, off redun's loop
        if isinstance(self._recorder, BatchRecorder):  # a second run of this scheduler
            self._recorder.flush_on_calls = False
        try:
            return super().run(*args, **kwargs)
        finally:
            stop.set()
            timer.join()
            self._record_ended()  # a run that stopped before its root job's end
            self._timed = False
            if isinstance(self._recorder, BatchRecorder):
                self._recorder.flush_on_calls = True

    def _flush_batches(self, stop: threading.Event) -> None:
        while not stop.wait(FLUSH_EVERY):
            recorder = self._recorder
            if isinstance(recorder, BatchRecorder):
                try:
                    now = time.monotonic()
                    since = self._ended_since
                    due = since is not None and (now - since) * 1000 >= BATCH_MS
                    if now - self._touched > IDLE or due:
                        self._record_ended()  # the jobs that ended, into the batch
                        recorder.flush_idle()  # started jobs alone: at their end or started_ms
                    else:
                        recorder.flush_if_due()
                except Exception as error:  # lineage must never break the workflow
                    _warn("a batch of jobs", error)

    def _session(self) -> Any:
        """The session of redun's database backend (None for other backends)."""
        return getattr(self.backend, "session", None)

    def _lineage(self, execution_id: str) -> ExecutionRecorder:
        lineage = self._executions.get(execution_id)
        if lineage is not None:
            return lineage
        from lakeline.lineage.recorder import make_recorder
        from redun.backends.db import Execution

        if self._recorder is None:  # batched: written every BATCH_STEPS jobs / BATCH_MS
            # while redun is busy, by the timer once it is idle, and at the end
            self._recorder = make_recorder(
                ENGINE, batch=True, steps=BATCH_STEPS, ms=BATCH_MS, root=self.lakeline_root
            )
            if self._timed and isinstance(self._recorder, BatchRecorder):
                self._recorder.flush_on_calls = False  # the timer writes batches due by time
        if execution_id not in self._executions:
            argv = self._argv.pop(execution_id, None)
            if argv is not None:  # recorded by this scheduler: its root job starts first
                info = ExecutionInfo(execution_id, json_list(argv), None)
            else:  # an execution this scheduler did not record (a parent scheduler's)
                session = self._session()
                row = session.get(Execution, execution_id) if session is not None else None
                args = [] if row is None else json_list(row.args)
                info = ExecutionInfo(execution_id, args, None if row is None else row.job_id)
            self._executions[execution_id] = ExecutionRecorder(
                self._recorder, info, pipeline=self.lakeline_pipeline
            )
        return self._executions[execution_id]

    def _exec_job_main_thread(self, job: Job, eval_args: tuple[tuple, dict]) -> None:  # type: ignore[type-arg]
        super()._exec_job_main_thread(job, eval_args)
        self._touched = time.monotonic()
        try:
            self._record_start(job)
        except Exception as error:  # lineage must never break the workflow
            _warn(f"the start of job {job.id}", error)

    def _resolve_job_main_thread(self, job: Job, result: Any) -> None:
        super()._resolve_job_main_thread(job, result)
        self._record_end(job, result)

    def _reject_job_main_thread(self, job: Job | None, error: Any, *args: Any, **kw: Any) -> None:
        super()._reject_job_main_thread(job, error, *args, **kw)
        if job is not None:
            self._record_end(job)

    def _record_start(self, job: Job) -> None:
        assert job.task is not None and job.execution is not None
        if not _provenance(job):
            return
        session = self._session()
        if session is None:
            return
        started_at = self._times.get(job.id)
        if started_at is None:  # a time this scheduler did not see
            from redun.backends.db import Job as JobRow

            row = session.get(JobRow, job.id)
            if row is None:
                return  # not started yet (waiting for resources): recorded when it is
            started_at = row.start_time
        parent_id = job.parent_job.id if job.parent_job else None
        if parent_id is not None:  # its parent's end reads its result, recorded or not
            self._children.setdefault(parent_id, []).append(job.id)
        lineage = self._lineage(job.execution.id)
        if parent_id is None:
            lineage.execution.root_job_id = job.id
        pos_args, kw_args = job.eval_args or ((), {})
        names = self._names.get((job.task.hash, job.task.name))
        if names is None:  # the source parsed once a task
            names = positional_names(job.task.source, job.task.name)
            self._names[job.task.hash, job.task.name] = names
        params, used = arguments(pos_args, kw_args, names)
        start = JobStart(
            id=job.id,
            execution_id=job.execution.id,
            parent_id=parent_id,
            task_name=job.task.fullname,
            task_hash=job.task.hash,
            source=job.task.source,
            started_at=started_at,
            params=params,
        )
        if parent_id is None:
            lineage.start_workflow(start)
        lineage.start_job(start)
        self._starts[job.id] = (start, used)

    def _record_end(self, job: Job, result: Any = _FAILED) -> None:
        self._touched = time.monotonic()
        # what the scheduler kept of the job is forgotten first, whether it is recorded or not
        self._times.pop(job.id, None)
        ended = self._ends.pop(job.id, None)
        if result is _FAILED:
            self._forget(job)
        if not _provenance(job):
            return
        try:
            session = self._session()
            if session is None or job.execution is None:
                return
            known = None if result is _FAILED else self._completed(session, job, result, ended)
            lineage = self._lineage(job.execution.id)
            if job.parent_job is None:  # its root job (whether its start was seen or not)
                lineage.execution.root_job_id = job.id
            elif known is not None and self._timed and isinstance(self._recorder, BatchRecorder):
                seen = lineage.ended(known)
                if seen is not None:  # recorded by the timer, with the others
                    self._queue_ended(lineage, known, seen)
                    return
            self._record_ended()  # those that ended before it first
            lineage.finish_job(known or job_info(session, job.id))
        except Exception as error:  # lineage must never break the workflow
            _warn(f"job {job.id}", error)

    def _queue_ended(self, lineage: ExecutionRecorder, info: JobInfo, ended: Ended) -> None:
        """Queue a completed job for `_record_ended`, with what its end told (`ended`)."""
        with self._ended_lock:
            self._ended.append((lineage, info, ended))
            if self._ended_since is None:
                self._ended_since = time.monotonic()

    def _record_ended(self) -> None:
        """Record the completed jobs queued since the last pass, in the order they ended.
        Interrupted (a Ctrl-C), the jobs not recorded yet are queued again, first, the one
        being recorded with them (recorded again: the same edges and finish), for the pass
        `run` makes as it ends (as lakeline_prefect's `Ended.record`)."""
        with self._recording:
            ended: list[tuple[ExecutionRecorder, JobInfo, Ended]] = []
            done = 0
            try:  # taken inside: an interrupt as the lock is released queues them again
                with self._ended_lock:
                    ended, self._ended, self._ended_since = self._ended, [], None
                for lineage, info, seen in ended:
                    try:
                        lineage.finish_job(info, seen)
                    except Exception as error:  # lineage must never break the workflow
                        _warn(f"job {info.id}", error)
                    done += 1
            finally:
                if done < len(ended):
                    with self._ended_lock:
                        self._ended[:0] = ended[done:]
                        if self._ended_since is None:
                            self._ended_since = time.monotonic()

    def _completed(
        self, session: Any, job: Job, result: Any, ended: datetime | None = None
    ) -> JobInfo | None:
        """A job that completed, as `job_info` reads it back from redun's database, from
        what the scheduler holds: its arguments (the call node's), its result, the files its
        child jobs returned. None when something is only in the database: a cached job (its
        origin), a job whose start or a child's end was not seen here. `ended`: the end
        time redun's backend wrote, if this scheduler saw it written."""
        from redun.backends.db import Job as JobRow

        started = self._starts.pop(job.id, None)
        returned = files_in(result)
        if job.parent_job is not None:  # for its parent's end
            self._results[job.id] = {(f.path, f.redun_hash) for f in returned}
        kids = [self._results.pop(child, None) for child in self._children.pop(job.id, [])]
        if started is None or job.was_cached or None in kids:
            return None
        start, used = started
        excluded = {(f.path, f.redun_hash) for f in used}.union(*kids)
        finished = ended  # as redun wrote it
        if finished is None:  # an end this scheduler did not see written
            finished = session.query(JobRow.end_time).filter(JobRow.id == job.id).scalar()
        info = JobInfo(**vars(start), finished_at=finished, call_hash=job.call_hash)
        info.status, info.used = "completed", used
        info.produced = [f for f in returned if (f.path, f.redun_hash) not in excluded]
        return info

    def _forget(self, job: Job) -> None:
        """Drop what was kept for a job that failed: its start, its child jobs' results."""
        self._starts.pop(job.id, None)
        for child in self._children.pop(job.id, []):
            self._results.pop(child, None)


def _warn(what: str, error: Exception) -> None:
    """A recording's problem as a warning. Steps a batch left out (StepsNotRecorded: the rest
    written, the call's own job too unless named) are named by the error itself: "could not
    record job <root>" would be false when the root job's end only wrote the batch."""
    from lakeline.errors import StepsNotRecorded

    if isinstance(error, StepsNotRecorded):
        log.warning("lakeline: %s", error)
    else:
        log.warning("lakeline: could not record %s: %s", what, error)


def _provenance(job: Job) -> bool:
    """Whether redun records the job (`prov=False`: no record of it, nor of its children)."""
    recording = getattr(job, "recording_provenance", None)
    return True if recording is None else bool(recording())


def setup_scheduler(config: Config | None = None, **kwargs: Any) -> LakelineScheduler:
    """redun's `setup_scheduler` hook: a Scheduler that records lineage in lakeline."""
    return LakelineScheduler(config=config, **kwargs)
