"""Writing plans through the Recorder: producers before consumers, idempotent by task hash.

pipeline (session) -> workflow Run of the pipeline Transform; task -> Run of its process
Transform, engine ref = full hash; cached occurrence -> `cached` Run pointing at the execution;
published copies -> a `publishDir` Run per task that used the outputs and made the copies.

Public entry points: `record` (whole plans) and `record_task` (one task, for the weblog).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lakeline_nextflow.model import FileRef, Report, TaskPlan, WorkflowPlan
from lakeline_nextflow.paths import REMOTE

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.lineage.recorder import Handle, Recorder

ENGINE = "nextflow"
PUBLISH = "publishDir"
FINAL = ("completed", "errored", "aborted")


def topological(tasks: dict[str, TaskPlan]) -> list[TaskPlan]:
    """Tasks with every producer before its consumers (then by start time, then key)."""
    waiting = {
        key: {r.producer for r in t.inputs if r.producer in tasks and r.producer != key}
        for key, t in tasks.items()
    }
    order: list[TaskPlan] = []

    def sort_key(task: TaskPlan) -> tuple[str, str]:
        return (task.started_at.isoformat() if task.started_at else "~", task.key)

    done: set[str] = set()
    while waiting:
        ready = [tasks[k] for k, deps in waiting.items() if not (deps - done)]
        if not ready:  # a cycle (inconsistent sources): break it by start time
            ready = [min((tasks[k] for k in waiting), key=sort_key)]
        for task in sorted(ready, key=sort_key):
            order.append(task)
            done.add(task.key)
            waiting.pop(task.key, None)
    return order


@contextmanager
def _quiet_recorder() -> Iterator[None]:
    """The Recorder warns once per vanished file; the report lists them instead."""
    logger = logging.getLogger("lakeline.recorder")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def record(
    plans: list[WorkflowPlan], launch_dir: Path, report: Report, instance: Instance | None = None
) -> None:
    """Record every plan (workflow, tasks, cached occurrences, published copies)."""
    from lakeline.lineage.recorder import Recorder

    with _quiet_recorder():
        rec = Recorder(ENGINE, root=launch_dir, instance=instance)
        assert rec.instance is not None
        remote = 0
        for plan in plans:
            if plan.work_root and not _inside(Path(plan.work_root), launch_dir):
                rec.instance.register_storage(plan.work_root)
            remote += _record_plan(rec, plan)
        if remote:
            report.note(f"{remote} remote input(s) (s3, http, ...) recorded by reference")
        report.missing = sorted(set(report.missing) | set(rec.missing))
    report.recorded = True


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _record_plan(rec: Recorder, plan: WorkflowPlan) -> int:
    wf = rec.start_workflow(
        key=plan.pipeline,
        engine_run_id=plan.key,
        params=plan.params,
        version=plan.version,
        reference=plan.reference,
        started_at=plan.started_at,
    )
    remote = 0
    for task in topological(plan.tasks):
        remote += record_task(rec, wf, task)
    for cached in plan.cached:
        original = plan.tasks[cached.task_key]
        step = rec.start_step(
            wf,
            key=cached.process,
            kind="process",
            engine_task_id=cached.key,
            params={"name": original.name, "launch": cached.launch, "cached_from": original.key},
            started_at=cached.at,
            status="scheduled",
            scoped=False,
        )
        rec.finish_step(step, "cached", finished_at=cached.at, cached_from=original.key)
    for task in plan.tasks.values():
        if task.published:
            _record_publish(rec, wf, task)
    if plan.status in FINAL:
        rec.finish_workflow(wf, plan.status, finished_at=plan.finished_at, error=plan.error)
    return remote


def record_task(rec: Recorder, wf: Handle, task: TaskPlan) -> int:
    """Record one task plan as a step of `wf`: its run, inputs, outputs (when completed), log
    and final status. Returns how many of its inputs are remote. Used by the weblog receiver
    for each finished task as by `record()` for a whole plan.
    """
    status = task.status or "started"
    step = rec.start_step(
        wf,
        key=task.process,
        kind="process",
        engine_task_id=task.key,
        params=task.params,
        started_at=task.started_at,
        status="scheduled" if status == "scheduled" else "started",
        scoped=False,
    )
    remote = 0
    for ref in task.inputs:
        remote += ref.path.startswith(REMOTE)
        _file(rec, step, ref, output=False)
    if status == "completed":
        for ref in task.outputs:
            _file(rec, step, ref, output=True)
    if task.log:
        rec.produce(step, task.log, kind="log")
    if status in FINAL:
        rec.finish_step(
            step,
            status,
            finished_at=task.finished_at,
            exit_code=task.exit_code,
            error=task.error,
        )
    return remote


def _file(
    rec: Recorder, step: Handle, ref: FileRef, *, output: bool, role: str | None = None
) -> None:
    """A task's input or output: the file when it is here; otherwise a reference (remote
    inputs are never read; a gone file with a checksum keeps it), else listed as missing."""
    remote = ref.path.startswith(REMOTE)
    if remote or (ref.checksum and not os.path.exists(ref.path)):
        algorithm, _, value = (ref.checksum or "").rpartition(":")
        rec.reference(
            step,
            ref.path,
            output=output,
            role=ref.role if role is None else role,
            hash=value or None,
            hash_type=(algorithm or "unknown") if value else None,
            size=ref.size,
        )
    elif output:
        rec.produce(step, ref.path)
    else:
        rec.use(step, ref.path, role=ref.role if role is None else role)


def _record_publish(rec: Recorder, wf: Handle, task: TaskPlan) -> None:
    at = task.finished_at or task.started_at
    step = rec.start_step(
        wf,
        key=PUBLISH,
        kind="task",
        engine_task_id=f"{task.key}/publish",
        params={"task": task.key, "name": task.name},
        started_at=at,
        scoped=False,
    )
    for source, copy in task.published:
        _file(rec, step, source, output=False, role=source.relpath or "")
        _file(rec, step, copy, output=True)
    rec.finish_step(step, "completed", finished_at=at)
