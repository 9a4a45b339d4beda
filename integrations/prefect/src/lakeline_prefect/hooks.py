"""Prefect state hooks that record flow runs and task runs through lakeline's Recorder.

A flow run is a workflow Run of a `flow` Transform (engine ref = the flow run id); each task
run a child Run of its task's `task` Transform (ref = `<flow run id>/<task run id>`). The hooks
run inside Prefect's engine, in the task's thread and context, so `.submit()`/`.map()` work.

While a flow or task runs, its Run is lakeline's current run (`current()` of the Recorder's
module): artifacts saved or loaded with the lakeline API in its body are its outputs and inputs,
and a subflow's run is a child of the flow run (or task run) that called it.

A task run produced the files in its result that it did not receive and that were written
since it started; a file it returns but did not write is used. A value that cannot be recorded
(a URL nothing can reach, a file that cannot be read) costs that value only: it becomes a
reference (assets) or one warning, and the rest of the flow is recorded.

Task runs are recorded in batches (`make_recorder(batch=True)`; `LAKELINE_CAPTURE_BATCH=off`
records each call at once): a task's run, inputs, outputs and finish are queued and written
by the hooks every BATCH_STEPS finished tasks or BATCH_MS after the first task hook call of the
batch while the flow keeps them busy, by a timer thread once they have been idle for 0.5 s
(task runs that only started: once 5 * BATCH_MS passed since the first), and at the flow
run's end, before `flow()` returns. A task body that saves or loads with the lakeline API
reads its run: that flushes the batch first, so the run has its id. Unless strict, a task
run's end is judged in its hook and its Recorder calls made later, back to back with those
of the others that ended, just before the batch is written (`ended`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lakeline.lineage.recorder import (
    BatchRecorder,
    Handle,
    Recorder,
    current,
    current_run,
    make_recorder,
    written_since,
)
from prefect.context import FlowRunContext, TaskRunContext

from lakeline_prefect.assets import NONE, TaskAssets, asset_file, task_assets
from lakeline_prefect.ended import Ended, Finish
from lakeline_prefect.entries import LOCK as _lock
from lakeline_prefect.entries import Flow as _Flow
from lakeline_prefect.entries import RecordingFailed
from lakeline_prefect.entries import Step as _Step
from lakeline_prefect.entries import database as _database
from lakeline_prefect.entries import enter as _enter
from lakeline_prefect.entries import guarded as _guarded
from lakeline_prefect.entries import leave as _leave
from lakeline_prefect.entries import problem as _problem
from lakeline_prefect.entries import reference as _reference
from lakeline_prefect.entries import skip as _skip
from lakeline_prefect.entries import source as _source
from lakeline_prefect.files import AUDIT, exists, paths_in, remote
from lakeline_prefect.flusher import Flusher
from lakeline_prefect.settings import current_settings
from lakeline_prefect.states import at, began, outcome, resolved, result

__all__ = [
    "ENGINE",
    "RecordingFailed",
    "flow_finished",
    "flow_running",
    "task_finished",
    "task_running",
]

META = "@prefect"  # params entry for Prefect's own ids; no Python parameter can be named so
BATCH_STEPS = 500  # finished task runs in a batch at most
BATCH_MS = 2000.0  # age of a batch at most while the hooks are busy (idle: flusher.IDLE)

ENGINE = "prefect"
log = logging.getLogger("lakeline.prefect")

if TYPE_CHECKING:
    from lakeline import Run


_flows: dict[UUID, _Flow] = {}
_kept: dict[int, Recorder] = {}  # of flow runs whose end was interrupted, until it is written
_steps: dict[UUID, _Step] = {}


def _running() -> list[tuple[Recorder | None, float]]:
    """(recorder, its last task hook call) of each flow run being recorded."""
    with _lock:
        return [(f.recorder, f.touched) for f in _flows.values()]


def _flushing(recorder: Any) -> None:
    """The flusher writes `recorder`'s batch: its flow runs' next batch starts at the next
    task hook call (`_due`), as after a hook's flush."""
    with _lock:
        for flow in _flows.values():
            if flow.recorder is recorder:
                flow.since = None


_flusher = Flusher(_running, _lock, lambda: _ENDED.record(), _flushing)


