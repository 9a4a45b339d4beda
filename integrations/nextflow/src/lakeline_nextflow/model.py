"""What the readers observe and what the merger plans to record, as plain data.

Readers turn each source into `TaskObs` (one task as one source saw it in one launch) and
`Launch` values; the merger joins them by task hash into a `Plan` of `WorkflowPlan`s and
`TaskPlan`s, which the recorder writes. Nothing here touches the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lakeline_nextflow.values import short_of

# Nextflow task status -> lakeline run status.
STATUSES = {
    "COMPLETED": "completed",
    "FAILED": "errored",
    "ABORTED": "aborted",
    "CACHED": "cached",
    "NEW": "scheduled",
    "SUBMITTED": "scheduled",
    "RUNNING": "started",
}


@dataclass
class TaskObs:
    """One task as one source saw it in one launch. Times may be naive (wall clock)."""

    source: str
    task_id: int | None = None
    short: str | None = None
    hash: str | None = None
    name: str | None = None
    process: str | None = None
    status: str | None = None  # Nextflow's word: COMPLETED, FAILED, CACHED, ...
    exit_code: int | None = None
    submit: datetime | None = None
    start: datetime | None = None
    complete: datetime | None = None
    workdir: str | None = None
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hash and not self.short:
            self.short = short_of(self.hash)
        if self.name and not self.process:
            self.process = process_of(self.name)


def process_of(name: str) -> str:
    """`NFCORE_X:FASTQC (sample 1)` -> `NFCORE_X:FASTQC` (process names have no spaces)."""
    return name.split(" (", 1)[0].strip()


@dataclass
class Launch:
    """One `nextflow run` (a session can have several: `-resume`)."""

    source: str
    run_name: str | None = None
    session: str | None = None
    command: str | None = None
    nextflow_version: str | None = None
    script: str | None = None  # what was launched: `main.nf`, `nf-core/rnaseq`, a URL
    revision: str | None = None
    release: str | None = None  # the `[3.14.0]` after the revision, for remote pipelines
    work_dir: str | None = None  # as Nextflow saw it (may have moved since)
    launch_dir: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status: str | None = None  # completed, errored, aborted; None when unknown
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    process_names: list[str] = field(default_factory=list)
    params: dict[str, Any] | None = None
    tasks: list[TaskObs] = field(default_factory=list)
    anchor: str | None = None  # a trace's first row: names the launch however much was read
    cut: bool = False  # a trace of it was cut short: its end is not known from it
    finished: bool = False  # the source shows the run's end
    year_known: bool = True  # False: times are wall clock without a year, to be resolved
    file_time: datetime | None = None  # modification time of the file it was read from


@dataclass
class HistoryEntry:
    """A line of `.nextflow/history`."""

    started_at: datetime | None  # naive wall clock
    duration_ms: int | None
    run_name: str
    status: str | None  # OK, ERR, or None (running or killed)
    revision: str | None
    session: str
    command: str


@dataclass
class StagedInput:
    """An input file staged into a task work dir: its stage name and where it came from."""

    name: str
    source: str  # as written (absolute path or URL)
    mode: str = "symlink"  # symlink, rellink, link, copy, download


@dataclass
class FileRef:
    """A file in the plan: where it is now (or was), and the task that produced it, if any."""

    path: str
    original: str | None = None
    producer: str | None = None  # full hash of the producing task
    relpath: str | None = None  # path inside the producer's work dir
    role: str = ""
    checksum: str | None = None  # as the source gave it, e.g. "nextflow:b14f..."
    size: int | None = None


@dataclass
class TaskPlan:
    """A task execution to record as a Run (keyed by its full hash when known)."""

    key: str
    scoped: bool  # True: `key` is only unique within its workflow run (short hash)
    short: str
    hash: str | None
    process: str
    name: str
    status: str  # lakeline status of the execution
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[FileRef] = field(default_factory=list)
    outputs: list[FileRef] = field(default_factory=list)
    log: str | None = None  # .command.log, recorded as a "log" output
    published: list[tuple[FileRef, FileRef]] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    work_dir: str | None = None  # local path of the work dir, when it exists


@dataclass
class CachedPlan:
    """A task a later launch reused from the cache: a `cached` Run linked to the real one."""

    key: str
    task_key: str
    launch: str
    process: str
    at: datetime | None


@dataclass
class WorkflowPlan:
    """A session: the workflow Run of a pipeline, with every launch's tasks merged."""

    key: str  # the session UUID, or a stand-in when no source names the session
    pipeline: str
    version: str | None = None
    reference: str | None = None
    description: str | None = None
    status: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    launches: list[Launch] = field(default_factory=list)
    tasks: dict[str, TaskPlan] = field(default_factory=dict)
    cached: list[CachedPlan] = field(default_factory=list)
    work_root: str | None = None  # the local work dir, when it exists


@dataclass
class Report:
    """What an import found, recorded, and could not know."""

    launch_dir: str
    sources: dict[str, list[str]] = field(default_factory=dict)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    tasks: int = 0
    by_status: dict[str, int] = field(default_factory=dict)  # of the tasks recorded
    cached: int = 0
    # (consumer, producer, file): planned; once recorded, read back from the catalog
    producer_edges: list[tuple[str, str, str]] = field(default_factory=list)
    published: int = 0
    missing: list[str] = field(default_factory=list)  # vanished while recording: not recorded
    referenced: list[str] = field(default_factory=list)  # gone: recorded as references
    unknown: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recorded: bool = False
    # steps a batch left out, not recorded (StepsNotRecorded): engine id -> why; the rest is
    left_out: dict[str, str] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def note(self, message: str) -> None:
        if message not in self.unknown:
            self.unknown.append(message)

    def source(self, kind: str, path: str) -> None:
        self.sources.setdefault(kind, [])
        if path not in self.sources[kind]:
            self.sources[kind].append(path)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for `--json`)."""
        return {
            "launch_dir": self.launch_dir,
            "sources": self.sources,
            "workflows": self.workflows,
            "tasks": self.tasks,
            "by_status": self.by_status,
            "cached": self.cached,
            "producer_edges": [list(e) for e in self.producer_edges],
            "published": self.published,
            "missing": self.missing,
            "referenced": self.referenced,
            "unknown": self.unknown,
            "warnings": self.warnings,
            "recorded": self.recorded,
            "left_out": self.left_out,
        }
