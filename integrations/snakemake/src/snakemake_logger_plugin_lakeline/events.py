"""Snakemake log records as plain, JSON-able events (the same values live and in journals)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import logging

# fmt_iofile() annotates some paths: "x.txt (pipe)", "s3://b/k (send to storage)", ...
# (patterns compiled on first use, by `re`'s cache: most runs annotate no path and fail no
# job, and compiling the three cost ~0.9 ms of each run's set-up)
_ANNOTATION = (
    r" \((?:pipe|service|nodelocal|update|before update|cached|access: [^)]*|"
    r"retrieve from storage|only provide storage uri|send to storage|in storage)"
    r"(?:, [^)]*)?\)$"
)
_NOT_FILES = r" \((?:pipe|service)(?:, [^)]*)?\)$"
_EXIT_STATUS = r"non-zero exit status (\d+)"
TEMP_REMOVAL = "Removing temporary output "


@dataclass
class WorkflowStarted:
    """`workflow_started`: one Snakemake invocation."""

    workflow_id: str
    at: float
    snakefile: str | None = None
    workdir: str | None = None
    basedir: str | None = None
    cmd: str | None = None
    configfiles: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    snakemake_version: str | None = None
    touch: bool = False  # --touch: jobs only touch their outputs, nothing runs
    upload: bool | None = None  # the plugin's settings, so a replay records the same way
    pipeline: str | None = None


@dataclass
class JobInfo:
    """`job_info`: a job about to run, with what the live DAG adds (temp flags, params)."""

    jobid: int
    rule: str
    at: float
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    benchmark: str | None = None
    wildcards: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    shellcmd: str | None = None
    is_checkpoint: bool = False
    reason: str | None = None
    temp: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    params: Any = None
    input_names: dict[str, str] = field(default_factory=dict)
    rule_file: str | None = None
    rule_line: int | None = None
    script: str | None = None
    input_stats: dict[str, list[int]] = field(default_factory=dict)
    pipes: list[str] = field(default_factory=list)  # pipe()/service() files: not data
    updates: list[str] = field(default_factory=list)  # update() outputs: rewritten in place
    task_id: str | None = None  # the engine id when it is not the job id (imports)


class DoneInfo(NamedTuple):
    """What the tracker keeps of a job once its completion is recorded: its label and its
    products (should a later event name it), as tuples. A long run then keeps no job's
    inputs, stats, params and flags (~10 objects the garbage collector walks, a job)."""

    jobid: int
    rule: str
    at: float
    outputs: tuple[str, ...]
    logs: tuple[str, ...]
    benchmark: str | None
    temp: tuple[str, ...]
    pipes: tuple[str, ...]

    @classmethod
    def of(cls, info: JobInfo) -> DoneInfo:
        return cls(
            info.jobid,
            info.rule,
            info.at,
            tuple(info.outputs),
            tuple(info.logs),
            info.benchmark,
            tuple(info.temp),
            tuple(info.pipes),
        )


@dataclass
class JobFinished:
    """`job_finished`; `files` holds [size, mtime_ns] of each product when it was recorded,
    `started` each output's start time in Snakemake's metadata."""

    jobid: int
    at: float
    files: dict[str, list[int]] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    endtime: float | None = None


@dataclass
class JobError:
    """`job_error`: the job failed (its outputs are not recorded)."""

    jobid: int
    rule: str
    at: float
    error: str | None = None
    exit_code: int | None = None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    shellcmd: str | None = None
    files: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class TempRemoval:
    """Snakemake is about to delete a temp() file: record its producer first."""

    path: str
    at: float


@dataclass
class ErrorMessage:
    """An ERROR record (exception text, `rule` when it names one)."""

    message: str
    at: float
    rule: str | None = None


Event = WorkflowStarted | JobInfo | JobFinished | JobError | TempRemoval | ErrorMessage
EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (WorkflowStarted, JobInfo, JobFinished, JobError, TempRemoval, ErrorMessage)
}


def to_json(event: Event) -> dict[str, Any]:
    """The event as a journal line's object (its fields hold JSON values only)."""
    return {"type": type(event).__name__, **vars(event)}


def from_json(data: dict[str, Any]) -> Event | None:
    """An event read back from a journal line (None for unknown types or fields)."""
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    try:
        event: Event = cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None
    return event


def clean_path(text: object) -> str | None:
    """A file path from an event's file list, without fmt_iofile's annotation; None for
    pipes, services and not-yet-known checkpoint targets."""
    path = str(text)
    if not path.endswith(")"):  # no annotation (both patterns end the path): most paths
        return None if not path or path == "<TBD>" else path
    if re.search(_NOT_FILES, path):
        return None
    return re.sub(_ANNOTATION, "", path)


