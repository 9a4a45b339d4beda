"""The jobs a Tracker follows: each job's state, and whether one that never reported
finished (its metadata, its outputs' times)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snakemake_logger_plugin_lakeline import metadata
from snakemake_logger_plugin_lakeline.journal import stat_of

if TYPE_CHECKING:
    from lakeline.lineage.recorder import Handle

    from snakemake_logger_plugin_lakeline.events import DoneInfo, JobInfo

FRESH = 0.5  # seconds: a metadata record older than its job_info is from an earlier run


@dataclass
class Job:
    """A Snakemake job as the tracker follows it."""

    info: JobInfo | DoneInfo  # DoneInfo once its completion is recorded
    step: Handle | None = None
    status: str = "started"
    finished: bool = False  # the finish was recorded
    problems: list[str] = field(default_factory=list)
    recorded: dict[bool, set[str]] = field(default_factory=dict)  # replays: its own records

    def products(self) -> list[tuple[str, str | None]]:
        """Outputs (temp ones as transient), then logs and the benchmark file, with kinds."""
        temp, pipes = set(self.info.temp), set(self.info.pipes)
        outputs = [p for p in self.info.outputs if p not in pipes]  # a FIFO is not data
        items = [(p, "transient" if p in temp else None) for p in outputs]
        items += [(p, "log") for p in self.info.logs]
        bench = self.info.benchmark
        return [*items, (bench, "benchmark")] if bench else items

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

    def outputs_fresh(self, workdir: str) -> bool:
        """Whether every output exists and was written after the job started."""
        for path in self.info.outputs:
            stat = stat_of(os.path.join(workdir, path))
            if stat is None or stat[1] / 1e9 < self.info.at - FRESH:
                return False
        return True