def _written(flow: _Flow, handle: Handle) -> Run:
    """A task run whose start is queued, written: its body reads it (a save or a load with
    the lakeline API needs its id; what it loads may be a queued task run's output)."""
    recorder = flow.recorder
    if isinstance(recorder, BatchRecorder):
        _write(flow, recorder.flush)
    return handle.run


def _write(flow: _Flow, flush: Callable[[], None]) -> None:
    """The task runs that ended recorded (`ended`), then `flush` of the flow's batch."""
    flow.since = None
    try:
        with AUDIT.quiet():
            _ENDED.record()
            flush()
    except Exception as exc:
        _problem(flow, "a batch of task runs", exc)


def _due(flow: _Flow, recorder: Recorder) -> None:
    """A task hook's call: write the batch if it is due (BATCH_STEPS task runs queued, or
    BATCH_MS since the batch's first task hook call); the Recorder writes none by age on a
    call, so that the task runs that ended are recorded first."""
    now, since = time.monotonic(), flow.since  # read once: the flusher's thread resets it
    if since is None:
        flow.since = now
    elif (now - since) * 1000 >= BATCH_MS or len(_ENDED) >= BATCH_STEPS:
        assert isinstance(recorder, BatchRecorder)
        _write(flow, recorder.flush_idle)  # started task runs alone wait for their end


# -- flows ------------------------------------------------------------------------------------


def flow_running(flow: Any, flow_run: Any, state: Any) -> None:
    """`on_running` hook of a flow: record its workflow run and make it the current run."""
    _start_flow(flow, flow_run, state, enter=True)


def _start_flow(flow: Any, flow_run: Any, state: Any, *, enter: bool) -> None:
    with _lock:
        if flow_run.id in _flows:
            return
        settings = current_settings()
        entry = _Flow(
            settings, os.path.abspath(settings.root or os.getcwd()), started=began(at(state))
        )
        _flows[flow_run.id] = entry
    if not settings.enabled:
        return
    try:
        with AUDIT.quiet():
            recorder = make_recorder(
                ENGINE,
                batch=True,
                steps=BATCH_STEPS,
                ms=BATCH_MS,
                root=entry.root,
                upload=settings.upload,
            )
            if isinstance(recorder, BatchRecorder) and not settings.strict:
                recorder.flush_on_calls = False  # batches due by age: `_due`, ends first
                entry.queued = True  # its task runs' ends recorded later (`ended`)
            parameters = dict(flow_run.parameters or {})
            entry.handle = recorder.start_workflow(
                key=flow.name,
                engine_run_id=str(flow_run.id),
                source_code=_source(flow.fn),
                reference=_reference(flow.fn),
                params={**parameters, META: {"flow_run_name": flow_run.name}},
                kind="flow",
                description=flow.description,
                started_at=at(state),
                parent=current_run(),  # a subflow: the flow or task run that called it
            )
            for name, value in parameters.items():
                _inputs(entry, recorder, entry.handle, name, value, entry.used, entry.pending)
            entry.recorder = recorder
        if isinstance(recorder, BatchRecorder):
            _flusher.start()
        if enter:
            entry.current = _enter(current(entry.handle))
    except Exception as exc:
        _problem(entry, f"flow run {flow_run.name!r}", exc)


def flow_finished(flow: Any, flow_run: Any, state: Any) -> None:
    """Final-state hook of a flow: finish its workflow run."""
    with _lock:
        entry = _flows.pop(flow_run.id, None)
        for task_run_id in [k for k, s in _steps.items() if s.flow is entry]:
            del _steps[task_run_id]
    if entry is None:
        return
    _leave(entry)
    if entry.recorder is None or entry.handle is None:
        return
    status, error = outcome(state)
    try:
        with AUDIT.quiet():
            _ENDED.record()  # its task runs' ends, before its own
            if status == "completed":  # made by the flow body unless a task run made them
                recorder, handle = entry.recorder, entry.handle
                made, returned = _outputs(entry, result(state), entry.used, entry.pending)
                for path in made:
                    if path not in entry.produced:
                        _guarded(entry, path, partial(recorder.produce, handle, path))
                for path in returned:
                    _guarded(entry, path, partial(recorder.use, handle, path, role="returned"))
            entry.recorder.finish_workflow(entry.handle, status, finished_at=at(state), error=error)
    except Exception as exc:
        _problem(entry, f"flow run {flow_run.name!r}", exc)
    except RecordingFailed:
        raise
    except BaseException as exc:  # a Ctrl-C: the run says so, then the interrupt goes on
        _interrupted(entry, flow_run.name, state, exc)
        raise
    if _kept:
        _let_go()


