"""A run's tracker work grows linearly in its jobs: a temp() removal and, with --quiet,
each new job look at the running jobs only, not at every job of the run so far. Counted as
reads of the jobs' `info` and `status` (never timed), at 500 and 2,000 jobs."""

from __future__ import annotations

import json
import time
from base64 import urlsafe_b64encode
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from smk_testkit import write_workflow
from snakemake_logger_plugin_lakeline.events import (
    Event,
    JobFinished,
    JobInfo,
    TempRemoval,
    WorkflowStarted,
)
from snakemake_logger_plugin_lakeline.jobs import Job
from snakemake_logger_plugin_lakeline.tracker import Tracker

TEMP_EVERY = 10  # one job in ten writes a temp() file that Snakemake then removes


def _count_job_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every read of a Job's `info` and `status` (the loops over jobs read them)."""
    reads = [0]
    for name in ("info", "status"):

        def get(job: Job, name: str = name) -> Any:
            reads[0] += 1
            return job.__dict__[name]

        def put(job: Job, value: Any, name: str = name) -> None:
            job.__dict__[name] = value

        monkeypatch.setattr(Job, name, property(get, put), raising=False)
    return reads


def _metadata(root: Path, output: str, at: float) -> None:
    """Snakemake's record of a finished job's output (what --quiet's check reads)."""
    folder = root / ".snakemake" / "metadata"
    folder.mkdir(parents=True, exist_ok=True)
    name = urlsafe_b64encode(output.encode()).decode()
    record = {"rule": "make", "starttime": at, "endtime": at, "job_hash": 1}
    (folder / name).write_text(json.dumps(record))


def _run(root: Path, jobs: int, *, quiet: bool, reads: list[int]) -> int:
    """Record a workflow of `jobs` jobs, one after the other; the reads it took."""
    (root / "out").mkdir()
    (root / "tmp").mkdir()
    tracker = Tracker(instance_name="test", report=lambda _: None, expect_finished=not quiet)
    events: list[Event] = [WorkflowStarted(f"w-{jobs}-{quiet}", time.time(), workdir=str(root))]
    for i in range(jobs):
        at = time.time()
        output, temp = f"out/{i}.txt", f"tmp/{i}.txt"
        outputs = [output, temp] if i % TEMP_EVERY == 0 else [output]
        for path in outputs:
            (root / path).write_text(f"{i}")
            if quiet:
                _metadata(root, path, at)
        events.append(JobInfo(i, "make", at, outputs=outputs, temp=outputs[1:]))
        if not quiet:
            events.append(JobFinished(i, at))
        if i % TEMP_EVERY == 0:
            events.append(TempRemoval(temp, at))
    before = reads[0]
    for event in events:  # (one at a time: a removal's flush is what the plugin does)
        tracker.apply(event)
        if isinstance(event, TempRemoval):
            (root / event.path).unlink()
    assert tracker.close() == []
    assert tracker.workflow is not None
    steps = ll.Run.filter(parent_id=tracker.workflow.run.id, status="completed")
    assert steps.count() == jobs
    return reads[0] - before


@pytest.mark.parametrize("quiet", [False, True], ids=["events", "quiet"])
def test_tracker_work_grows_linearly_in_the_jobs(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    reads = _count_job_reads(monkeypatch)
    small = _run(write_workflow(tmp_path / "small", ""), 500, quiet=quiet, reads=reads)
    large = _run(write_workflow(tmp_path / "large", ""), 2000, quiet=quiet, reads=reads)
    # linear: 4x the jobs, ~4x the reads (quadratic loops gave ~12-16x)
    assert large <= 4.5 * small, (small, large)
