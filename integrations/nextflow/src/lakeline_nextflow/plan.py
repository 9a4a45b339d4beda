"""The merger: every source joined by task hash into workflow and task plans.

A session (`-resume` keeps it) is one workflow Run; each task execution is one Run keyed by
its full hash; a task a later launch took from the cache becomes a `cached` Run linked to the
execution. Work dirs, the lineage store and the RO-Crate add files; nothing is recorded here.

Public entry points (also used by the weblog receiver): `build_plan`, `new_task`, `task_status`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from pathlib import Path
from typing import Any

from lakeline_nextflow.launches import assemble, launch_id, shorts
from lakeline_nextflow.lineage_store import LineageStore
from lakeline_nextflow.model import (
    STATUSES,
    CachedPlan,
    HistoryEntry,
    Launch,
    Report,
    TaskObs,
    TaskPlan,
    WorkflowPlan,
    process_of,
)
from lakeline_nextflow.paths import Locator, find_work_root
from lakeline_nextflow.rocrate import Crate
from lakeline_nextflow.values import split_workdir
from lakeline_nextflow.workdir import find_task_dirs, read_workdir, resolve_short

RESOURCES = ("cpus", "memory", "time", "disk", "queue")
IDENTITY_PARAMS = ("tag", "native_id", "attempt", "container", "module", "hostname")
LONG_TEXT = ("script", "env")


@dataclass
class Sources:
    """Everything the readers found, before merging."""

    launch_dir: Path
    logs: list[Launch] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    tables: list[tuple[str, list[TaskObs]]] = field(default_factory=list)
    store: LineageStore | None = None
    crate: Crate | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)  # name, version, params (files)
    work_dir: Path | None = None
    tz: tzinfo | None = None


def build_plan(sources: Sources, report: Report) -> list[WorkflowPlan]:
    """Join every source into workflow plans (one per session)."""
    launches = assemble(sources.logs, sources.history, sources.tables, report, sources.tz)
    _sessions_from_metadata(launches, sources)
    groups: dict[str, list[Launch]] = {}
    for launch in launches:
        groups.setdefault(launch.session or f"nextflow-{launch_id(launch)}", []).append(launch)
    extra = _sessions_of_metadata(sources)
    for session in extra:
        groups.setdefault(session, [])
    listed = any(launch.tasks for launch in launches) or bool(extra)
    lone = not listed and len(groups) == 1  # nothing lists tasks: one session takes work dirs
    plans = []
    for key, members in groups.items():
        if key.startswith("nextflow-") and any(m.tasks for m in members):
            report.note(
                f"no log, history, lineage store or RO-Crate names the session of "
                f"{', '.join(m.source for m in members)}: recorded under the stand-in id {key}"
            )
        if not (any(m.tasks for m in members) or key in extra or lone):
            names = ", ".join(m.run_name or m.source for m in members)
            report.note(f"session {key} ({names}): no task of it is known: not imported")
            continue
        plans.append(_workflow(key, members, sources, report, scan=lone))
    if not listed and not groups:  # work dirs alone
        key = f"nextflow-workdirs-{digest(str(sources.launch_dir))}"
        plans.append(_workflow(key, [], sources, report, scan=True))
    return [plan for plan in plans if plan.tasks]


def digest(text: str) -> str:
    """A short stable digest, for stand-in ids."""
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _sessions_from_metadata(launches: list[Launch], sources: Sources) -> None:
    """A launch no log names gets its session from the store or crate when they share tasks."""
    known: dict[str, str] = {}
    if sources.store is not None:
        for task in sources.store.tasks.values():
            if task.session:
                known[task.hash[:2] + "/" + task.hash[2:8]] = task.session
    if sources.crate is not None and sources.crate.session:
        for digest in sources.crate.tasks:
            known[digest[:2] + "/" + digest[2:8]] = sources.crate.session
    for launch in launches:
        if launch.session is None:
            hits = [known[s] for s in shorts(launch.tasks) if s in known]
            if hits:
                launch.session = max(set(hits), key=hits.count)


def _sessions_of_metadata(sources: Sources) -> list[str]:
    found = []
    if sources.store is not None:
        found += [t.session for t in sources.store.tasks.values() if t.session]
    if sources.crate is not None and sources.crate.session and sources.crate.tasks:
        found.append(sources.crate.session)
    return list(dict.fromkeys(found))


def _locator(members: list[Launch], sources: Sources) -> Locator:
    originals = [m.work_dir for m in members if m.work_dir]
    launch_originals = [m.launch_dir for m in members if m.launch_dir]
    launch_originals += [str(Path(w).parent) for w in originals]
    if sources.store is not None:
        for output in sources.store.outputs:
            parts = split_workdir(output.path) if output.task else None
            if parts is not None:
                originals.append(parts[0])
    root = find_work_root(sources.launch_dir, sources.work_dir, originals, launch_originals)
    return Locator(sources.launch_dir, root, set(originals), set(launch_originals))


def _workflow(
    key: str, members: list[Launch], sources: Sources, report: Report, *, scan: bool = False
) -> WorkflowPlan:
    locator = _locator(members, sources)
    plan = WorkflowPlan(key=key, pipeline="", launches=members)
    plan.work_root = None if locator.work_root is None else str(locator.work_root)
    _resolve_hashes(members, sources, locator)
    for launch in members:
        for obs in launch.tasks:
            _add_task(plan, launch, obs, report)
    from lakeline_nextflow.files import add_crate, add_lineage, add_work_dirs, consumed_outputs

    if sources.store is not None:
        add_lineage(plan, sources.store, locator, report)
    if sources.crate is not None and (sources.crate.session in (None, key)):
        add_crate(plan, sources.crate, locator, report)
    if scan and not plan.tasks and locator.work_root is not None:
        _tasks_from_work_dirs(plan, locator, report)
    add_work_dirs(plan, locator, report)
    consumed_outputs(plan)
    _identity(plan, members, sources, report)
    _status(plan, members, report)
    crate = sources.crate
    if not members and crate is not None and crate.session == key:
        plan.started_at = crate.started or plan.started_at
        plan.finished_at = crate.ended or plan.finished_at
    return plan


def _resolve_hashes(members: list[Launch], sources: Sources, locator: Locator) -> None:
    """Give short-hash-only observations their full hash, from any source that has it."""
    full: dict[str, str] = {}
    for launch in members:
        for obs in launch.tasks:
            if obs.hash and obs.short:
                full[obs.short] = obs.hash
    for digest in [
        *(sources.store.tasks if sources.store else []),
        *(sources.crate.tasks if sources.crate else []),
    ]:
        full.setdefault(f"{digest[:2]}/{digest[2:8]}", digest)
    for launch in members:
        for obs in launch.tasks:
            if obs.hash or not obs.short:
                continue
            found = full.get(obs.short)
            if found is None and locator.work_root is not None and len(obs.short) >= 4:
                path = resolve_short(locator.work_root, obs.short)
                found = None if path is None else path.parent.name + path.name
            obs.hash = found


def task_status(obs: TaskObs, launch: Launch) -> str | None:
    """The lakeline status of a task observation (None: the source does not say).

    A non-zero exit makes `completed` errored; an unfinished task of a finished launch is
    aborted. Shared by the importer and the weblog receiver.
    """
    status = STATUSES.get(obs.status or "")
    if status == "completed" and obs.exit_code not in (None, 0):
        status = "errored"
    if status in ("scheduled", "started") and launch.finished:
        status = "aborted"  # the launch ended without finishing it
    return status


def _params(obs: TaskObs, launch: Launch) -> dict[str, Any]:
    params: dict[str, Any] = {"name": obs.name, "launch": launch_id(launch)}
    if obs.task_id is not None:
        params["task_id"] = obs.task_id
    if obs.workdir:
        params["workdir"] = obs.workdir
    resources, metrics = {}, {}
    for key, value in obs.fields.items():
        if key in RESOURCES:
            resources[key] = value
        elif key in IDENTITY_PARAMS or key in LONG_TEXT:
            params[key] = value
        else:
            metrics[key] = value
    if obs.submit is not None:
        params["submit"] = obs.submit.isoformat()
    if resources:
        params["resources"] = resources
    if metrics:
        params["metrics"] = metrics
    return params


def _add_task(plan: WorkflowPlan, launch: Launch, obs: TaskObs, report: Report) -> None:
    short = obs.short or (obs.hash[:2] + "/" + obs.hash[2:8] if obs.hash else "?")
    key = obs.hash or f"{plan.key}/{short}"
    task = plan.tasks.get(key)
    if obs.status == "CACHED":
        if task is None:
            task = new_task(plan, key, obs, launch, "completed")
            task.params["recorded_from"] = "a cached entry (the launch that ran it is not known)"
            report.note(
                f"session {plan.key}: tasks first seen as cached were recorded from their cached "
                "entries (the launch that ran them is not in this import)"
            )
        plan.cached.append(
            CachedPlan(
                key=f"{key}@{launch_id(launch)}",
                task_key=key,
                launch=launch_id(launch),
                process=task.process,
                at=launch.started_at or obs.submit,
            )
        )
        return
    status = task_status(obs, launch)
    if task is None:
        new_task(plan, key, obs, launch, status or "started")
        if status is None:
            plan.tasks[key].status = ""  # decided later from the work dir's .exitcode
    else:
        task.sources.add(obs.source)


def new_task(plan: WorkflowPlan, key: str, obs: TaskObs, launch: Launch, status: str) -> TaskPlan:
    """Add (or replace) `plan.tasks[key]`: the task plan of one observation with its params
    (resources, metrics, identity) and times. Shared by the importer and the weblog receiver.
    """
    name = obs.name or obs.short or key
    started = obs.start or obs.submit
    finished = obs.complete
    duration = obs.fields.get("duration") if obs.complete is None else None
    if finished is None and started is not None and isinstance(duration, int):
        finished = (obs.submit or started) + timedelta(milliseconds=duration)
    task = TaskPlan(
        key=key,
        scoped=obs.hash is None,
        short=obs.short or "?",
        hash=obs.hash,
        process=obs.process or process_of(name),
        name=name,
        status=status,
        exit_code=obs.exit_code,
        started_at=started,
        finished_at=finished,
        error=obs.error,
        params=_params(obs, launch),
        sources={obs.source},
    )
    plan.tasks[key] = task
    return task


def _tasks_from_work_dirs(plan: WorkflowPlan, locator: Locator, report: Report) -> None:
    """No log, trace or record lists the tasks: take every work dir (one unknown session)."""
    assert locator.work_root is not None
    found = find_task_dirs(locator.work_root)
    if found:
        report.note(
            f"{locator.work_root}: no log or trace lists the tasks: imported all {len(found)} "
            "work dirs as one run (their session is not known)"
        )
    for digest, path in found.items():
        problems: list[str] = []
        info = read_workdir(path, digest, problems)
        name = info.name or digest
        plan.tasks[digest] = TaskPlan(
            key=digest,
            scoped=False,
            short=f"{digest[:2]}/{digest[2:8]}",
            hash=digest,
            process=process_of(name),
            name=name,
            status="",
            params={"name": name, "workdir": str(path)},
            sources={"workdir"},
        )


def _identity(plan: WorkflowPlan, members: list[Launch], sources: Sources, report: Report) -> None:
    """Pipeline name, version and reference, from the richest source that has them."""
    latest = next((m for m in reversed(members) if m.script), None)
    crate = sources.crate if sources.crate and sources.crate.session in (None, plan.key) else None
    workflow_run = _workflow_run(sources.store, plan.key)
    repository = (workflow_run or {}).get("workflow", {}).get("repository")
    name = sources.pipeline.get("name") or (crate.pipeline if crate else None)
    if name is None and latest is not None and latest.script:
        script = latest.script.removeprefix("https://github.com/").removesuffix(".git")
        if script.endswith(".nf") and "/" not in script:
            origin = latest.launch_dir
            if origin is None and latest.work_dir:
                origin = str(Path(latest.work_dir).parent)
            folder = Path(origin).name if origin else sources.launch_dir.resolve().name
            name = f"{folder}/{script}"
        else:
            name = script
    if name is None and repository:
        name = str(repository).removeprefix("https://github.com/").removesuffix(".git")
    if name is None:
        name = sources.launch_dir.resolve().name or "nextflow-pipeline"
        report.note(
            f"session {plan.key}: the pipeline's name is not known: "
            f"named after the launch folder ({name!r})"
        )
    plan.pipeline = name
    plan.version = sources.pipeline.get("version") or (latest.release if latest else None)
    if plan.version is None and crate is not None:
        plan.version = crate.version
    plan.reference = repository or (crate.repository if crate else None)
    if plan.reference is None and latest is not None and latest.script and "/" in latest.script:
        plan.reference = latest.script
    params: dict[str, Any] = {"session": plan.key if not plan.key.startswith("nextflow-") else None}
    params["launches"] = [
        {
            "run_name": m.run_name,
            "command": m.command,
            "revision": m.revision,
            "nextflow": m.nextflow_version,
            "started_at": m.started_at.isoformat() if m.started_at else None,
            "status": m.status,
        }
        for m in members
    ]
    pipeline_params = next((m.params for m in reversed(members) if m.params), None)
    if not pipeline_params:
        pipeline_params = sources.pipeline.get("params") or (crate.params if crate else None)
    if pipeline_params:
        params["params"] = pipeline_params
    if sources.pipeline.get("nextflow"):
        params["nextflow"] = sources.pipeline["nextflow"]
    plan.params = params


def _workflow_run(store: LineageStore | None, session: str) -> dict[str, Any] | None:
    if store is None:
        return None
    return next((w for w in store.workflow_runs.values() if w.get("sessionId") == session), None)


def _status(plan: WorkflowPlan, members: list[Launch], report: Report) -> None:
    """Workflow status and times: the last launch's outcome; times span every launch."""
    starts = [m.started_at for m in members if m.started_at]
    task_starts = [t.started_at for t in plan.tasks.values() if t.started_at]
    plan.started_at = min(starts or task_starts, default=None)
    last = members[-1] if members else None
    if last is not None and last.status is not None:
        plan.status = last.status
        plan.error = last.error
        plan.finished_at = last.finished_at
    elif last is not None and last.finished:
        plan.status = "completed"
    elif last is not None and last.cut:
        report.note(
            f"session {plan.key}: its trace was cut short and no log or history says how the "
            "run ended: left unfinished"
        )
    elif last is None or last.source.startswith(("trace:", "report:")) or not members:
        states = {t.status for t in plan.tasks.values()}
        if states and states <= {"completed", "cached"}:
            plan.status = "completed"
        elif "errored" in states and not states & {"started", "scheduled", ""}:
            plan.status = "errored"
        ends = [t.finished_at for t in plan.tasks.values() if t.finished_at]
        plan.finished_at = max(ends, default=None) if plan.status else None
        if plan.status:
            report.note(
                f"session {plan.key}: no log or history says how the run ended: "
                f"status {plan.status!r} inferred from its tasks"
            )
    if plan.status is None:
        report.note(f"session {plan.key}: the run has not finished (or its end is unknown)")
