"""Record redun executions and jobs through lakeline's Recorder (shared by import and live)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeline.lineage.recorder import Handle, Recorder, file_state, written_since

from lakeline_redun.reader import ExecutionInfo, JobInfo, JobStart

if TYPE_CHECKING:
    from lakeline_redun.values import FileRef

log = logging.getLogger("lakeline.redun")

ENGINE = "redun"
RETURNED = "returned"  # role of a file a job returned without writing it


@dataclass(frozen=True)
class Ended:
    """What a completed job's end tells, for recording it later: the files of its result it
    wrote (not only returned), and the state (inode, size, mtime, ctime) of each file it
    used or returned (all local regular files: see `ExecutionRecorder.ended`)."""

    wrote: frozenset[tuple[str, str]]
    states: dict[str, tuple[int, int, int, int] | None]

    def changed(self, recorder: ExecutionRecorder, path: str) -> bool:
        """Whether a local file is not as the job's end left it (a later job rewrote it)."""
        state = self.states.get(path)
        return state is not None and file_state(recorder.local(path)) != state


@dataclass
class ExecutionRecorder:
    """Maps one redun Execution onto a workflow Run and its Jobs onto (nested) step Runs.

    Job runs are keyed by redun's job id (globally unique), the workflow run by the execution
    id; a Job's child Jobs are child Runs of its Run, all under the pipeline Transform.
    """

    recorder: Recorder
    execution: ExecutionInfo
    pipeline: str | None = None
    workflow: Handle | None = None
    handles: dict[str, Handle] = field(default_factory=dict)

    def start_workflow(self, root: JobStart) -> Handle:
        """The workflow run, its pipeline keyed by the root task (or `pipeline`)."""
        if self.workflow is None:
            self.workflow = self.recorder.start_workflow(
                key=self.pipeline or root.task_name,
                engine_run_id=self.execution.id,
                reference=root.task_hash,
                params={"args": self.execution.args, "root_job": root.id},
                started_at=root.started_at,
            )
        return self.workflow

    def start_job(self, job: JobStart) -> Handle:
        """The run of `job`, created once, child of its parent job's run."""
        if job.id in self.handles:
            return self.handles[job.id]
        workflow = self.start_workflow(job) if self.workflow is None else self.workflow
        # nested under the parent job's run (its handle: a batched Recorder resolves the
        # run at its flush), the transform under the pipeline's
        parent = self.handles.get(job.parent_id or "")
        handle = self.recorder.start_step(
            workflow,
            key=job.task_name,
            kind="task",
            engine_task_id=job.id,
            params=job.params,
            source_code=job.source,
            reference=job.task_hash,
            started_at=job.started_at,
            scoped=False,
            parent=parent,
        )
        self.handles[job.id] = handle
        return handle

    def ended(self, job: JobInfo) -> Ended | None:
        """What a completed job's end tells, judged now, for `finish_job` later; None (to be
        recorded now) if a file of it could change unseen meanwhile: a remote object, a
        folder (a file inside rewritten), a path with no file (one written there later)."""
        states = {}
        for ref in [*job.used, *job.produced]:
            state = None if "://" in ref.path else file_state(self.local(ref.path))
            if state is None:
                return None
            states[ref.path] = state
        wrote = frozenset((r.path, r.redun_hash) for r in job.produced if self._wrote(job, r))
        return Ended(wrote, states)

    def finish_job(self, job: JobInfo, ended: Ended | None = None) -> None:
        """Record the files the job used and produced, then its final status; `ended`: what
        its end told (`ended()`), when it is recorded later."""
        handle = self.start_job(job)
        for ref in job.used:
            role = _role(job, ref)
            if ended is not None and ended.changed(self, ref.path):
                _changed(job, ref)
                continue
            self._file(handle, ref, output=False, role=role)
        if job.status == "completed":
            for ref in job.produced:
                if ended is not None:
                    wrote = (ref.path, ref.redun_hash) in ended.wrote
                else:
                    wrote = self._wrote(job, ref)
                if ended is not None and ended.changed(self, ref.path):
                    _changed(job, ref)
                elif wrote:
                    self._file(handle, ref, output=True)
                else:  # returned but not written (a make-like task returning a source)
                    self._file(handle, ref, output=False, role=RETURNED)
        if job.status == "started":
            return  # still running when read
        self.recorder.finish_step(
            handle,
            job.status,
            finished_at=job.finished_at,
            error=job.error,
            cached_from=job.cached_from,
        )
        if job.id == self.execution.root_job_id and self.workflow is not None:
            status = "errored" if job.status == "errored" else "completed"
            self.recorder.finish_workflow(
                self.workflow, status, finished_at=job.finished_at, error=job.error
            )

    def _file(self, handle: Handle, ref: FileRef, *, output: bool, role: str = "") -> None:
        """Record one file of a job; one that cannot be read (no credentials, gone from a
        bucket) is a reference by location, and costs no other file or job."""
        try:
            if output:
                self.recorder.produce(handle, ref.path)
            else:
                self.recorder.use(handle, ref.path, role=role)
        except Exception as exc:
            if _database(exc):
                raise
            reason = (str(exc).splitlines() or [""])[0]
            log.warning(
                "lakeline: %s cannot be read (%s: %s): recorded by location",
                ref.path,
                type(exc).__name__,
                reason,
            )
            self.recorder.reference(handle, ref.path, output=output, role=role)

    def _wrote(self, job: JobInfo, ref: FileRef) -> bool:
        """Whether the job may have written a file of its result: a local one written before
        the job started (by mtime and ctime) was only returned."""
        if job.started_at is None:
            return True
        path = ref.path if "://" in ref.path else self.local(ref.path)
        return written_since(path, job.started_at)

    def local(self, path: str) -> str:
        """A local path as the Recorder resolves it (relative: to its root)."""
        if not os.path.isabs(path) and self.recorder.root is not None:
            return os.path.join(os.fspath(self.recorder.root), path)
        return path


def _changed(job: JobInfo, ref: FileRef) -> None:
    """A file rewritten between a job's end and its recording: its bytes are another job's,
    so it is not recorded as this job's (a warning; a missing edge, not a wrong one)."""
    log.warning(
        "lakeline: %s changed after job %s ended (another job wrote it): not recorded as its",
        ref.path,
        job.id,
    )


def _database(exc: BaseException) -> bool:
    """Whether an error is the database's (it stops the recording, or the job's: a step a
    batch left out, StepsNotRecorded), not one file's."""
    import lakeline
    from sqlalchemy.exc import SQLAlchemyError

    errors = lakeline.errors
    return isinstance(exc, SQLAlchemyError | errors.DatabaseUnreachable | errors.StepsNotRecorded)


def _role(job: JobInfo, ref: FileRef) -> str:
    """The argument a used file came in through (its name in the params), if known."""
    for name, value in (job.params or {}).items():
        if _mentions(value, ref):
            return name
    return ""


def _mentions(value: object, ref: FileRef) -> bool:
    if isinstance(value, dict):
        if value.get("path") == ref.path and value.get("redun_hash") == ref.redun_hash:
            return True
        return any(_mentions(v, ref) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, ref) for v in value)
    return False
