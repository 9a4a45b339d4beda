"""Read executions and jobs from a redun call-graph database (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeline.errors import LakelineError

from lakeline_redun.values import FileRef, files_in, params_from_args, positional_names

if TYPE_CHECKING:
    from redun.backends.db import RedunBackendDb
    from sqlalchemy.orm import Session

# redun DB schema versions this reader understands (major 3, minor >= 0; see redun's
# REDUN_DB_VERSIONS): 3.x added tags, indexes and timestamps, not what lineage reads.
SUPPORTED_MAJOR = 3
ERROR_TYPE = "redun.ErrorValue"


@dataclass
class ExecutionInfo:
    """A redun Execution: its id, command line and root job."""

    id: str
    args: list[str]
    root_job_id: str | None


@dataclass
class JobStart:
    """What is known of a Job when it starts."""

    id: str
    execution_id: str
    parent_id: str | None
    task_name: str
    task_hash: str
    source: str | None
    started_at: datetime | None
    params: dict[str, Any] | None = None


@dataclass
class JobInfo(JobStart):
    """A Job as recorded when it ended: status, files, error, cache origin."""

    finished_at: datetime | None = None
    status: str = "started"
    cached_from: str | None = None
    call_hash: str | None = None
    used: list[FileRef] = field(default_factory=list)
    produced: list[FileRef] = field(default_factory=list)
    error: str | None = None


def database_url(db: str) -> str:
    """A SQLAlchemy URL for a redun database given as a path or URL (psycopg 3 for PG)."""
    if "://" not in db:
        path = os.path.abspath(db)
        if not os.path.isfile(path):
            raise LakelineError(f"no redun database at {path}")
        return f"sqlite:///{path}"
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    return db


def open_backend(db: str) -> RedunBackendDb:
    """Connect to a redun database read-only in spirit (never migrates), checking its schema."""
    from redun.backends.db import RedunBackendDb

    url = database_url(db)
    backend = RedunBackendDb(db_uri=url)
    try:
        backend.create_engine()
        version = backend.get_db_version()
    except Exception as error:  # unreachable server, not a database, ...
        raise LakelineError(f"cannot read redun database {db}: {error}") from error
    check_version(version.major, version.minor, db)
    return backend


def check_version(major: int, minor: int, db: str) -> None:
    """Refuse a redun schema this reader does not understand, naming both versions."""
    if major < 0:
        raise LakelineError(f"{db} is not a redun database (no redun schema in it)")
    if major != SUPPORTED_MAJOR or minor >= 99:
        raise LakelineError(
            f"redun database {db} has schema version {major}.{minor}, which lakeline-redun "
            f"does not support (it reads schema {SUPPORTED_MAJOR}.x of redun 0.22-0.44)"
        )


def executions(session: Session, execution_id: str | None, db: str) -> list[ExecutionInfo]:
    """All executions (oldest first), or the one `execution_id` (a unique prefix works)."""
    from redun.backends.db import Execution, Job

    query = session.query(Execution).outerjoin(Job, Job.id == Execution.job_id)
    if execution_id is not None:
        rows = query.filter(Execution.id.startswith(execution_id)).all()
        if not rows:
            raise LakelineError(f"no redun execution {execution_id!r} in {db}")
        if len(rows) > 1:
            raise LakelineError(f"redun execution id {execution_id!r} is ambiguous in {db}")
    else:
        rows = query.order_by(Job.start_time).all()
    return [ExecutionInfo(r.id, json_list(r.args), r.job_id) for r in rows]


def json_list(text: str | None) -> list[str]:
    """A JSON list of strings as stored by redun (anything else kept as one string)."""
    try:
        loaded = json.loads(text or "[]")
    except ValueError:
        return [str(text)]
    return [str(a) for a in loaded] if isinstance(loaded, list) else [str(loaded)]


def job_ids(session: Session, execution_id: str) -> list[str]:
    """The execution's job ids, every parent before its children."""
    from redun.backends.db import Job

    rows = (
        session.query(Job.id, Job.parent_id)
        .filter(Job.execution_id == execution_id)
        .order_by(Job.start_time, Job.id)
        .all()
    )
    children: dict[str | None, list[str]] = {}
    for job_id, parent_id in rows:
        children.setdefault(parent_id, []).append(job_id)
    known = {job_id for job_id, _ in rows}
    ordered: list[str] = []
    stack = [j for p, js in children.items() if p is None or p not in known for j in js]
    stack.reverse()
    while stack:
        job_id = stack.pop()
        ordered.append(job_id)
        stack.extend(reversed(children.get(job_id, [])))
    return ordered


