"""A `-with-weblog` receiver: Runs created and finished as Nextflow's events arrive.

Envelope: `{"runName", "runId" (session UUID), "event", "utcTime", "trace"?, "metadata"?}`;
events `started`, `process_submitted`, `process_started`, `process_completed`, `error`,
`completed`. `trace` is the task's trace record (epoch-ms times); `metadata` holds
`workflow` and `parameters` (`params` in Nextflow < 23.07). Records use the same keys as the
importer (session, task hash), so a later `lakeline nextflow import` merges with them.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline_nextflow.files import add_work_dirs
from lakeline_nextflow.model import Launch, Report, TaskObs, WorkflowPlan, process_of
from lakeline_nextflow.paths import Locator
from lakeline_nextflow.plan import new_task, task_status
from lakeline_nextflow.record import ENGINE, record_task
from lakeline_nextflow.trace import record_to_obs
from lakeline_nextflow.values import iso_time, split_workdir, strip_uri

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.lineage.recorder import Handle, Recorder

log = logging.getLogger("lakeline.nextflow.weblog")
EVENTS: tuple[str, ...] = (
    "started",
    "process_submitted",
    "process_started",
    "process_completed",
    "error",
)
EVENTS += ("completed",)
MAX_RUNS = 64  # live runs followed at once
STALE_AFTER = timedelta(hours=48)  # a live run silent this long is ended as aborted
MAX_WARNINGS = 1000  # the newest warnings kept in memory (all are logged)
# lengths of what becomes a key, an engine ref or a path (a body is bounded by the server)
LIMITS = {"runId": 128, "runName": 255, "name": 255, "version": 64, "reference": 1024}
LIMITS |= {"hash": 64, "task": 1024, "process": 255, "path": 4096, "status": 32}
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_RUN_ID = re.compile(r"[^\s\x00-\x1f\x7f]+")


class BadPayload(ValueError):
    """A payload the receiver cannot use (answered with HTTP 400)."""


class Busy(RuntimeError):
    """The receiver follows as many live runs as it may (answered with HTTP 503)."""


def _bounded(what: str, value: Any, limit: str) -> None:
    if value is not None and len(str(value)) > LIMITS[limit]:
        raise BadPayload(
            f"{what} is {len(str(value))} characters long; the limit is {LIMITS[limit]}"
        )


def check_lengths(payload: dict[str, Any]) -> None:
    """Refuse values too long for what they become (a transform key, an engine ref, a path)."""
    run_id = payload["runId"]
    _bounded("runId", run_id, "runId")
    if not _RUN_ID.fullmatch(run_id):
        raise BadPayload("runId contains whitespace or control characters")
    _bounded("runName", payload.get("runName"), "runName")
    workflow = _dict(_dict(payload.get("metadata")).get("workflow"))
    manifest = _dict(workflow.get("manifest"))
    if workflow:
        _bounded(
            "the pipeline name (manifest, repository or script)",
            _pipeline_name(workflow, manifest),
            "name",
        )
    _bounded("manifest version", manifest.get("version"), "version")
    _bounded("repository", workflow.get("repository"), "reference")
    for name in ("launchDir", "workDir", "projectDir"):
        _bounded(name, workflow.get(name), "path")
    trace = _dict(payload.get("trace"))
    for name, limit in (("hash", "hash"), ("name", "task"), ("process", "process")):
        _bounded(f"trace {name}", trace.get(name), limit)
    _bounded("trace workdir", trace.get("workdir"), "path")
    _bounded("trace status", trace.get("status"), "status")


def parse_payload(body: bytes, notes: list[str]) -> dict[str, Any]:
    """A JSON event; a trailing comma (as in Nextflow's own docs example) is forgiven."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayload(f"payload is not UTF-8 ({exc})") from None
    try:
        payload = json.loads(text)
    except RecursionError:
        raise BadPayload("payload nests too deeply") from None
    except ValueError as exc:
        try:
            payload = json.loads(_TRAILING_COMMA.sub(r"\1", text))
        except (ValueError, RecursionError):
            raise BadPayload(f"payload is not JSON ({exc})") from None
        notes.append("payload had a trailing comma (not strict JSON): read anyway")
    if not isinstance(payload, dict):
        raise BadPayload(f"payload is a JSON {type(payload).__name__}, not an object")
    event, run_id = payload.get("event"), payload.get("runId")
    if event not in EVENTS:
        raise BadPayload(f"unknown event {event!r} (expected one of {', '.join(EVENTS)})")
    if not isinstance(run_id, str) or not run_id:
        raise BadPayload("payload has no `runId` (the session id)")
    if event.startswith("process_") and not isinstance(payload.get("trace"), dict):
        raise BadPayload(f"{event} event without a `trace` object")
    if event in ("started", "completed") and not isinstance(payload.get("metadata"), dict):
        raise BadPayload(f"{event} event without a `metadata` object")
    check_lengths(payload)
    return payload


@dataclass
class _Session:
    recorder: Recorder
    workflow: Handle
    launch: Launch
    locator: Locator
    plan: WorkflowPlan
    pending: dict[str, TaskObs] = field(default_factory=dict)
    running: dict[str, Handle] = field(default_factory=dict)  # started, not finished
    error: str | None = None
    seen: float = field(default_factory=time.monotonic)  # the last event


class WeblogReceiver:
    """Turns weblog payloads into lineage (thread-safe: one event at a time).

    At most `max_runs` runs are followed at once (a new one beyond is refused: `Busy`); a run
    with no event for `stale_after` is ended as aborted, with its running tasks, so that no
    run looks alive forever. A completed run is forgotten.
    """

    def __init__(
        self,
        instance: Instance | None = None,
        *,
        max_runs: int = MAX_RUNS,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.instance = instance
        self.max_runs = max_runs
        self.stale_after = stale_after
        self.sessions: dict[str, _Session] = {}
        self.counts: Counter[str] = Counter()
        self.warnings: deque[str] = deque(maxlen=MAX_WARNINGS)
        self._lock = threading.Lock()

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    def handle(self, body: bytes) -> tuple[int, str]:
        """Process one POSTed body; returns (HTTP status, message)."""
        notes: list[str] = []
        try:
            payload = parse_payload(body, notes)
        except BadPayload as exc:
            self.counts["rejected"] += 1
            self._warn(f"weblog payload rejected: {exc}")
            return 400, str(exc)
        for note in notes:
            self._warn(f"weblog {payload['event']} of {payload['runId']}: {note}")
        with self._lock:
            self._end_stale(exclude=payload["runId"])
            try:
                message = self._dispatch(payload)
            except BadPayload as exc:
                self.counts["rejected"] += 1
                self._warn(f"weblog {payload['event']} rejected: {exc}")
                return 400, str(exc)
            except Busy as exc:
                self.counts["refused"] += 1
                self._warn(f"weblog {payload['event']} refused: {exc}")
                return 503, str(exc)
        self.counts[payload["event"]] += 1
        log.info("%s: %s", payload.get("runName") or payload["runId"], message)
        return 200, message

    def end_stale(self) -> int:
        """End the runs silent for `stale_after` as aborted; how many were ended."""
        with self._lock:
            return self._end_stale()

    def _end_stale(self, exclude: str | None = None) -> int:
        now, limit = time.monotonic(), self.stale_after.total_seconds()
        stale = [s for r, s in self.sessions.items() if r != exclude and now - s.seen >= limit]
        for session in stale:
            self._abort(session, f"no event for {self.stale_after} (the receiver's stale_after)")
        return len(stale)

    def _abort(self, session: _Session, reason: str) -> None:
        """End a run the receiver stops following: its running tasks and itself aborted."""
        for step in session.running.values():
            session.recorder.finish_step(step, "aborted", error=reason)
        session.recorder.finish_workflow(session.workflow, "aborted", error=reason)
        self.sessions.pop(session.plan.key, None)
        self._warn(f"run {session.plan.key} ended as aborted: {reason}")

    # -- events ---------------------------------------------------------------------------------

    def _dispatch(self, payload: dict[str, Any]) -> str:
        event = payload["event"]
        if event == "started":
            session = self._session(payload, create=True)
            return f"workflow {session.workflow.engine_ref} started"
        if event == "completed":
            return self._completed(self._session(payload, create=False), payload)
        if event == "error" and not isinstance(payload.get("trace"), dict):
            session = self._session(payload, create=False)
            session.error = session.error or "the workflow reported an error"
            return "workflow error noted"
        obs = self._obs(payload)  # validated before anything is recorded
        session = self._session(payload, create=False)
        key = obs.hash or f"{session.plan.key}/{obs.short}"
        if event == "process_submitted":
            session.pending[key] = obs
            return f"task {key} submitted"
        session.pending.pop(key, None)
        if event == "process_started":
            self._start(session, key, obs)
            return f"task {key} started"
        if event == "error":
            obs.status = "FAILED"
        self._finish(session, key, obs)
        return f"task {key} {obs.status.lower() if obs.status else 'finished'}"

    def _obs(self, payload: dict[str, Any]) -> TaskObs:
        problems: list[str] = []
        obs = record_to_obs(payload["trace"], "weblog", problems)
        if obs is None or not (obs.hash or obs.short):
            raise BadPayload("the trace names no task (no `hash` or `workdir`)")
        for problem in problems:
            self._warn(problem)
        return obs

    def _session(self, payload: dict[str, Any], *, create: bool) -> _Session:
        from lakeline.lineage.recorder import Recorder

        run_id = payload["runId"]
        if run_id in self.sessions:
            self.sessions[run_id].seen = time.monotonic()
            return self.sessions[run_id]
        if len(self.sessions) >= self.max_runs:
            raise Busy(
                f"{len(self.sessions)} runs are live, the most this receiver follows "
                f"(max_runs): run {run_id} is not recorded"
            )
        metadata: dict[str, Any] = payload.get("metadata") or {}
        workflow: dict[str, Any] = _dict(metadata.get("workflow"))
        if not create:
            self._warn(f"events of {run_id} arrived before its `started` event")
        launch_dir = strip_uri(str(workflow.get("launchDir") or "")) or None
        root = launch_dir if launch_dir and Path(launch_dir).is_dir() else None
        recorder = Recorder(ENGINE, root=root, instance=self.instance)
        launch = Launch(
            source="weblog",
            run_name=payload.get("runName") or workflow.get("runName"),
            session=run_id,
            command=workflow.get("commandLine"),
            revision=workflow.get("revision") or workflow.get("commitId"),
            nextflow_version=_dict(workflow.get("nextflow")).get("version"),
            launch_dir=launch_dir,
            work_dir=strip_uri(str(workflow.get("workDir") or "")) or None,
        )
        started = _time(workflow.get("start")) or _time(payload.get("utcTime"))
        launch.started_at = started
        params = metadata.get("parameters", metadata.get("params"))
        manifest = _dict(workflow.get("manifest"))
        pipeline = _pipeline_name(workflow, manifest) if workflow else None
        pipeline = pipeline or f"nextflow run {launch.run_name or run_id}"
        plan = WorkflowPlan(key=run_id, pipeline=pipeline, launches=[launch])
        work = Path(launch.work_dir) if launch.work_dir else None
        locator = Locator(
            launch_dir=Path(launch_dir or "."),
            work_root=work if work is not None and work.is_dir() else None,
            original_work={launch.work_dir} if launch.work_dir else set(),
        )
        handle = recorder.start_workflow(
            key=pipeline,
            engine_run_id=run_id,
            params={
                "session": run_id,
                "launches": [
                    {
                        "run_name": launch.run_name,
                        "command": launch.command,
                        "revision": launch.revision,
                        "nextflow": launch.nextflow_version,
                        "started_at": started.isoformat() if started else None,
                        "status": None,
                    }
                ],
                **({"params": params} if isinstance(params, dict) else {}),
            },
            version=manifest.get("version"),
            reference=workflow.get("repository") or None,
            description=manifest.get("description"),
            started_at=started,
        )
        session = _Session(recorder, handle, launch, locator, plan)
        self.sessions[run_id] = session
        return session

    def _start(self, session: _Session, key: str, obs: TaskObs) -> None:
        task = new_task(session.plan, key, obs, session.launch, "started")
        session.running[key] = session.recorder.start_step(
            session.workflow,
            key=task.process,
            kind="process",
            engine_task_id=key,
            params=task.params,
            started_at=task.started_at,
            scoped=False,
        )

    def _finish(self, session: _Session, key: str, obs: TaskObs) -> None:
        status = task_status(obs, session.launch) or "completed"
        task = new_task(session.plan, key, obs, session.launch, status)
        task.process = obs.process or process_of(task.name)
        if session.locator.work_root is None and obs.workdir:
            parts = split_workdir(obs.workdir)
            if parts is not None and Path(parts[0]).is_dir():
                session.locator.work_root = Path(parts[0])
        single = WorkflowPlan(key=session.plan.key, pipeline=session.plan.pipeline)
        single.tasks[key] = task
        add_work_dirs(single, session.locator, Report(launch_dir=str(session.locator.launch_dir)))
        record_task(session.recorder, session.workflow, task)
        session.running.pop(key, None)

    def _completed(self, session: _Session, payload: dict[str, Any]) -> str:
        metadata: dict[str, Any] = payload["metadata"]
        workflow = _dict(metadata.get("workflow"))
        for key, obs in list(session.pending.items()):  # submitted, never started
            obs.status = "ABORTED"
            self._finish(session, key, obs)
        session.pending.clear()
        for step in session.running.values():  # started, no end event: its end is unknown
            session.recorder.finish_step(step, "aborted", error="no end event before the run's")
        session.running.clear()
        self.sessions.pop(session.plan.key, None)
        success = workflow.get("success", metadata.get("success"))
        error = workflow.get("errorMessage") or session.error
        status = "completed" if success is True and not error else "errored"
        if success is None and not error:
            status = "completed"
        exit_status = workflow.get("exitStatus")
        session.recorder.finish_workflow(
            session.workflow,
            status,
            finished_at=_time(workflow.get("complete")) or _time(payload.get("utcTime")),
            exit_code=exit_status if isinstance(exit_status, int) else None,
            error=str(error) if error else None,
        )
        stats = workflow.get("stats") or metadata.get("stats") or {}
        cached = stats.get("cachedCount") if isinstance(stats, dict) else None
        if isinstance(cached, int) and cached:
            self._warn(
                f"session {session.plan.key}: {cached} cached task(s) send no weblog event: "
                "run `lakeline nextflow import` on the launch dir to record them"
            )
        return f"workflow {session.workflow.engine_ref} {status}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> Any:
    try:
        return iso_time(value)
    except (TypeError, ValueError):
        return None


def _pipeline_name(workflow: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The pipeline transform's key, as the importer names it."""
    if manifest.get("name"):
        return str(manifest["name"])
    repository = str(workflow.get("repository") or "")
    if repository:
        return repository.removeprefix("https://github.com/").removesuffix(".git")
    script = workflow.get("scriptName") or "main.nf"
    project = strip_uri(str(workflow.get("projectDir") or workflow.get("launchDir") or ""))
    return f"{Path(project).name}/{script}" if project else str(script)
