"""The Tracker turns Snakemake events into lineage through lakeline's Recorder.

    workflow_started -> (on the first job) the workflow run of the pipeline transform
    job_info         -> a step run of the rule's transform; its inputs are used artifacts
    job_finished     -> outputs produced (hashed; temp() ones as "transient"), logs and
                        benchmarks with their kind, times from .snakemake/metadata; completed
    job_error        -> errored (outputs are not recorded; logs are)
    temp removal     -> (once the file is gone) its record is marked unavailable
    close            -> jobs that never reported (--quiet) finish from their metadata;
                        the workflow run finishes

The same code replays journals and imports metadata (`replay=True`): then a file is only
recorded if it is still the one the job made. Recording never raises: the first problem is
reported once and what could not be recorded is listed at the end (`strict` asks the owner,
through `on_failure`, to stop the workflow instead).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from snakemake_logger_plugin_lakeline.events import (
    DoneInfo,
    ErrorMessage,
    Event,
    JobError,
    JobFinished,
    JobInfo,
    TempRemoval,
    WorkflowStarted,
    exit_code_of,
)
from snakemake_logger_plugin_lakeline.jobs import Job, Jobs, Products
from snakemake_logger_plugin_lakeline.journal import Journal, Seen, is_dir, stat_of, stats_of
from snakemake_logger_plugin_lakeline.sources import RuleSource, Sources, pipeline_key
from snakemake_logger_plugin_lakeline.writer import Writer, is_fatal

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.lineage.recorder import Handle, Recorder

ENGINE = "snakemake"
BATCH_STEPS = 500  # finished jobs in a batch at most (a flush has a fixed cost: big batches
BATCH_MS = 10_000.0  # cost less per job); its age at most while Snakemake logs (quiet: handler)
# A busy run writes a batch every BATCH_MS: a flush's fixed cost (~6-9 ms of CPU) over the jobs
# finished meanwhile, which at 2 s was 0.15-0.5 ms a job (Snakemake's 40-140 ms a job, quiet to
# load 7). What Snakemake logged is in the journal at once; the catalog has it once Snakemake
# is quiet for 0.5 s, or within BATCH_MS.
STARTED_MS = 10_000.0  # a job only started, named by nothing of the batch: kept at most this
_EMPTY = (None, {}, [])  # params left out (compared by ==; built once, not per value)


def when(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text[:300]}"


@dataclass
class Tracker:
    """Follows one Snakemake invocation (or replays one) and records it."""

    instance_name: str | None = None
    upload: bool = False
    pipeline: str | None = None
    report: Callable[[str], None] = print
    on_failure: Callable[[], None] | None = None
    replay: bool = False
    expect_finished: bool = True  # False with --quiet: no job_finished events arrive
    journaling: bool = True
    # what the first job's set-up (the Recorder, the workflow's run) runs inside
    setting_up: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    finished_at: float | None = None  # when the workflow ended, if not now (imports)
    instance: Instance | None = None
    recorder: Recorder | None = None
    failure: str | None = None
    started: WorkflowStarted | None = None
    workflow: Handle | None = None
    jobs: Jobs = field(default_factory=Jobs)  # the running ones in `jobs.running`
    folders: set[str] = field(default_factory=set)  # directory() outputs recorded so far
    pipes: set[str] = field(default_factory=set)  # pipe() and service() files of this run
    writer: Writer | None = None
    errors: list[ErrorMessage] = field(default_factory=list)
    journal: Journal | None = None
    _pending_error: ErrorMessage | None = None
    _sources: Sources | None = None
    _closed: bool = False
    _job_problem_told: bool = False  # a job's first problem was reported (the rest listed)

    # -- problems -------------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """Stop recording after a problem with the catalog; report it once."""
        if self.failure is not None:
            return
        self.failure = one_line(exc)
        name = self.instance_name or os.environ.get("LAKELINE_INSTANCE") or "the current one"
        if self.replay:
            then = "Import stopped."
        elif self.on_failure is not None:
            then = "Stopping the workflow (strict)."
        else:
            then = "Snakemake keeps running; what is not recorded is listed at the end."
        self.report(f"lakeline: cannot record lineage in instance {name}: {self.failure}. {then}")
        if self.on_failure is not None:
            self.on_failure()

    def _problem(self, job: Job | None, what: str, exc: BaseException) -> None:
        if is_fatal(exc):
            self.fail(exc)
            return
        if getattr(exc, "steps", None):  # StepsNotRecorded: the other jobs it names too
            self._left_out(exc)
        if job is None:  # not a job's file: a warning
            self.report(f"lakeline: {what} not recorded: {one_line(exc)}")
            return
        job.problems.append(f"{what}: {one_line(exc)}")
        if not self._job_problem_told:
            self._job_problem_told = True
            self.report(f"lakeline: {job.label()}: {what} not recorded: {one_line(exc)}")
        if self.on_failure is not None:
            self.fail(exc)

    # -- set up ---------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        # vanished files are listed in the summary; the Recorder's own warnings would repeat it
        recorder_log = logging.getLogger("lakeline.recorder")
        if not recorder_log.handlers:
            recorder_log.addHandler(logging.NullHandler())

    def connect(self) -> Instance:
        """Connect to the instance (raises the catalog's own errors)."""
        from lakeline.instance import connect

        self.instance = connect(self.instance_name)
        return self.instance

    @property
    def workdir(self) -> str:
        assert self.started is not None
        return self.started.workdir or os.getcwd()

    def _ensure_workflow(self) -> bool:
        """The workflow run, recorded when its first job arrives (no-op runs add nothing)."""
        if self.workflow is not None:
            return True
        if self.failure is not None or self.started is None:
            return False
        from lakeline.lineage.recorder import BatchRecorder, make_recorder

        event = self.started
        try:
            with self.setting_up():
                instance = self.instance or self.connect()
                self.recorder = make_recorder(  # batched: at the latest at the next flush
                    ENGINE,  # or the end
                    batch=True,
                    steps=BATCH_STEPS,
                    ms=BATCH_MS,
                    root=self.workdir,
                    upload=self.upload,
                    instance=instance,
                )
                if isinstance(self.recorder, BatchRecorder):
                    self.recorder.started_ms = STARTED_MS  # (5 * BATCH_MS by default)
                self.writer = Writer(self.recorder, self.workdir, self._problem)
                sources = self.sources()
                params = {
                    "command": event.cmd,
                    "config": event.config,
                    "configfiles": event.configfiles,
                    "snakefile": event.snakefile,
                    "workdir": self.workdir,
                    "snakemake_version": event.snakemake_version,
                }
                self.workflow = self.recorder.start_workflow(
                    key=self.pipeline or pipeline_key(event.snakefile, self.workdir),
                    engine_run_id=event.workflow_id,
                    source_code=sources.text(event.snakefile),
                    reference=event.snakefile,
                    params={k: v for k, v in params.items() if v not in _EMPTY},
                    started_at=when(event.at),
                )
        except Exception as exc:
            self.fail(exc)
            return False
        return True

    def sources(self) -> Sources:
        if self._sources is None:
            self._sources = Sources(None if self.started is None else self.started.snakefile)
        return self._sources

    def _write(self, event: Event) -> None:
        if self.replay or not self.journaling or self.started is None:
            return
        if self.journal is None:
            self.journal = Journal(self.workdir, self.started.workflow_id)
            self.journal.write(self.started)
        self.journal.write(event)

    # -- events ---------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Take one event into account (journal it, record it), then write what is due."""
        self.apply_many((event,))

    def apply_many(self, events: Iterable[Event], *, idle: bool = False) -> None:
        """Take events into account in order, then write the journal and what is due
        (`idle`, Snakemake is quiet: the whole batch, but for steps only started that
        nothing of it names, which the batching Recorder keeps until their finish or its
        `started_ms`, so that each is written once: `BatchRecorder.flush_idle`). If one
        raises (a Ctrl-C in a flush), the events after it are journaled, not recorded, for
        a replay (`recover`, an import)."""
        events = list(events)
        for at, event in enumerate(events):
            try:
                self._take(event)
            except BaseException:
                self._journal_only(events[at + 1 :])
                raise
        self.flush(unless_fresh=not idle, idle=idle)

    def _journal_only(self, events: list[Event]) -> None:
        """Journal `events` as `_take` would (with the files' stats a replay compares), and
        write the journal, without recording them. Best effort: the caller raises."""
        if self.replay or not self.journaling:
            return
        infos: dict[int, JobInfo] = {}
        try:
            for event in events:
                if isinstance(event, WorkflowStarted):
                    self._take(event)  # no recording: the settings only
                elif self.started is None or self.started.touch:
                    continue
                elif isinstance(event, ErrorMessage):
                    if self.journal is not None:
                        self.journal.write(event)
                    continue
                elif isinstance(event, JobInfo):
                    infos[event.jobid] = event
                    inputs = (p for p in event.inputs if p not in self.pipes)
                    event.input_stats = stats_of(self.workdir, inputs)
                elif isinstance(event, JobFinished):
                    known = self.jobs.get(event.jobid)
                    info = infos.get(event.jobid) or (known.info if known else None)
                    if info is not None:
                        Job(info).observe(self.workdir, event, {}, Job(info).products())
                elif isinstance(event, JobError):
                    event.files = stats_of(self.workdir, event.logs)
                self._write(event)
        except Exception as exc:  # the error being raised is the one to report
            self.report(f"lakeline: events not journaled: {one_line(exc)}")
        if self.journal is not None:
            self.journal.flush()

    def _take(self, event: Event) -> None:
        if isinstance(event, WorkflowStarted):
            if self.started is None:
                self.started = event
                self._settings(event)
        elif self.started is None or self.started.touch:
            return  # outside a workflow run (tests), or --touch: nothing runs, nothing to record
        elif isinstance(event, ErrorMessage):
            self.errors.append(event)
            self._pending_error = event
            if self.journal is not None and not self.replay:  # once a job ran
                self.journal.write(event)
        else:
            try:
                self._job_event(event)
            except Exception as exc:  # one job's trouble (a file, its source) is that job's
                self._event_problem(event, exc)

    def _job_event(self, event: Event) -> None:
        if isinstance(event, JobInfo):
            self._job_info(event)
        elif isinstance(event, JobFinished):
            self._job_finished(event, logged=True)
        elif isinstance(event, JobError):
            self._job_error(event)
        elif isinstance(event, TempRemoval):
            self._temp_removal(event)

    def _event_problem(self, event: Event, exc: Exception) -> None:
        """What an event could not record: the catalog's trouble stops recording; any
        other is its job's problem (listed at the end), or a one-line warning."""
        job = self.jobs.get(getattr(event, "jobid", -1))
        if is_fatal(exc):
            self.fail(exc)
        elif job is not None:
            self._problem(job, "the job's event", exc)
        else:
            self.report(f"lakeline: {type(event).__name__} not recorded: {one_line(exc)}")

    def _settings(self, event: WorkflowStarted) -> None:
        """Live: note the settings in the event (journaled); replay: record as the run did."""
        if not self.replay:
            event.upload, event.pipeline = self.upload, self.pipeline
            return
        if event.upload is not None:
            self.upload = event.upload
        self.pipeline = self.pipeline or event.pipeline

    def _job_info(self, info: JobInfo) -> None:
        known = self.jobs.get(info.jobid)
        if known is not None and known.status == "started":
            return  # the same job announced again
        if not self.expect_finished:
            self.finish_ready()
        self.pipes.update(info.pipes)
        seen: Seen = {}  # the stats taken now, for the writer too
        if not self.replay:
            inputs = (p for p in info.inputs if p not in self.pipes)
            info.input_stats = stats_of(self.workdir, inputs, seen)
        self._write(info)
        if known is not None:  # a restarted job (--retries): the same step runs again
            known.info, known.finished = info, False
            self.jobs.set_status(known, "started")
        else:
            self._start(self.jobs.add(Job(info)), seen)
        if info.updates:  # it rewrites files in place: what others read is hashed first
            self.flush()

    def _start(self, job: Job, seen: Seen | None = None) -> None:
        """Record the job's step and its inputs (`seen`: their stats taken for this event)."""
        if not self._ensure_workflow():
            return
        assert self.recorder is not None and self.workflow is not None
        info = job.info
        assert isinstance(info, JobInfo)  # (a DoneInfo's job is done)
        try:
            source = self.sources().rule(info.rule, info.rule_file, info.rule_line, info.script)
        except Exception as exc:  # recorded without its code, not lost
            self.report(f"lakeline: {job.label()}: source not read: {one_line(exc)}")
            source = RuleSource(None, None)
        params: dict[str, Any] = {
            "jobid": info.jobid,
            "wildcards": info.wildcards,
            "params": info.params,
            "threads": info.threads,
            "resources": info.resources,
            "shellcmd": info.shellcmd,
            "script": source.script,
            "checkpoint": info.is_checkpoint or None,
            "reason": info.reason,
        }
        try:
            job.step = self.recorder.start_step(
                self.workflow,
                key=info.rule,
                kind="rule",
                engine_task_id=info.task_id or str(info.jobid),
                params={k: v for k, v in params.items() if v not in _EMPTY},
                source_code=source.code,
                reference=source.reference,
                started_at=when(info.at),
            )
        except Exception as exc:
            self._problem(job, "the job", exc)
            return
        assert self.writer is not None
        for path in info.inputs:
            if path in self.pipes:
                continue
            if self.replay and not self._unchanged(path, info.input_stats):
                if not self._recorded(job, path, output=False):
                    job.problems.append(f"{path}: changed since the run")
                continue
            self.writer.use(job, path, info.input_names.get(path, ""), (seen or {}).get(path))
            for folder in self._folders_holding(path):  # checkpoints: the folder holding it
                self.writer.use(job, folder, "directory")

    def _folders_holding(self, path: str) -> list[str]:
        """The directory() outputs of this run that contain `path` (the job depends on them)."""
        if not self.folders:
            return []
        return [f for f in self.folders if path.startswith(f.rstrip("/") + "/")]

    def _job_finished(self, event: JobFinished, *, logged: bool = False) -> None:
        job = self.jobs.get(event.jobid)  # logged: Snakemake logged it (not a finish inferred)
        if job is None or job.status != "started":
            return
        seen: Seen = {}
        products = job.products()  # (once: `observe` and `_finish` both walk them)
        if not self.replay:
            job.observe(self.workdir, event, seen, products, logged=logged)
        self._write(event)
        self._finish(job, "completed", event, seen, products)

    def _finish(
        self,
        job: Job,
        status: str,
        event: JobFinished | JobError,
        seen: Seen | None = None,
        made: Products | None = None,
    ) -> None:
        """Record the job's products (`seen`: stats `observe` took; `made`: its
        `job.products()`, if the caller has them) and its end."""
        seen = seen or {}
        self.jobs.set_status(job, status)
        if job.step is None or self.failure is not None or self.writer is None:
            return
        products = (job.products() if made is None else made) if status == "completed" else []
        if status == "errored":  # logs of failed jobs are kept; outputs are not recorded
            products = [(p, "log") for p in job.info.logs]
        for path, kind in products:
            if self.replay and not self._unchanged(path, event.files):
                if not self._recorded(job, path, output=True):
                    job.problems.append(f"{path}: changed since the run")
                continue
            self.writer.produce(job, path, kind, seen.get(path))
            if kind == "transient" and not os.path.lexists(os.path.join(self.workdir, path)):
                self.writer.removed(path)  # a replay, after Snakemake deleted it
            if kind is None and is_dir(self.workdir, path, seen.get(path)):
                self.folders.add(path)
        error = event.error if isinstance(event, JobError) else None
        exit_code = getattr(event, "exit_code", 0 if status == "completed" else None)
        finished = event.endtime if isinstance(event, JobFinished) else None
        at = event.at if finished is None else max(finished, job.info.at)
        self.writer.finish(job, status, when(at), exit_code=exit_code, error=error)
        if job.finished and status == "completed" and isinstance(job.info, JobInfo):
            job.info = DoneInfo.of(job.info)  # queued in the Recorder: its details are done

    def flush(self, *, unless_fresh: bool = False, idle: bool = False) -> None:
        """Write the pending batch (`unless_fresh`: only if it is due; `idle`: but the steps
        only started, see `apply_many`)."""
        if self.journal is not None:  # what is recorded is in the journal too
            self.journal.flush()
        if self.writer is None or self.failure is not None:
            return
        from lakeline.errors import StepsNotRecorded
        from lakeline.lineage.recorder import BatchRecorder

        try:
            if not unless_fresh or self.writer.due():
                self.writer.flush(idle=idle)
            if isinstance(self.recorder, BatchRecorder):  # the step finishes handed to it
                self.recorder.flush_if_due()  # (the handler's timer calls this during long jobs)
        except StepsNotRecorded as exc:  # left out of a batch, the rest written: recording goes on
            self.report(f"lakeline: {one_line(exc)}")
            self._left_out(exc)
        except Exception as exc:
            self.fail(exc)

    def _unchanged(self, path: str, stats: dict[str, list[int]]) -> bool:
        """In a replay: whether the file is still what the run saw (a gone file is looked up)."""
        location = os.path.join(self.workdir, path)
        if not os.path.lexists(location):
            return True  # the Recorder finds it if it was recorded, else lists it as missing
        return path in stats and stat_of(location) == stats[path]

    def _recorded(self, job: Job, path: str, *, output: bool) -> bool:
        """In a replay: whether the run's own record holds the file (recorded live, before a
        later run rewrote it), by location or by the key it was recorded under."""
        if job.step is None:
            return False
        if output not in job.recorded:
            from lakeline.lineage.recorder import BatchRecorder

            if job.step.run.id is None and isinstance(self.recorder, BatchRecorder):
                from lakeline.errors import StepsNotRecorded

                try:  # a queued step: its recorded run is known at the flush
                    self.recorder.flush()
                except StepsNotRecorded as exc:  # the rest written: this event goes on
                    self.report(f"lakeline: {one_line(exc)}")
                    self._left_out(exc)
            run = job.step.run
            artifacts = run.outputs if output else run.inputs
            job.recorded[output] = {n for a in artifacts for n in (a.key, a.location) if n}
        location = os.path.join(self.workdir, path)
        names = {path, os.path.realpath(location)}
        if self.writer is not None:
            names.add(self.writer.key_of(location) or path)
        return bool(names & job.recorded[output])

    def _job_error(self, event: JobError) -> None:
        pending, self._pending_error = self._pending_error, None
        if not self.replay and pending is not None and event.at - pending.at < 10:
            event.error = "\n".join(t for t in (event.error, pending.message) if t)
            event.exit_code = exit_code_of(pending.message)
        if not self.replay:
            event.files = stats_of(self.workdir, event.logs)
        self._write(event)
        job = self.jobs.get(event.jobid)
        if job is None:  # no job_info seen (filtered out): describe it from the error
            info = JobInfo(event.jobid, event.rule, event.at, event.inputs, event.outputs)
            info.logs, info.shellcmd = event.logs, event.shellcmd
            job = self.jobs.add(Job(info))
            self._start(job)
        self._finish(job, "errored", event)

    def _temp_removal(self, event: TempRemoval) -> None:
        """Snakemake deletes a temp() file next: make sure its producer's outputs are in,
        and journal the removal (a replay marks the file gone too: one an earlier run made is
        no job's product here)."""
        if not self.replay:
            for job in self.jobs.producing(event.path):  # running jobs only
                self._finish_from_metadata(job)
            self._write(event)
            self.flush()  # hashed now, while the file exists
        if self.writer is not None:
            self.writer.removed(event.path)  # once it is gone, its record says so

    # -- jobs that never reported ---------------------------------------------------------------

    def _finish_from_metadata(self, job: Job) -> bool:
        """Finish a job whose outputs all have fresh metadata (it completed silently)."""
        if not job.completed_silently(self.workdir):
            return False
        self._job_finished(JobFinished(job.info.jobid, at=time.time()))
        return True

    def finish_ready(self) -> None:
        """Finish the running jobs whose metadata says they completed (--quiet: at each new
        job; the running jobs only, not every job of the run)."""
        for job in list(self.jobs.running.values()):
            self._finish_from_metadata(job)

    def close(self) -> list[str]:
        """Finish what is still open and the workflow run; return the closing report lines."""
        if self._closed or self.started is None:
            return []
        self._closed = True
        if not self.replay:
            self.finish_ready()
        failed = bool(self.errors) or any(j.status == "errored" for j in self.jobs.values())
        for job in list(self.jobs.running.values()):
            if not failed and job.done_unlogged(self.workdir, self.expect_finished or self.replay):
                self._job_finished(JobFinished(job.info.jobid, at=time.time()))  # no metadata
            else:  # killed, or still running when Snakemake stopped (Job.done_unlogged)
                self._finish(job, "aborted", JobFinished(job.info.jobid, at=time.time()))
                failed = True
        self.flush()
        if self.journal is not None:
            self.journal.close()
        if self.failure is not None and not self.replay:
            recovered = self._recover()
            if recovered is not None:
                return recovered
        if self.workflow is not None and self.recorder is not None and self.failure is None:
            from lakeline.errors import StepsNotRecorded

            error = self.errors[0].message if self.errors else None
            try:
                self.recorder.finish_workflow(
                    self.workflow,
                    "errored" if failed else "completed",
                    finished_at=when(self.finished_at),
                    error=None if error is None else error[:2000],
                )
            except StepsNotRecorded as exc:  # the workflow run is finished
                self.report(f"lakeline: {one_line(exc)}")
                self._left_out(exc)
            except Exception as exc:
                self.fail(exc)
        return self.summary()

    def _recover(self) -> list[str] | None:
        """After losing the catalog mid-run: the run recorded from its journal (outcome.py)."""
        from snakemake_logger_plugin_lakeline.outcome import recover

        return recover(self)

    def done_line(self, busy: float | None = None, cpu: float | None = None) -> str | None:
        """Where the run was recorded, with the time and CPU spent (outcome.py)."""
        from snakemake_logger_plugin_lakeline.outcome import done_line

        return done_line(self, busy, cpu)

    def _left_out(self, exc: BaseException) -> None:
        """Jobs whose steps a batch left out: not recorded, as the summary says (outcome.py)."""
        from snakemake_logger_plugin_lakeline.outcome import left_out

        left_out(self, getattr(exc, "steps", {}))

    def summary(self) -> list[str]:
        """What could not be recorded, one line per job (outcome.py)."""
        from snakemake_logger_plugin_lakeline.outcome import summary

        return summary(self)