def ancestors(session: Session, job_id: str) -> list[str]:
    """The ids of a job's ancestors, its execution's root job first."""
    from redun.backends.db import Job

    chain: list[str] = []
    row = session.get(Job, job_id)
    while row is not None and row.parent_id is not None and row.parent_id not in chain:
        chain.append(row.parent_id)
        row = session.get(Job, row.parent_id)
    return chain[::-1]


def _value(row: Any) -> Any:
    try:
        return row.value_parsed
    except Exception:  # a value that cannot be read back: keep its type name
        return f"<{row.type}>"


def _arguments(call_node: Any) -> list[tuple[int | None, str | None, Any]]:
    args = [(a.arg_position, a.arg_key, _value(a.value)) for a in call_node.arguments]
    return sorted(args, key=lambda a: (a[0] is None, a[0] or 0, a[1] or ""))


def _error_text(value: Any) -> str:
    error = getattr(value, "error", value)
    text = f"{type(error).__name__}: {error}"
    traceback = getattr(value, "traceback", None)
    if traceback is not None:
        with contextlib.suppress(Exception):  # unreadable: the message is enough
            text += "\n" + "".join(traceback.format())
    return text


def job_start(session: Session, job_id: str) -> JobStart:
    """The start of a job as recorded in the database."""
    from redun.backends.db import Job, Task

    job = session.get(Job, job_id)
    if job is None:
        raise LakelineError(f"no redun job {job_id}")
    task = session.get(Task, job.task_hash)
    name = task.fullname if task is not None else job.task_hash
    return JobStart(
        id=job.id,
        execution_id=job.execution_id,
        parent_id=job.parent_id,
        task_name=name,
        task_hash=job.task_hash,
        source=task.source if task is not None else None,
        started_at=job.start_time,
    )


def _result_files(session: Session, call_hash: str | None) -> set[tuple[str, str]]:
    from redun.backends.db import CallNode

    node = session.get(CallNode, call_hash) if call_hash else None
    if node is None or node.value is None or node.value.type == ERROR_TYPE:
        return set()
    return {(f.path, f.redun_hash) for f in files_in(_value(node.value))}


def job_info(session: Session, job_id: str) -> JobInfo:
    """A job with its arguments (params, used files), status, produced files and error.

    A job produced the files in its result that are neither among its arguments nor in the
    results of its child jobs (a parent passing on a child's output did not make it).
    """
    from redun.backends.db import CallNode, Job

    start = job_start(session, job_id)
    job = session.get(Job, job_id)
    assert job is not None
    info = JobInfo(**vars(start), finished_at=job.end_time, call_hash=job.call_hash)
    node = session.get(CallNode, job.call_hash) if job.call_hash else None
    if node is None:
        return info  # still running (or recorded without provenance)
    args = _arguments(node)
    short = start.task_name.rsplit(".", 1)[-1]
    info.params = params_from_args(args, positional_names(start.source, short))
    info.used = files_in([value for _, _, value in args])
    result = _value(node.value) if node.value is not None else None
    if node.value is not None and node.value.type == ERROR_TYPE:
        info.status, info.error = "errored", _error_text(result)
        return info
    if job.end_time is None:
        return info
    info.status = "cached" if job.cached else "completed"
    if job.cached:
        original = (
            session.query(Job.id)
            .filter(Job.call_hash == job.call_hash, Job.cached.is_(False), Job.id != job.id)
            .order_by(Job.start_time)
            .first()
        )
        info.cached_from = original[0] if original else None
    excluded = {(f.path, f.redun_hash) for f in info.used}
    for (child_hash,) in session.query(Job.call_hash).filter(Job.parent_id == job.id):
        excluded |= _result_files(session, child_hash)
    info.produced = [f for f in files_in(result) if (f.path, f.redun_hash) not in excluded]
    return info