def _interrupted(entry: _Flow, name: str, state: Any, exc: BaseException) -> None:
    """An interrupt (a Ctrl-C) while a flow run's end was recorded (Prefect swallows it, the
    run's state being final): its run is written as ended, `aborted` (or errored, if the flow
    failed) with what interrupted what; never left `started`. The ends of its task runs not
    recorded yet stay queued (`ended`: recorded at exit, or by the next pass). A finish the
    batch held when its write was interrupted (the batch is kept) is written as it was: all
    it followed was recorded. Whether the finish was written is read in the catalog, not
    told by the hook: the interrupt may land after the hook chose to finish, before the
    Recorder queued the finish. The Recorder is kept (its exit handler writes what it holds
    after a second interrupt) until what it holds is written (`_let_go`)."""
    recorder, handle = entry.recorder, entry.handle
    assert recorder is not None and handle is not None
    with _lock:
        _kept[id(recorder)] = recorder
    try:
        with AUDIT.quiet():
            if isinstance(recorder, BatchRecorder):
                recorder.flush()  # what it holds, its finish too if queued, as it was
            if not _finished(recorder, handle):  # else written as queued: all it followed too
                status, error = outcome(state)
                said = f"{type(exc).__name__} while lakeline recorded the end of the flow run"
                said += f" (Prefect: {state.name}); what it had not recorded by then is missing"
                recorder.finish_workflow(
                    handle,
                    "errored" if status == "errored" else "aborted",
                    finished_at=at(state),
                    error=f"{said}\n{error}" if error else said,
                )
    except Exception as problem:
        _problem(entry, f"flow run {name!r} (interrupted)", problem)
    _let_go()  # (not after a second interrupt: kept, its exit handler writes what it holds)


def _finished(recorder: Recorder, handle: Handle) -> bool:
    """Whether the catalog holds the run's finish (read there: an interrupt may land between
    a finish's write and the handle's update), in the Recorder's instance (the flow may have
    connected the process to another meanwhile)."""
    import lakeline

    run_id = handle.run.id
    if run_id is None:
        return False
    runs = lakeline.Run if recorder.instance is None else lakeline.Run.using(recorder.instance)
    return runs.get(id=run_id).status != "started"


def _let_go() -> None:
    """Let go of each Recorder kept for an interrupted flow run once what it holds is
    written: no task run's end waiting in `_ENDED` goes into it, and its flush went through
    (one that fails keeps it, for the next flow run's end or the exit)."""
    with _lock:
        kept = list(_kept.items())
    for key, recorder in kept:
        try:
            with AUDIT.quiet():
                if not _ENDED.settled(recorder):
                    continue
        except Exception as exc:
            log.warning("lakeline: the end of an interrupted flow run is not written yet: %s", exc)
            continue
        with _lock:
            _kept.pop(key, None)


def _flow_of(task_run: Any) -> _Flow | None:
    """The recorded flow run of a task run (started here if its flow has no hooks)."""
    flow_run_id = task_run.flow_run_id
    if flow_run_id is None:
        return None  # a task called outside any flow
    with _lock:
        entry = _flows.get(flow_run_id)
    if entry is None:
        context = FlowRunContext.get()
        if context and context.flow and context.flow_run and context.flow_run.id == flow_run_id:
            _start_flow(context.flow, context.flow_run, context.flow_run.state, enter=False)
            with _lock:
                entry = _flows.get(flow_run_id)
    return entry if entry is not None and entry.recorder is not None else None


# -- files ------------------------------------------------------------------------------------


