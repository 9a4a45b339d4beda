"""Writing plans through the Recorder: producers before consumers, idempotent by task hash.

pipeline (session) -> workflow Run of the pipeline Transform; task -> Run of its process
Transform, engine ref = full hash; cached occurrence -> `cached` Run pointing at the execution;
published copies -> a `publishDir` Run per task that used the outputs and made the copies.

Public entry points: `record` (whole plans) and `record_task` (one task, for the weblog).
An import writes through a `BatchRecorder` (a few transactions for a whole run): what it
wrote is kept by handle and read back after the flush.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline_nextflow.model import FileRef, Report, TaskPlan, WorkflowPlan
from lakeline_nextflow.paths import REMOTE

if TYPE_CHECKING:
    from lakeline import Artifact
    from lakeline.instance import Instance
    from lakeline.lineage.recorder import Handle, Recorder

ENGINE = "nextflow"
PUBLISH = "publishDir"
FINAL = ("completed", "errored", "aborted")
CHUNK = 10_000  # ids per `id__in` query
BATCH_STEPS = 1000  # an import's batch: the 486-task nf-core run is one
BATCH_MS = 30_000.0
CORRECTABLE = ("resources", "metrics", "checksums")  # params a later import completes
RESERVED = ("step", "namespace", "self")  # names annotate() takes itself
ROLE_LENGTH = 255  # what an input's role holds (run_inputs.role); the Recorder refuses more


@dataclass
class Written:
    """What recording wrote, for a report that says what the catalog holds."""

    steps: list[Handle] = field(default_factory=list)  # the steps recorded
    # (consumer step, artifact, file name) of each input recorded; ids are read after a flush
    inputs: list[tuple[Handle, Artifact, str]] = field(default_factory=list)
    # (step, planned params) of queued steps, compared with the recorded run after the flush
    params: list[tuple[Handle, dict[str, Any]]] = field(default_factory=list)
    referenced: set[str] = field(default_factory=set)  # local files recorded as references
    remote: int = 0
    published: int = 0  # published copies recorded
    published_by: dict[str, int] = field(default_factory=dict)  # by publishDir step

    def drop(self, left_out: dict[str, str]) -> None:
        """Forget the steps a batch left out (engine ids): not recorded."""
        self.published -= sum(n for ref, n in self.published_by.items() if ref in left_out)
        self.steps = [s for s in self.steps if s.engine_ref not in left_out]
        self.inputs = [i for i in self.inputs if i[0].engine_ref not in left_out]
        self.params = [p for p in self.params if p[0].engine_ref not in left_out]

    def edges(self) -> list[tuple[str, str, str]]:
        """(consumer, producer, file) for each recorded task input another run produced,
        read back from the catalog (after the Recorder's flush)."""
        import lakeline as ll

        runs = {step.run.id: step.engine_ref for step in self.steps}
        inputs = [(step.run.id, step.engine_ref, a.id, name) for step, a, name in self.inputs]
        ids = sorted({artifact_id for _, _, artifact_id, _ in inputs})
        producer_of: dict[int, int | None] = {}
        for start in range(0, len(ids), CHUNK):
            for artifact in ll.Artifact.filter(id__in=ids[start : start + CHUNK]):
                producer_of[artifact.id] = artifact.run_id
        unknown = sorted({r for r in producer_of.values() if r is not None} - set(runs))
        refs: dict[int | None, str | None] = dict(runs)
        for start in range(0, len(unknown), CHUNK):
            refs |= {
                r.id: r.engine_ref for r in ll.Run.filter(id__in=unknown[start : start + CHUNK])
            }
        edges = set()
        for run_id, consumer, artifact_id, name in inputs:
            producer = producer_of.get(artifact_id)
            ref = None if producer is None or producer == run_id else refs.get(producer)
            if ref:
                edges.add((consumer, ref, name))
        return sorted(edges)


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
    from lakeline.lineage.recorder import BatchRecorder, make_recorder

    with _quiet_recorder():
        rec = make_recorder(
            ENGINE, batch=True, steps=BATCH_STEPS, ms=BATCH_MS, root=launch_dir, instance=instance
        )
        assert rec.instance is not None
        written = Written()
        for plan in plans:
            if plan.work_root and not _inside(Path(plan.work_root), launch_dir):
                rec.instance.register_storage(plan.work_root)
            with _noting(report):  # the workflow run's own refusal: its plan stops there
                _record_plan(rec, plan, written, lambda: _noting(report))
        if isinstance(rec, BatchRecorder):  # a run still going was not finished (a flush)
            with _noting(report):
                rec.flush()
        if report.left_out:  # what a batch left out is not recorded: not reported as such
            written.drop(report.left_out)
            _count_left_out(plans, report)
        for step, params in written.params:
            _complete_params(rec, step, params)
        if written.remote:
            report.note(f"{written.remote} remote input(s) (s3, http, ...) recorded by reference")
        report.missing = sorted(set(rec.missing) - written.referenced)
        report.referenced = sorted(written.referenced)
        report.published = written.published
        tasks = {key for plan in plans for key in plan.tasks}
        planned = {e for e in report.producer_edges if e[1] in tasks}  # producers it records
        outside = {e[1] for e in report.producer_edges} - tasks
        report.producer_edges = written.edges()
        lost = len(planned - set(report.producer_edges))
        if lost:
            report.warn(f"{lost} of {len(planned)} producer edges found could not be recorded")
        if outside:  # a lineage store or crate names producers it holds no record of
            report.note(
                f"{len(outside)} task(s) that produced inputs are not in this import: "
                "those inputs are recorded without their producer"
            )
    report.recorded = True


@contextmanager
def _noting(report: Report) -> Iterator[None]:
    """Note in `report.left_out` the steps a batch written inside left out (StepsNotRecorded:
    the rest was written), and go on: one task's refusal does not stop the import."""
    from lakeline.errors import StepsNotRecorded

    try:
        yield
    except StepsNotRecorded as exc:
        report.left_out.update(exc.steps)


def _count_left_out(plans: list[WorkflowPlan], report: Report) -> None:
    """How many of each workflow's tasks were left out (its `left_out`; all of them if its
    workflow run was: nothing under it is recorded); its and the report's status breakdown
    and cached count are of what was recorded."""
    from collections import Counter

    total: Counter[str] = Counter()
    cached = 0
    for plan, wf in zip(plans, report.workflows, strict=False):
        gone = plan.key in report.left_out
        kept = [t for key, t in plan.tasks.items() if not (gone or key in report.left_out)]
        wf["left_out"] = len(plan.tasks) - len(kept)
        states = Counter(t.status or "started" for t in kept)
        wf["by_status"] = dict(sorted(states.items()))
        wf["cached"] = sum(1 for c in plan.cached if not (gone or c.key in report.left_out))
        total += states
        cached += wf["cached"]
    report.by_status = dict(sorted(total.items()))
    report.cached = cached


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _record_plan(
    rec: Recorder,
    plan: WorkflowPlan,
    written: Written,
    each: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> None:
    """Record one plan; `each` wraps each step's recording (the import notes a step left out
    by a batch there, StepsNotRecorded, and goes on with the next)."""
    wf = rec.start_workflow(
        key=plan.pipeline,
        engine_run_id=plan.key,
        params=plan.params,
        version=plan.version,
        reference=plan.reference,
        started_at=plan.started_at,
    )
    for task in topological(plan.tasks):
        with each():
            record_task(rec, wf, task, written)
    for cached in plan.cached:
        original = plan.tasks[cached.task_key]
        with each():
            step = rec.start_step(
                wf,
                key=cached.process,
                kind="process",
                engine_task_id=cached.key,
                params={
                    "name": original.name,
                    "launch": cached.launch,
                    "cached_from": original.key,
                },
                started_at=cached.at,
                status="scheduled",
                scoped=False,
            )
            rec.finish_step(step, "cached", finished_at=cached.at, cached_from=original.key)
    for task in plan.tasks.values():
        if task.published:
            with each():
                _record_publish(rec, wf, task, written)
    if plan.status in FINAL:
        rec.finish_workflow(wf, plan.status, finished_at=plan.finished_at, error=plan.error)


def record_task(
    rec: Recorder, wf: Handle, task: TaskPlan, written: Written | None = None
) -> Written:
    """Record one task plan as a step of `wf`: its run, inputs, outputs (when completed), log
    and final status; what was written is added to `written` (returned). Used by the weblog
    receiver for each finished task as by `record()` for a whole plan.
    """
    written = Written() if written is None else written
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
    if step.run.id is None:  # queued: the run recorded before (if any) is known at the flush
        written.params.append((step, task.params))
    else:
        _complete_params(rec, step, task.params)
    written.steps.append(step)
    for ref in task.inputs:
        written.remote += ref.path.startswith(REMOTE)
        used = _file(rec, step, ref, output=False, written=written)
        if used is not None:
            written.inputs.append((step, used, ref.relpath or Path(ref.path).name))
    if status == "completed":
        for ref in task.outputs:
            _file(rec, step, ref, output=True, written=written)
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
    return written


def _complete_params(rec: Recorder, step: Handle, params: dict[str, Any]) -> None:
    """A run recorded before from less (its log alone, a cut trace) gets the trace values a
    later import adds or gives differently; a value is never removed."""
    recorded = step.run.params or {}
    for namespace in CORRECTABLE:
        planned = params.get(namespace)
        if not isinstance(planned, dict) or not planned:
            continue
        current = recorded.get(namespace) or {}
        update = {k: v for k, v in planned.items() if current.get(k) != v and k not in RESERVED}
        if update:
            rec.annotate(step, namespace, **update)


def _file(
    rec: Recorder,
    step: Handle,
    ref: FileRef,
    *,
    output: bool,
    written: Written,
    role: str | None = None,
) -> Artifact | None:
    """A task's input or output: the file when it is here; otherwise a reference, with the
    checksum a source gave, else by location alone (hash unknown), so that the edge and the
    path stay in the graph. Remote files are never read."""
    role = _fit_role(ref.role if role is None else role)
    if ref.path.startswith(REMOTE) or not os.path.exists(ref.path):
        algorithm, _, value = (ref.checksum or "").rpartition(":")
        artifact = rec.reference(
            step,
            ref.path,
            output=output,
            role=role,
            hash=value or None,
            hash_type=(algorithm or "unknown") if value else None,
            size=ref.size,
        )
        if not ref.path.startswith(REMOTE) and not artifact.available:
            written.referenced.add(ref.path)
        return artifact
    if output:
        return rec.produce(step, ref.path)
    return rec.use(step, ref.path, role=role)


def _fit_role(role: str) -> str:
    """`role`, or its end after an ellipsis when longer than a role holds: a published copy's
    role is its source's path inside the work dir, which nesting can make longer (the source's
    own key keeps the whole path)."""
    return role if len(role) <= ROLE_LENGTH else "…" + role[-(ROLE_LENGTH - 1) :]


def _record_publish(rec: Recorder, wf: Handle, task: TaskPlan, written: Written) -> None:
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
    written.steps.append(step)
    for source, copy in task.published:
        _file(rec, step, source, output=False, written=written, role=source.relpath or "")
        made = _file(rec, step, copy, output=True, written=written) is not None
        written.published += made
        written.published_by[step.engine_ref] = written.published_by.get(step.engine_ref, 0) + made
    rec.finish_step(step, "completed", finished_at=at)
