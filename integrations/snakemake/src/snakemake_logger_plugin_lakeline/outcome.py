"""How a run's recording ends: the run recorded from its journal once a lost catalog answers
again, the closing line, what could not be recorded, and the note on the workflow run saying
so (`note_lineage`)."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snakemake_logger_plugin_lakeline.jobs import Job
    from snakemake_logger_plugin_lakeline.tracker import Tracker

MAX_LISTED = 20
NOTE = "@lakeline"  # the workflow run's params entry saying whether its lineage is complete


def recover(tracker: Tracker) -> list[str] | None:
    """After losing the catalog mid-run: if it answers again, record the whole run from
    its journal (as `lakeline snakemake import` would; what was recorded stays as it
    is), so no step is left `started`. Returns the closing lines, None if still down."""
    from pathlib import Path

    from snakemake_logger_plugin_lakeline.importer import replay_journal
    from snakemake_logger_plugin_lakeline.tracker import Tracker

    if tracker.instance is None or tracker.journal is None or tracker.journal.failed is not None:
        return None
    with contextlib.suppress(Exception):
        tracker.instance.engine.dispose()  # connections cut with the database: start afresh
    again = Tracker(upload=tracker.upload, pipeline=tracker.pipeline, report=lambda _: None)
    again.replay, again.journaling, again.instance = True, False, tracker.instance
    again.finished_at = tracker.finished_at
    try:
        lines = replay_journal(again, tracker.journal.path, Path(tracker.workdir))
    except Exception:
        return None
    if again.failure is not None or again.workflow is None:
        return None
    tracker.report("lakeline: the catalog is back: recorded the run from its journal")
    tracker.failure, tracker.workflow, tracker.recorder = None, again.workflow, again.recorder
    tracker.jobs = again.jobs
    return lines


def done_line(tracker: Tracker, busy: float | None = None, cpu: float | None = None) -> str | None:
    """One line saying where the run was recorded (None if nothing was), with the
    seconds spent recording and the CPU seconds that took, if given."""
    if tracker.workflow is None or tracker.instance is None:
        return None
    done = sum(1 for j in tracker.jobs.values() if j.finished and j.left_out is None)
    spent = "" if busy is None else f" ({busy:.3f} s recording)"
    if busy is not None and cpu is not None:
        spent = f" ({busy:.3f} s recording, {cpu:.3f} s CPU)"
    return (
        f"lakeline: recorded {done} jobs of workflow run {tracker.workflow.uid} "
        f"in instance {tracker.instance.name!r}{spent}"
    )


def left_out(tracker: Tracker, steps: dict[str, str]) -> None:
    """Mark the jobs whose steps a batch left out (`StepsNotRecorded.steps`: engine id ->
    why): not recorded, what only they named neither; the summary names them, the closing
    line does not count them."""
    if not steps:
        return
    jobs = {j.step.engine_ref: j for j in tracker.jobs.values() if j.step is not None}
    for ref, why in steps.items():
        job = jobs.get(ref)
        if job is not None and job.left_out is None:
            job.left_out = why


def missed(tracker: Tracker) -> list[Job]:
    """The jobs not recorded whole: no step, a problem, no finish, left out of a batch."""
    return [
        j
        for j in tracker.jobs.values()
        if j.step is None or j.problems or not j.finished or j.left_out is not None
    ]


def _detail(job: Job) -> str:
    """What of `job` was not recorded, and why."""
    files = ", ".join(p for p, _ in job.products()) or "no files"
    detail = "; ".join(job.problems) if job.problems else f"not recorded: {files}"
    if job.left_out is not None:  # its step (files only it named, its children) not written
        detail = f"not recorded, left out of a batch: {job.left_out}"
    return detail


def note_lineage(tracker: Tracker) -> None:
    """Once the run is closed: its workflow run says in its params (`NOTE`) that its lineage
    is incomplete — how many jobs were not recorded and why (the first MAX_LISTED) — and, once
    a later import recorded them, that it is complete. The status stays the engine's: a
    run Snakemake completed is `completed`, its lineage incomplete. Nothing is written for a
    run recorded whole that never said otherwise."""
    from snakemake_logger_plugin_lakeline.tracker import one_line

    workflow, recorder = tracker.workflow, tracker.recorder
    if workflow is None or recorder is None or tracker.failure is not None:
        return
    jobs = missed(tracker)
    noted = (workflow.run.params or {}).get(NOTE)
    if not jobs and not noted:
        return
    meta = {
        "lineage": "incomplete" if jobs else "complete",
        "jobs": len(tracker.jobs),
        "jobs_not_recorded": len(jobs),
        "not_recorded": {j.label(): _detail(j)[:500] for j in jobs[:MAX_LISTED]},
    }
    try:
        recorder.annotate(workflow, NOTE, **meta)
    except Exception as exc:  # said: the summary lists what is missing all the same
        tracker.report(f"lakeline: could not note on the workflow run: {one_line(exc)}")


def summary(tracker: Tracker) -> list[str]:
    """What could not be recorded, one line per job (at most MAX_LISTED)."""
    if not tracker.jobs:
        return []  # nothing ran (a failure to connect was reported when it happened)
    missed_jobs = missed(tracker)
    missing = [] if tracker.recorder is None else list(dict.fromkeys(tracker.recorder.missing))
    lines = []
    if missed_jobs or tracker.failure is not None:
        lines.append(
            f"lakeline: lineage incomplete: {len(missed_jobs)} of {len(tracker.jobs)} jobs"
        )
        if tracker.failure is not None:
            lines[0] += f" ({tracker.failure})"
    for job in missed_jobs[:MAX_LISTED]:
        lines.append(f"  {job.label()}: {_detail(job)}")
    if len(missed_jobs) > MAX_LISTED:
        lines.append(f"  ... and {len(missed_jobs) - MAX_LISTED} more jobs")
    if missing:
        shown = ", ".join(os.path.relpath(p, tracker.workdir) for p in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        lines.append(f"lakeline: files gone before they could be recorded: {shown}{more}")
    if (missed_jobs or tracker.failure) and not tracker.replay and tracker.journaling:
        lines.append(f"  fill in later with: lakeline snakemake import {tracker.workdir}")
    return lines