def _inputs(
    flow: _Flow,
    recorder: Recorder,
    handle: Handle,
    name: str,
    value: Any,
    used: set[str],
    pending: list[str],
) -> None:
    """Record the paths in a parameter as inputs; those that do not exist yet are outputs
    to be (`pending`: produced if they exist when the run completes). A path that cannot be
    reached is neither (nothing tells which): one warning. An output of a task run whose end
    is queued is recorded as that run's first (`ended`)."""
    for path in paths_in(value):
        found = exists(path)
        if found is None:
            _skip(flow, path, "it cannot be reached (no filesystem, credentials or network)")
        elif not found:
            pending.append(path)
        else:
            if path in _ENDED.made:
                _ENDED.record()
            if _guarded(flow, path, partial(recorder.use, handle, path, role=name)) is not None:
                used.add(path)


def _outputs(
    flow: _Flow, result: Any, used: set[str], pending: list[str], since: float | None = None
) -> tuple[list[str], list[str]]:
    """Paths a completed run produced: those in its result that it did not use and wrote
    after `since` (default: when the flow run started), and the pending output parameters
    that exist now; and the paths it returned without writing them (used)."""
    made: list[str] = []
    returned: list[str] = []
    for path in dict.fromkeys(paths_in(result)):
        if path in used:
            continue
        # a local path is not stat'ed twice: written_since is True for one that does not exist
        found = exists(path) if remote(path) else True
        if found is None:
            _skip(flow, path, "it cannot be reached (no filesystem, credentials or network)")
        elif found and not written_since(path, flow.started if since is None else since):
            returned.append(path)
        else:
            made.append(path)
    made += [p for p in pending if exists(p)]
    return list(dict.fromkeys(made)), returned


# -- tasks ------------------------------------------------------------------------------------


def _upstream(task_run: Any) -> dict[str, list[str]]:
    """Upstream task runs (lakeline run uids) per parameter, from Prefect's task_inputs."""
    links: dict[str, list[str]] = {}
    for name, inputs in (task_run.task_inputs or {}).items():
        for item in inputs:
            if getattr(item, "input_type", None) != "task_run":
                continue
            with _lock:
                step = _steps.get(item.id)
            if step is not None and step.handle.uid not in links.get(name, []):
                links.setdefault(name, []).append(step.handle.uid)
    return links


def task_running(task: Any, task_run: Any, state: Any) -> None:
    """`on_running` hook of a task (each attempt): start its step run, record its inputs."""
    flow = _flow_of(task_run)
    if flow is None or flow.recorder is None or flow.handle is None:
        return
    flow.touched = time.monotonic()
    recorder = flow.recorder
    with _lock:
        step = _steps.get(task_run.id)
    try:
        with AUDIT.quiet():
            when = at(state)
            if step is not None:  # Prefect retries the task: a new attempt of the same run
                if task_run.run_count > step.attempts:
                    step.attempts = task_run.run_count
                    _ENDED.record()  # a note flushes the batch: those that ended in it
                    recorder.note_attempt(step.handle, step.attempts, at=when)
                return
            started = began(when)
            context = TaskRunContext.get()
            params = resolved(dict(context.parameters if context else {}))
            meta: dict[str, Any] = {"task_run_id": str(task_run.id), "task_key": task.task_key}
            upstream = _upstream(task_run)
            if upstream:
                meta["upstream"] = upstream
            handle = recorder.start_step(
                flow.handle,
                key=task.name,
                kind="task",
                engine_task_id=str(task_run.id),
                params={**params, META: meta},
                source_code=_source(task.fn),
                reference=task.task_key,
                started_at=when,
            )
            step = _Step(
                handle,
                flow,
                started=started,
                attempts=max(1, task_run.run_count),
                persisted=bool(context and context.persist_result),
            )
            with _lock:
                _steps[task_run.id] = step
            step.current = _enter(current(handle, partial(_written, flow, handle)))
            for name, value in params.items():
                _inputs(flow, recorder, handle, name, value, step.used, step.pending)
        if flow.settings.audit:
            AUDIT.watch(task_run.id, flow.root)
    except Exception as exc:
        _problem(flow, f"task run {task_run.name!r}", exc)
    if flow.queued and flow.recorder is not None:
        _due(flow, recorder)