def paths(values: object) -> list[str]:
    """The file paths of an event's file list (`clean_path` of each), in order."""
    if values is None or isinstance(values, str):
        values = [] if values is None else [values]
    try:
        items = list(values)  # type: ignore[call-overload]
    except TypeError:
        return []
    found = []
    for item in items:
        path = str(item)
        if not path.endswith(")"):  # `clean_path`'s common case, without its call
            if path and path != "<TBD>":
                found.append(path)
        else:
            cleaned = clean_path(path)
            if cleaned:
                found.append(cleaned)
    return found


_ATOMS = frozenset({type(None), bool, int, float, str})  # returned as they are by `plain`


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of Snakemake values (Namedlists keep their names)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict and depth <= 6:  # a plain dict (wildcards, resources): no name lookups
        return {
            k if type(k) is str else str(k): v if type(v) in _ATOMS else plain(v, depth + 1)
            for k, v in value.items()
        }
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > 6:
        return repr(value)
    names = getattr(value, "_names", None)
    items = getattr(value, "items", None)
    if isinstance(value, dict) or (names and callable(items)):
        assert callable(items)
        result = {  # (Snakemake's resources, params: a Namedlist of atoms, mostly)
            str(k): v if type(v) in _ATOMS else plain(v, depth + 1) for k, v in items()
        }
        if names is not None:  # a Namedlist: unnamed values too, by position
            named = {i for start, end in names.values() for i in range(start, end or start + 1)}
            for i, v in enumerate(value):
                if i not in named:
                    result[str(i)] = plain(v, depth + 1)
        return result
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, depth + 1) for v in value]
    return str(value)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


USED = frozenset({"job_info", "job_finished", "job_error", "workflow_started", "error"})


def may_carry(record: logging.LogRecord) -> bool:
    """Whether `from_record` may find an event in the record (cheap: most of Snakemake's
    records, progress and shell commands, carry none: not kept)."""
    kind = record.__dict__.get("event")
    if kind:
        return str(kind) in USED
    msg = record.msg
    error = record.levelno >= 40  # logging.ERROR (or above)
    return error or (isinstance(msg, str) and msg.startswith(TEMP_REMOVAL))


def from_record(record: logging.LogRecord) -> Event | None:
    """The event a Snakemake log record carries, or None if it carries none we use."""
    kind = str(getattr(record, "event", "") or "")
    if kind and kind not in USED:
        return None
    get = record.__dict__.get
    if kind == "job_info":
        jobid = _int(get("jobid"))
        if jobid is None:
            return None
        extra: dict[str, Any] = get("lakeline_job") or {}
        benchmark = paths(get("benchmark"))
        return JobInfo(
            jobid=jobid,
            rule=str(get("rule_name") or "?"),
            at=record.created,
            inputs=paths(get("input")),
            outputs=paths(get("output")),
            logs=paths(get("log")),
            benchmark=benchmark[0] if benchmark else None,
            wildcards=plain(get("wildcards") or {}),
            threads=_int(get("threads")),
            resources=plain(get("resources") or {}),
            shellcmd=get("shellcmd"),
            is_checkpoint=bool(get("is_checkpoint")),
            reason=None if get("reason") is None else str(get("reason")),
            **extra,
        )
    if kind == "job_finished":
        jobid = _int(get("job_id", get("jobid")))
        return None if jobid is None else JobFinished(jobid=jobid, at=record.created)
    if kind == "job_error":
        jobid = _int(get("jobid"))
        if jobid is None:
            return None
        return JobError(
            jobid=jobid,
            rule=str(get("rule_name") or "?"),
            at=record.created,
            error=get("rule_msg") or None,
            inputs=paths(get("input")),
            outputs=paths(get("output")),
            logs=paths(get("log")),
            shellcmd=get("shellcmd"),
        )
    if kind == "workflow_started":
        extra = get("lakeline_workflow") or {}
        return WorkflowStarted(
            workflow_id=str(get("workflow_id")),
            at=record.created,
            snakefile=None if get("snakefile_main") is None else str(get("snakefile_main")),
            basedir=None if get("basedir") is None else str(get("basedir")),
            cmd=get("cmd"),
            configfiles=[str(p) for p in get("configfiles") or []],
            snakemake_version=get("snakemake_version"),
            **extra,
        )
    message = record.getMessage() if isinstance(record.msg, str) else ""
    if kind == "" and message.startswith(TEMP_REMOVAL):
        text = message[len(TEMP_REMOVAL) :]
        path = clean_path(text[:-1] if text.endswith(".") else text)
        return None if path is None else TempRemoval(path=path, at=record.created)
    if kind == "error" or (kind == "" and record.levelname == "ERROR" and message):
        rule = get("rule")
        return ErrorMessage(message=message, at=record.created, rule=rule and str(rule))
    return None


def exit_code_of(message: str | None) -> int | None:
    """The exit status a CalledProcessError message names, if any."""
    match = re.search(_EXIT_STATUS, message or "")
    return int(match.group(1)) if match else None
