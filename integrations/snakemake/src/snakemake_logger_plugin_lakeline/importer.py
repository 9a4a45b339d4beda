"""`lakeline snakemake import PATH`: the lineage of past runs of a workflow folder.

1. Each journal the plugin wrote (`.snakemake/lakeline/journal/*.jsonl`) is replayed with its
   real Snakemake ids: a run recorded live changes nothing, one recorded partly (the
   database was down) is filled in.
2. Jobs known only from `.snakemake/metadata` (runs without the plugin) are recorded under
   one workflow run per folder, `import-<folder hash>`, each job keyed by rule, start time
   and outputs, so importing again changes nothing.

A file is recorded only if it is still what its job made; others are listed as changed.
The metadata holds no exit code, and Snakemake writes a failed job's record as a finished
one's before deleting its outputs: a job Snakemake's own log (`.snakemake/log`) names as
failed is imported errored, with that log's error and exit status and its own log files, as
the plugin records a failed job (its outputs never); any other job only if an output of it is
still there or a later job used one (a temp() file), and with no exit code.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from snakemake_logger_plugin_lakeline import journal, metadata
from snakemake_logger_plugin_lakeline.events import (
    Event,
    JobError,
    JobFinished,
    JobInfo,
    WorkflowStarted,
)
from snakemake_logger_plugin_lakeline.failures import Failure, failure_of, read_failures
from snakemake_logger_plugin_lakeline.outcome import note_lineage
from snakemake_logger_plugin_lakeline.sources import Sources, load_config
from snakemake_logger_plugin_lakeline.tracker import Tracker

if TYPE_CHECKING:
    from lakeline.instance import Instance

SNAKEFILES = ("Snakefile", "snakefile", "workflow/Snakefile", "workflow/snakefile")
_CONFIGFILE = re.compile(r"^configfile\s*:\s*[\"']([^\"']+)[\"']", re.M)
INCOMPLETE = "Snakemake marks its outputs incomplete (a job writing them was interrupted)"
MTIME_SLACK = 1.0  # seconds between a job's recorded end time and its output's mtime


@dataclass
class ImportResult:
    """What an import looked at and what it could not record."""

    journals: int = 0
    journal_jobs: int = 0
    metadata_jobs: int = 0
    problems: list[str] = field(default_factory=list)
    left_out: int = 0  # jobs a batch left out (not recorded: `problems` says why); import again


def find_snakefile(workdir: Path) -> str | None:
    for name in SNAKEFILES:
        if (workdir / name).is_file():
            return str(workdir / name)
    return None


def _stat_if(path: Path, ok: Callable[[list[int]], bool]) -> list[int] | None:
    stat = journal.stat_of(str(path))
    return stat if stat is not None and ok(stat) else None


def import_workflow(
    path: str | os.PathLike[str],
    *,
    instance: Instance | None = None,
    upload: bool = False,
    pipeline: str | None = None,
    report: Callable[[str], None] = print,
) -> ImportResult:
    """Record the runs of the workflow folder `path` (idempotent)."""
    workdir = Path(path).resolve()
    if not (workdir / ".snakemake").is_dir():
        from lakeline.errors import LakelineError

        raise LakelineError(f"{workdir} has no .snakemake folder: no Snakemake run to import")
    result = ImportResult()
    covered: set[tuple[str, float]] = set()
    for log in journal.journals(workdir):
        tracker = _tracker(instance, upload, pipeline, report)
        result.problems += replay_journal(tracker, log, workdir, covered)
        result.journals += 1
        result.journal_jobs += len(tracker.jobs)
        result.left_out += _left_out(tracker)
        if tracker.failure:
            return result
    records = [
        r
        for r in metadata.read_all(workdir)
        if (r.output, round(r.starttime or 0.0, 6)) not in covered
    ]
    events = metadata_events(workdir, records, result.problems) if records else []
    if len(events) > 1:  # a job to record
        tracker = _tracker(instance, upload, pipeline, report)
        tracker.finished_at = max(e.at for e in events if isinstance(e, JobFinished | JobError))
        for event in events:
            tracker.apply(event)
        result.metadata_jobs = len(tracker.jobs)
        result.problems += tracker.close()
        note_lineage(tracker)
        result.left_out += _left_out(tracker)
    return result


def _left_out(tracker: Tracker) -> int:
    """How many of the tracker's jobs a batch left out (their steps not recorded)."""
    return sum(1 for job in tracker.jobs.values() if job.left_out is not None)


def replay_journal(
    tracker: Tracker, log: Path, workdir: Path, covered: set[tuple[str, float]] | None = None
) -> list[str]:
    """Replay one journal into `tracker` (a replaying one) and close it; return what it
    could not record. `covered` collects the (output, start time) of the jobs it holds."""
    for event in journal.read(log):
        if isinstance(event, WorkflowStarted):
            event.workdir = str(workdir)  # the folder may have moved since
        elif isinstance(event, JobFinished) and covered is not None:
            covered.update((o, round(t, 6)) for o, t in event.started.items())
        tracker.apply(event)
    lines = tracker.close()
    note_lineage(tracker)  # the run's note: incomplete, or complete now
    return lines


def _tracker(
    instance: Instance | None, upload: bool, pipeline: str | None, report: Callable[[str], None]
) -> Tracker:
    tracker = Tracker(upload=upload, pipeline=pipeline, report=report, replay=True)
    tracker.journaling = False
    tracker.instance = instance
    return tracker


