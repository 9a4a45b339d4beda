"""What only the running Snakemake knows, taken in the thread that logs each event.

Snakemake hands records to plugins through a queue, in another thread, so by then the DAG
has moved on and temp() files may be gone. A filter on Snakemake's logger runs before the
record is queued: it adds what the event lacks (temp and directory flags, named params and
inputs, the rule's file and line, the config, the working directory). A barrier handler,
after the queue, holds Snakemake back until the plugin has recorded everything logged before:
just before it deletes a temp() file (so the file is hashed while it exists), and before it
runs a job with update() outputs (so what earlier jobs read is hashed before it changes).
With `strict`, the filter also refuses to let a job start once recording has failed: it raises
KeyboardInterrupt from Snakemake's own call that announces the job, before the job is spawned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from snakemake_logger_plugin_lakeline.events import TEMP_REMOVAL, paths, plain

BARRIER_TIMEOUT = 30.0  # seconds without the plugin's progress; then the barrier stops waiting
BARRIER_CPU = 0.1  # CPU seconds the process spends in BARRIER_TIMEOUT while the plugin works
BARRIER_MAX = 600.0  # seconds a barrier waits at most, whatever the progress
JOB_STARTS = frozenset({"job_info", "group_info"})  # logged just before a job is spawned
ANNOTATED = frozenset({"job_info", "workflow_started"})  # events the filter adds details to


def running_workflow() -> Any:
    """Snakemake's Workflow object of this process (it keeps one as a module global)."""
    module = sys.modules.get("snakemake.workflow")
    return None if module is None else getattr(module, "workflow", None)


def _removal(record: logging.LogRecord) -> bool:
    """Whether the record says Snakemake deletes a temp() file next."""
    return isinstance(record.msg, str) and record.msg.startswith(TEMP_REMOVAL)


def _piped_inputs(job: Any) -> set[Any]:
    """The inputs of `job` that another job's pipe() or service() output feeds (Snakemake >= 8),
    in one pass over its dependencies: `Job.is_pipe_or_service_input` walks them for each
    input, quadratic in Snakemake's thread for a job that gathers many jobs' outputs."""
    if getattr(job, "is_pipe_or_service_input", None) is None:
        return set()
    fed: set[Any] = set()
    for dependency, files in job.dag.dependencies.get(job, {}).items():
        piped = dependency.pipe_or_service_output
        if piped:
            fed.update(f for f in files if f in piped)
    return fed