def task_finished(task: Any, task_run: Any, state: Any) -> None:
    """`on_completion`/`on_failure` hook of a task: judge what its end tells (its status,
    which files it wrote, opened, each file's state) and record its outputs and final status
    now, or queue them to be recorded with the others that ended (`ended`)."""
    with _lock:
        step = _steps.get(task_run.id)
    if step is None:
        return
    _leave(step)
    opened = AUDIT.collect(task_run.id)
    flow = step.flow
    recorder = flow.recorder
    if recorder is None:
        return
    flow.touched = time.monotonic()
    status, error = outcome(state)
    try:
        assets = task_assets(task, task_run)
        with AUDIT.quiet():
            storage_key = getattr(getattr(state.data, "metadata", None), "storage_key", None)
            end = Finish(step, task_run.name, status, at(state), error)
            if status == "cached" and storage_key:
                end.cache = (task.name, str(storage_key))
            returned: list[str] = []
            if status == "completed":
                end.produced, returned = _outputs(
                    flow, result(state), step.used, step.pending, step.started
                )
                end.produced += [p for p in opened.written if p not in end.produced]
            for path in [*returned, *opened.read]:
                if path not in step.used and path not in end.produced:
                    step.used.add(path)
                    end.used.append((path, "returned" if path in returned else "opened"))
            if status == "completed" and storage_key and step.persisted:
                end.meta["cache_key"] = str(storage_key)
            if flow.queued and not assets and end.judged():
                end.produced = list(dict.fromkeys(end.produced))
                with _lock:
                    flow.produced.update(end.produced)
                _ENDED.queue(end)  # recorded with the others, just before the batch's write
            else:
                _ENDED.record()  # those that ended before it first
                _finish(end, assets)
    except Exception as exc:
        _problem(flow, f"task run {task_run.name!r}", exc)
    if flow.queued and flow.recorder is not None:
        _due(flow, recorder)


def _finish(end: Finish, assets: TaskAssets = NONE) -> None:
    """Record a task run's end: the files it used and produced (those unchanged since, when
    it is recorded later), its assets, metadata and final status."""
    step = end.step
    flow, handle = step.flow, step.handle
    recorder = flow.recorder
    if recorder is None:  # the flow run's recording stopped meanwhile
        return
    try:
        with AUDIT.quiet():
            cached_from = None
            if end.cache is not None:
                cached_from = recorder.find_step(end.cache[0], META, "cache_key", end.cache[1])
            for path, role in end.used:
                if not end.changed(path):
                    _guarded(flow, path, partial(recorder.use, handle, path, role=role))
            produced = [p for p in end.produced if not end.changed(p)]
            if assets:
                _assets(step, assets, end.status == "completed", produced)
            produced = list(dict.fromkeys(produced))
            with _lock:
                flow.produced.update(produced)
            meta = dict(end.meta)
            if assets:
                meta = {"assets": assets.summary(), **meta}
            if meta:
                recorder.annotate(handle, META, **meta)
            finish = partial(
                recorder.finish_step,
                handle,
                end.status,
                finished_at=end.finished_at,
                error=end.error,
                cached_from=cached_from,
            )
            try:  # outputs saved in the finish's transaction
                finish(outputs=produced)
            except Exception as exc:
                if _database(exc) or not produced:
                    raise
                for path in produced:  # one by one: a file that cannot be saved costs itself only
                    _guarded(flow, path, partial(recorder.produce, handle, path))
                finish()
    except Exception as exc:
        _problem(flow, f"task run {end.name!r}", exc)


_ENDED: Ended = Ended(_finish, lambda: [r for r, _ in _running()])  # recorded later


def _assets(step: _Step, assets: TaskAssets, completed: bool, produced: list[str]) -> None:
    """Record a task run's assets: files are read and hashed (materialized ones added to
    `produced`); tables, and files that cannot be reached, are references by location."""
    recorder = step.flow.recorder
    assert recorder is not None
    handle = step.handle
    for key in assets.referenced:
        location = asset_file(key, step.flow.root)
        if location is not None and location in step.used:
            continue
        if location is not None and exists(location):
            made = _guarded(step.flow, key, partial(recorder.use, handle, location, role="asset"))
            if made is not None:
                continue
        recorder.reference(handle, location or key, role="asset")
    if not completed:
        return
    for key in assets.materialized:
        location = asset_file(key, step.flow.root)
        if location is not None and exists(location):
            produced.append(location)
        else:
            recorder.reference(handle, location or key, output=True)
