"""`lakeline redun import`: record the executions in a redun database as lineage."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeline.errors import StepsNotRecorded
from lakeline.lineage.recorder import BatchRecorder, Recorder, make_recorder

from lakeline_redun.reader import (
    ExecutionInfo,
    ancestors,
    executions,
    job_ids,
    job_info,
    job_start,
    open_backend,
)
from lakeline_redun.record import ENGINE, ExecutionRecorder

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from sqlalchemy.orm import Session

BATCH_STEPS = 1000  # an import's batch (LAKELINE_CAPTURE_BATCH=off: one transaction per call)
BATCH_MS = 30_000.0


@dataclass
class ImportResult:
    """What an import did: executions and jobs read, files that had vanished, and the steps
    (jobs, executions) a batch left out, not recorded: engine id -> why (StepsNotRecorded;
    the rest recorded: import again once the cause is fixed)."""

    executions: list[str] = field(default_factory=list)  # read (those left out too)
    jobs: int = 0  # jobs recorded (those left out not counted)
    missing: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)


def default_root(db: str) -> str:
    """Where redun's relative paths start: the folder holding `.redun/`, else the cwd."""
    if "://" not in db:
        folder = os.path.dirname(os.path.abspath(db))
        if os.path.basename(folder) == ".redun":
            return os.path.dirname(folder)
    return os.getcwd()


def import_redun(
    db: str = ".redun/redun.db",
    *,
    execution: str | None = None,
    root: str | os.PathLike[str] | None = None,
    pipeline: str | None = None,
    upload: bool = False,
    instance: Instance | None = None,
) -> ImportResult:
    """Record every execution in the redun database `db` (or only `execution`).

    `root` is the folder redun ran in (relative File paths start there). Importing again
    changes nothing; files that have since vanished are listed in `missing`. A cached job is
    linked to the job it was cached from: an execution holding such an original is imported
    too when it was not selected. A job or execution the database refuses (a run it names
    deleted meanwhile, one hidden by space rules) is left out, not the rest: `left_out`.
    """
    backend = open_backend(db)
    session = backend.session
    assert session is not None
    try:
        found = executions(session, execution, db)
        recorder = make_recorder(
            ENGINE,
            batch=True,  # a bulk import: a few transactions
            steps=BATCH_STEPS,
            ms=BATCH_MS,
            root=os.fspath(root or default_root(db)),
            upload=upload,
            instance=instance,
        )
        result = ImportResult()
        jobs = _Jobs(session, db, recorder, pipeline, {info.id: info for info in found})
        for info in found:
            for job_id in job_ids(session, info.id):
                result.jobs += jobs.finish(job_id)
            result.executions.append(info.id)
        result.executions += jobs.pulled
        if isinstance(recorder, BatchRecorder):  # an execution still running is not finished
            with jobs.noting():
                recorder.flush()
        result.missing = list(recorder.missing)
        result.left_out = jobs.left_out
        result.jobs -= len(jobs.done.intersection(jobs.left_out))
        return result
    finally:
        session.close()
        assert backend.engine is not None
        backend.engine.dispose()


@dataclass
class _Jobs:
    """Finishes jobs in an order where a cached job's original is recorded before it: the
    original may come later in its execution's tree, or be in an execution not selected (which
    is then imported too, whole)."""

    session: Session
    db: str
    recorder: Recorder
    pipeline: str | None
    infos: dict[str, ExecutionInfo]
    targets: dict[str, ExecutionRecorder] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    pulled: list[str] = field(default_factory=list)  # executions imported for an original
    left_out: dict[str, str] = field(default_factory=dict)  # StepsNotRecorded's steps, all

    @contextmanager
    def noting(self) -> Iterator[None]:
        """Note the steps a batch written inside left out (StepsNotRecorded: the rest was
        written), and go on: one job's refusal does not stop the import."""
        try:
            yield
        except StepsNotRecorded as exc:
            self.left_out.update(exc.steps)

    def target(self, execution_id: str) -> ExecutionRecorder:
        if execution_id not in self.targets:
            info = self.infos[execution_id]
            self.targets[execution_id] = ExecutionRecorder(
                self.recorder, info, pipeline=self.pipeline
            )
        return self.targets[execution_id]

    def finish(self, job_id: str) -> int:
        """Record the job (once), and what it needs first; how many jobs were recorded."""
        if job_id in self.done:
            return 0
        self.done.add(job_id)
        job = job_info(self.session, job_id)
        count = 1
        if job.cached_from is not None and job.cached_from not in self.done:
            original = job_start(self.session, job.cached_from)
            if original.execution_id not in self.infos:
                (info,) = executions(self.session, original.execution_id, self.db)
                self.infos[info.id] = info
                self.pulled.append(info.id)
                for other in job_ids(self.session, info.id):
                    count += self.finish(other)
            else:
                target = self.target(original.execution_id)
                for ancestor in ancestors(self.session, original.id):  # its run nests in theirs
                    target.start_job(job_info(self.session, ancestor))
                count += self.finish(original.id)
        with self.noting():  # (raised by finish_workflow, its last call: nothing skipped)
            self.target(job.execution_id).finish_job(job)
        return count