class Barrier(logging.Handler):
    """Waits, after the record is queued, until the plugin has handled it (temp removals)."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True

    def handle(self, record: logging.LogRecord) -> bool:
        done = record.__dict__.get("lakeline_done")
        if self.enabled and isinstance(done, threading.Event) and not _waited(done):
            self.enabled = False
        return True

    def emit(self, record: logging.LogRecord) -> None:
        pass


def _waited(done: threading.Event) -> bool:
    """Wait until the plugin has handled the record, as long as it makes progress: the
    process spends CPU (Snakemake waits here; the plugin works, however slowly a loaded
    machine runs it: its first set-up took over 30 s at load 22, and the temp() files were
    deleted unrecorded). False after BARRIER_TIMEOUT without progress (the plugin stuck on a
    lock or the network: Snakemake goes on), or after BARRIER_MAX in all."""
    start, cpu = time.monotonic(), time.process_time()
    while not done.wait(BARRIER_TIMEOUT):
        now = time.process_time()
        if now - cpu < BARRIER_CPU or time.monotonic() - start >= BARRIER_MAX:
            return False
        cpu = now
    return True


class LiveHook(logging.Filter):
    """Adds live details to Snakemake's records before they are queued (never rejects one)."""

    def __init__(
        self, logger: logging.Logger, refusal: Callable[[], str | None] | None = None
    ) -> None:
        super().__init__()
        self.logger = logger
        self.refusal = refusal  # strict: why no job may start now (None: it may)
        self.barrier = Barrier()
        self._by_id: dict[int, Any] = {}
        self._rules: dict[int, tuple[Any, dict[str, Any], bool, bool]] = {}  # by id(rule)
        self._any_pipes: bool | None = None  # whether a rule has a pipe() or service() output
        self.cpu = 0.0  # CPU seconds spent in Snakemake's thread adding details

    def install(self) -> None:
        self.logger.addFilter(self)

    def remove(self) -> None:
        self.logger.removeFilter(self)
        if self.barrier in self.logger.handlers:
            self.logger.removeHandler(self.barrier)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.__dict__.get("event")  # most records carry none (no getattr's miss)
        kind = str(kind) if kind else ""
        if self.refusal is not None and kind in JOB_STARTS:
            self.refuse(self.refusal())
        if kind not in ANNOTATED and (kind or not _removal(record)):
            return True  # most records: nothing to add (Snakemake's scheduling thread)
        cpu = time.thread_time()
        with contextlib.suppress(Exception):  # details are a bonus: never disturb Snakemake
            self._annotate(record, kind)
        self.cpu += time.thread_time() - cpu
        return True

    @staticmethod
    def refuse(reason: str | None) -> None:
        """Stop Snakemake as Ctrl-C does, in the thread that is about to start a job.

        Snakemake logs a job (`printjob`) in its scheduler loop right before spawning it;
        nothing between there and the loop's `except KeyboardInterrupt` catches it, so the
        job is not spawned and the running ones are cancelled."""
        if reason is not None:
            raise KeyboardInterrupt(f"lakeline (strict): {reason}")

    def _annotate(self, record: logging.LogRecord, kind: str) -> None:
        if self.barrier not in self.logger.handlers:  # after the queue handler, installed by now
            self.logger.addHandler(self.barrier)
        if kind == "job_info":
            details = self.job_details(record.__dict__.get("jobid"))
            if details:
                record.lakeline_job = details
            if details.get("updates"):
                record.lakeline_done = threading.Event()
        elif kind == "workflow_started":
            workflow = running_workflow()
            config = None if workflow is None else plain(getattr(workflow, "config", None))
            touch = bool(getattr(workflow, "touch", False))
            record.lakeline_workflow = {
                "workdir": os.getcwd(),
                "config": config or None,
                "touch": touch,
            }
        elif not kind and _removal(record):
            record.lakeline_done = threading.Event()

    def _job(self, jobid: int) -> Any:
        if jobid not in self._by_id:
            workflow = running_workflow()
            dag = getattr(workflow, "dag", None) if workflow is not None else None
            ids = getattr(dag, "_jobid", None)
            if isinstance(ids, dict):
                self._by_id = {v: k for k, v in ids.items()}
        return self._by_id.get(jobid)

    def job_details(self, jobid: Any) -> dict[str, Any]:
        """Flags, names and source location of a job, from the DAG (empty if unavailable).

        In Snakemake's scheduling thread, before the job starts. What depends on the rule
        only is read once a rule (`_rule_plan`): its file, line and script, and whether any
        output is flagged (temp, directory, update, pipe, service: the flags `Job` takes
        from the rule's outputs) or it has params; a job of a rule with none (the common
        case) reads no output's flags and leaves Snakemake's lazy params unexpanded.
        Details left out are empty (the event's defaults)."""
        job = self._job(int(jobid))
        if job is None or getattr(job, "is_group", lambda: True)():
            return {}
        values, flagged, has_params = self._rule_plan(job.rule)
        details = dict(values)
        if flagged:
            self._flagged_outputs(job, details)
        if self._pipes_anywhere():
            piped = paths(list(_piped_inputs(job)))
            if piped:  # (outputs flagged pipe are in `details` already)
                details["pipes"] = sorted({*details.get("pipes", ()), *piped})
        input_names: dict[str, str] = {}
        for name, value in job.input.items():
            for path in paths(value if isinstance(value, list) else [value]):
                input_names.setdefault(path, name)
        if input_names:
            details["input_names"] = input_names
        if has_params:
            params = plain(job.params)
            if params:
                details["params"] = params
        return details

    @staticmethod
    def _flagged_outputs(job: Any, details: dict[str, Any]) -> None:
        """The job's temp, directory, update and pipe/service outputs into `details`: each
        output's flags read once (`is_flagged` asks the ABC of annotated strings each time)."""
        temp = getattr(job, "temp_output", ())
        flagged: dict[str, list[Any]] = {"temp": [], "directories": [], "updates": []}
        for f in job.output:
            flags = _flags(f)
            if f in temp or flags.get("temp"):
                flagged["temp"].append(f)
            if flags.get("directory"):
                flagged["directories"].append(f)
            if flags.get("update"):
                flagged["updates"].append(f)
        flagged["pipes"] = list(getattr(job, "pipe_or_service_output", ()))
        for name, files in flagged.items():
            found = paths(files)
            if found:
                details[name] = found

    def _pipes_anywhere(self) -> bool:
        """Whether a rule of the workflow has a pipe() or service() output (else no job's
        input is fed by one): read once."""
        if self._any_pipes is None:
            workflow = running_workflow()
            rules = getattr(workflow, "rules", None)
            try:
                self._any_pipes = any(
                    _flags(f).get("pipe") or _flags(f).get("service")
                    for rule in rules  # type: ignore[union-attr]
                    for f in rule.output
                )
            except Exception:  # not readable: look at every job's dependencies
                self._any_pipes = True
        return self._any_pipes

    def _rule_plan(self, rule: Any) -> tuple[dict[str, Any], bool, bool]:
        """The rule's file, line and script (the same for all its jobs), whether an output is
        flagged, whether it has params: read once a rule."""
        found = self._rules.get(id(rule))
        if found is None or found[0] is not rule:
            values: dict[str, Any] = {
                "rule_file": str(rule.snakefile),
                "rule_line": int(rule.lineno),
            }
            script = rule.script or rule.notebook
            if script:
                values["script"] = str(script)
            flags = ("temp", "directory", "update", "pipe", "service")
            try:
                flagged = any(_flags(f).get(flag) for f in rule.output for flag in flags)
                has_params = len(rule.params) > 0
            except Exception:  # not readable: every job's own
                flagged = has_params = True
            found = self._rules[id(rule)] = (rule, values, flagged, has_params)
        return found[1], found[2], found[3]


_ANNOTATED: dict[type, bool] = {}  # whether a type is an annotated string (an ABC check)


def _flags(path: Any) -> dict[str, Any]:
    """The flags of an output (`snakemake.io.is_flagged`'s: an annotated string's), or {}."""
    kind = type(path)
    annotated = _ANNOTATED.get(kind)
    if annotated is None:
        from snakemake.io import AnnotatedStringInterface  # type: ignore[import-untyped]

        annotated = _ANNOTATED[kind] = issubclass(kind, AnnotatedStringInterface)
    return path.flags if annotated else {}  # type: ignore[no-any-return]
