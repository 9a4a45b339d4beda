"""The jobs a Tracker follows: each job's state, and the table of a run's jobs that keeps
the running ones (status "started") apart, so that what asks about running jobs (a temp()
removal, --quiet's check for jobs that finished silently at each new job) walks those only,
not every job of the run: a run's work stays linear in its jobs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snakemake_logger_plugin_lakeline import metadata
from snakemake_logger_plugin_lakeline.journal import Seen, stat_of, stats_of

if TYPE_CHECKING:
    from lakeline.lineage.recorder import Handle

    from snakemake_logger_plugin_lakeline.events import DoneInfo, JobFinished, JobInfo

FRESH = 0.5  # seconds: a metadata record older than its job_info is from an earlier run
Products = list[tuple[str, str | None]]  # a job's files and their kinds (`Job.products`)


@dataclass
class Job:
    """A Snakemake job as the tracker follows it (its `status` set through `Jobs`)."""

    info: JobInfo | DoneInfo  # DoneInfo once its completion is recorded
    step: Handle | None = None
    status: str = "started"
    finished: bool = False  # the finish was recorded
    left_out: str | None = None  # why a batch left its step out (not recorded), if it did
    problems: list[str] = field(default_factory=list)
    recorded: dict[bool, set[str]] = field(default_factory=dict)  # replays: its own records

    def products(self) -> Products:
        """Outputs (temp ones as transient), then logs and the benchmark file, with kinds."""
        temp, pipes = set(self.info.temp), set(self.info.pipes)
        outputs = [p for p in self.info.outputs if p not in pipes]  # a FIFO is not data
        items = [(p, "transient" if p in temp else None) for p in outputs]
        items += [(p, "log") for p in self.info.logs]
        bench = self.info.benchmark
        return [*items, (bench, "benchmark")] if bench else items

    def observe(
        self,
        workdir: str,
        event: JobFinished,
        seen: Seen,
        products: Products,
        *,
        logged: bool = False,
    ) -> None:
        """Note in `event` its outputs' times (metadata; `logged`: see `metadata.read`) and the
        stats of `products` (its `products()`; `seen` as for `journal.stats_of`)."""
        for path in self.info.outputs:
            record = metadata.read(workdir, path, finished=logged)
            if record is not None and record.starttime is not None:
                event.started[path] = record.starttime
            if record is not None:
                event.endtime = max(event.endtime or 0.0, record.endtime or 0.0) or None
        event.files.update(stats_of(workdir, (p for p, _ in products), seen))

    def label(self) -> str:
        return f"rule {self.info.rule} (job {self.info.jobid})"

    def completed_silently(self, workdir: str) -> bool:
        """Whether every output has a metadata record written since the job started (it
        completed without a `job_finished` event: --quiet)."""
        if not self.info.outputs:
            return False
        for path in self.info.outputs:
            record = metadata.read(workdir, path)
            if record is None or (record.starttime or 0.0) < self.info.at - FRESH:
                return False
        return True

    def done_unlogged(self, workdir: str, finishes_logged: bool) -> bool:
        """At the end of the run, whether this job, still open, finished unlogged (--quiet:
        no `job_finished`, and no metadata record: `all`, --drop-metadata). Never if Snakemake
        logs finishes: it logs each once its own bookkeeping is done, so an open job is one it
        never finished (killed, or running when a second SIGINT made it exit, no error
        logged). Nor if an output is marked incomplete: its job never finished. Else if every
        output exists and was written after the job started."""
        if finishes_logged:
            return False
        if any(metadata.marked_incomplete(workdir, p) for p in self.info.outputs):
            return False
        return self.outputs_fresh(workdir)

    def outputs_fresh(self, workdir: str) -> bool:
        """Whether every output exists and was written after the job started."""
        for path in self.info.outputs:
            stat = stat_of(os.path.join(workdir, path))
            if stat is None or stat[1] / 1e9 < self.info.at - FRESH:
                return False
        return True


class Jobs(dict[int, "Job"]):
    """A run's jobs by Snakemake job id; `running` holds those whose status is "started", in
    the order they (re)started. Add a job with `add` and change a status with `set_status`
    only, or `running` is wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.running: dict[int, Job] = {}

    def add(self, job: Job) -> Job:
        self[job.info.jobid] = job
        self.set_status(job, job.status)
        return job

    def set_status(self, job: Job, status: str) -> None:
        job.status = status
        if status == "started":
            self.running[job.info.jobid] = job
        else:
            self.running.pop(job.info.jobid, None)

    def producing(self, path: str) -> list[Job]:
        """The running jobs that have `path` among their outputs."""
        return [job for job in self.running.values() if path in job.info.outputs]