@dataclass
class MetadataFinish(JobFinished):
    """A job's end known from `.snakemake/metadata`: it holds no exit code."""

    exit_code: int | None = None


def metadata_events(
    workdir: Path, records: list[metadata.Record], skipped: list[str] | None = None
) -> list[Event]:
    """The events that would have recorded these jobs: one workflow run for the folder.
    The jobs whose outcome the metadata cannot tell (`unseen`) are left out, each with a
    line in `skipped`."""
    snakefile = find_snakefile(workdir)
    configfiles: list[str] = []
    if snakefile is not None:
        text = Path(snakefile).read_text(errors="replace")
        configfiles = [str(workdir / c) for c in _CONFIGFILE.findall(text)]
    groups = metadata.group_jobs(records)
    starts = [r.starttime for r in records if r.starttime is not None]
    folder_id = hashlib.sha256(str(workdir).encode()).hexdigest()[:16]
    events: list[Event] = [
        WorkflowStarted(
            workflow_id=f"import-{folder_id}",
            at=min(starts) if starts else 0.0,
            snakefile=snakefile,
            workdir=str(workdir),
            configfiles=configfiles,
            config=load_config(configfiles),
        )
    ]
    pipes = Sources(snakefile).pipes()
    used: dict[str, float] = {}  # input -> the latest start of a job that used it
    for record in records:
        for path in record.inputs:
            used[path] = max(used.get(path, 0.0), record.starttime or 0.0)
    failures = read_failures(workdir, records)
    for jobid, group in enumerate(groups, start=1):
        start, end = _times(group)
        outputs = [r.output for r in group]
        why = unseen(workdir, group, used)
        failed = None  # Snakemake's log names it failed (an interrupted job is not imported)
        if why != INCOMPLETE:
            known = start if any(r.starttime is not None for r in group) else end  # else 0.0
            failed = failure_of(failures, group[0].rule, outputs, known, end)
        if failed is not None or why is None:
            events += _job_events(workdir, jobid, group, pipes, failed)
        elif skipped is not None:
            listed = ", ".join(outputs)
            skipped.append(f"lakeline: rule {group[0].rule} ({listed}): not imported: {why}")
    return events


def _times(group: list[metadata.Record]) -> tuple[float, float]:
    """A job's start and end from its outputs' records."""
    start = min((r.starttime for r in group if r.starttime is not None), default=0.0)
    return start, max((r.endtime or start) for r in group)


def unseen(workdir: Path, group: list[metadata.Record], used: dict[str, float]) -> str | None:
    """Why the metadata cannot tell that this job completed (None if it can): an output is
    marked incomplete, or all are gone and no job that started after it used one (a failed
    job's record looks like a finished one's; Snakemake then deletes its outputs)."""
    outputs = [r.output for r in group]
    if any(metadata.marked_incomplete(workdir, p) for p in outputs):
        return INCOMPLETE
    if any(os.path.lexists(workdir / p) for p in outputs):
        return None
    start, _ = _times(group)
    if any(used.get(p, -1.0) >= start - MTIME_SLACK for p in outputs):
        return None  # a job started on them: they were made (a temp() file, a pipe)
    return (
        "its outputs are gone and no later job used them: it failed, or they were deleted "
        "since (.snakemake/metadata cannot tell)"
    )


def _job_events(
    workdir: Path,
    jobid: int,
    group: list[metadata.Record],
    pipes: list[re.Pattern[str]],
    failed: Failure | None = None,
) -> list[Event]:
    """A job's start and its end: finished, or `failed` as Snakemake's log says (errored,
    with its log files as they were then, never its outputs: as the plugin records it)."""
    first = group[0]
    start, end = _times(group)
    outputs = [r.output for r in group]
    digest = hashlib.sha256("\0".join(outputs).encode()).hexdigest()[:12]

    def not_newer(stat: list[int]) -> bool:  # an input rewritten after the job started
        return stat[1] / 1e9 <= start + MTIME_SLACK

    def made_then(stat: list[int]) -> bool:  # an output still as its job left it
        return len(stat) > 2 or abs(stat[1] / 1e9 - end) <= MTIME_SLACK

    inputs = first.inputs
    info = JobInfo(
        jobid=jobid,
        rule=first.rule or "?",
        at=start,
        inputs=inputs,
        outputs=outputs,
        logs=first.logs,
        shellcmd=first.data.get("shellcmd"),
        params=first.data.get("params") or None,
        input_stats={p: s for p in inputs if (s := _stat_if(workdir / p, not_newer))},
        task_id=f"{first.rule}@{start:.6f}@{digest}",
        pipes=[p for p in [*outputs, *inputs] if any(r.fullmatch(p) for r in pipes)],
    )
    if failed is not None:  # stamped to the second: its log may be up to 1 s newer
        at = max(end, failed.at)
        logs = {p: s for p in first.logs if (s := _stat_if(workdir / p, not_newer_than(at + 1)))}
        error = JobError(jobid, info.rule, at, failed.text, failed.exit_code, files=logs)
        return [info, error]
    files = {p: s for p in outputs if (s := _stat_if(workdir / p, made_then))}
    files |= {p: s for p in first.logs if (s := _stat_if(workdir / p, not_newer_than(end)))}
    started = {r.output: r.starttime for r in group if r.starttime is not None}
    return [info, MetadataFinish(jobid, at=end, files=files, started=started, endtime=end)]


def not_newer_than(end: float) -> Callable[[list[int]], bool]:
    return lambda stat: stat[1] / 1e9 <= end + MTIME_SLACK
