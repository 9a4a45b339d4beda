"""The plugin records through a batching Recorder: a finished job still reaches the catalog
while a long job runs (the plugin's flusher thread writes what is due), as it did when every
call was its own transaction — a run killed during the long job keeps it."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lakeline.instance import Instance
from lakeline.models import Run, Transform
from smk_testkit import Step, ordered, run_snakemake, steps, write_workflow
from sqlalchemy import event, select

# `slow` runs until the test lets it end (the file `release` appears)
SNAKEFILE = """
rule all:
    input: "out/slow.txt"

rule fast:
    input: "data/raw.txt"
    output: "out/fast.txt"
    shell: "cp {input} {output}"

rule slow:
    input: "out/fast.txt"
    output: "out/slow.txt"
    shell: "while [ ! -e release ]; do sleep 0.1; done; cp {input} {output}"
"""
# How long the finished job may take to show once its output is there (about a second: the
# batch is written once Snakemake is quiet for 0.5 s, or within the plugin's BATCH_MS): WAIT
# seconds plus SLOWER times what Snakemake took from its start to that output, so a loaded
# machine (load 30: tens of seconds to start) waits longer. `slow` ends only once the test
# writes `release`, so the wait is never cut short; a `fast` recorded only at the end fails.
WAIT, SLOWER = 30.0, 10.0
STARTING = 600.0  # seconds Snakemake may take from its start to `fast`'s output


def _status(instance: Instance, rule: str) -> str | None:
    with instance.sessions.read() as session:
        stmt = (
            select(Run.status)
            .join(Transform, Transform.id == Run.transform_id)
            .where(Run.engine == "snakemake", Transform.key == rule)
        )
        return session.scalars(stmt).first()


def test_a_finished_job_is_recorded_while_a_long_job_runs(
    instance: Instance, tmp_path: Path
) -> None:
    root = write_workflow(tmp_path / "wf", SNAKEFILE, {"data/raw.txt": "alpha beta gamma"})
    env = {**os.environ, "LAKELINE_INSTANCE": "test"}
    env.pop("LAKELINE_CAPTURE_BATCH", None)  # the plugin's default: batched
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--nocolor"]
    process = subprocess.Popen(
        [*command, "--logger", "lakeline"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: str | None = None
    begun = time.monotonic()
    try:
        deadline, written = begun + STARTING, None
        while time.monotonic() < deadline and process.poll() is None:
            seen = _status(instance, "fast")
            if seen == "completed":
                break
            if written is None and (root / "out" / "fast.txt").exists():
                written = time.monotonic()  # `fast` ran: from now on its record is due
                deadline = written + WAIT + SLOWER * (written - begun)
            time.sleep(0.2)
        assert not (root / "out" / "slow.txt").exists()  # `slow` was still running
    finally:
        (root / "release").touch()
        output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert seen == "completed", f"`fast` was {seen!r} in the catalog while `slow` ran"
    assert _status(instance, "slow") == "completed"


MANY = """
rule all:
    input: "total.txt"

rule merge:
    input: expand("out/{i}.txt", i=range(8))
    output: "total.txt"
    shell: "cat {input} > {output}"

rule step:
    input: "data/{i}.txt"
    output: "out/{i}.txt"
    shell: "cp {input} {output}"
"""


def test_a_batch_writes_its_files_edges_and_finishes_with_the_steps(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin's files go through the batching Recorder's flush, not a transaction (and
    an INSERT or UPDATE a row) of their own: a run imported in one batch writes all its
    used-by edges in one statement, and every step's run is inserted with its finish."""
    from lakeline.lineage import batching
    from snakemake_logger_plugin_lakeline.importer import import_workflow

    files = {f"data/{i}.txt": f"sample {i}\n" for i in range(8)}
    root = write_workflow(tmp_path / "wf", MANY, files)
    run_snakemake(root, plugin=False)  # recorded from Snakemake's metadata afterwards
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
    # one batch whatever the machine's load: only the end of the import writes
    real = batching.make_recorder
    monkeypatch.setattr(batching, "make_recorder", lambda *a, **k: real(*a, **{**k, "ms": 1e9}))
    statements: Counter[str] = Counter()

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        rows = many and isinstance(params, list)  # an executemany: one statement a row
        statements[" ".join(sql.split()[:3])] += len(params) if rows else 1

    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        import_workflow(root, instance=instance, report=lambda line: None)
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
    made = [
        Step("step", frozenset({f"data/{i}.txt"}), frozenset({f"out/{i}.txt"})) for i in range(8)
    ]
    merge = Step("merge", frozenset(f"out/{i}.txt" for i in range(8)), frozenset({"total.txt"}))
    expected = [*made, merge]
    assert steps() == ordered(expected)
    assert statements["INSERT INTO run_inputs"] == 1  # 16 edges
    assert statements["UPDATE artifacts SET"] == 0  # outputs saved with their producer
    # the 9 steps started and finished in the batch: inserted finished (no UPDATE); the
    # workflow's finish its own
    assert statements["UPDATE runs SET"] == 1


@dataclass
class _Job:  # what the Writer needs of a job (writer.JobLike)
    step: Any
    finished: bool = False


def _writer(tmp_path: Path) -> tuple[Any, Any, Any]:
    """A batching Recorder (written at `flush()` only), the plugin's Writer over it (raising
    any problem) and a started workflow."""
    from lakeline.lineage.recorder import BatchRecorder
    from snakemake_logger_plugin_lakeline.writer import Writer

    def problem(job: Any, what: str, exc: BaseException) -> None:
        raise exc

    rec = BatchRecorder("snakemake", root=tmp_path, steps=100, ms=1e9)
    return rec, Writer(rec, str(tmp_path), problem), rec.start_workflow(key="p", engine_run_id="r")


def test_a_file_used_after_a_link_to_it_changed_its_ctime_is_its_own_record(
    instance: Instance, tmp_path: Path
) -> None:
    """Links to a file are one location with one record each: a job using the file, after
    Snakemake's protected() chmod through a link changed its ctime, is linked to the file's
    own record (remembered by path), not to whichever record a save finds at that place."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "data.txt").write_text("data\n")
    (tmp_path / "prot.txt").symlink_to("real/data.txt")
    rec, writer, wf = _writer(tmp_path)
    jobs = {}
    for i, rule in enumerate(("target", "prot", "link")):
        jobs[rule] = _Job(rec.start_step(wf, key=rule, kind="rule", engine_task_id=str(i)))
    writer.produce(jobs["target"], "real/data.txt")
    writer.finish(jobs["target"], "completed", None)
    writer.flush()
    writer.produce(jobs["prot"], "prot.txt")
    writer.finish(jobs["prot"], "completed", None)
    writer.flush()
    (tmp_path / "prot.txt").chmod(0o444)  # follows the link
    writer.use(jobs["link"], "real/data.txt")
    writer.finish(jobs["link"], "completed", None)
    writer.flush()
    step = jobs["link"].step
    assert step is not None
    assert [a.key for a in Run.get(id=step.run.id).inputs.all()] == ["real/data.txt"]


def test_a_file_replaced_keeping_its_size_and_mtime_is_a_new_record(
    instance: Instance, tmp_path: Path
) -> None:
    """A file this run recorded, replaced by `cp -p` with other bytes of the same size and
    the same mtime (a new ctime), is hashed again when a later job uses it, as the core's
    reuse check does: it was linked to the old record (size and mtime compared only)."""
    (tmp_path / "data.txt").write_text("old bytes\n")
    (tmp_path / "other.txt").write_text("new bytes\n")  # the same size
    rec, writer, wf = _writer(tmp_path)
    make = _Job(rec.start_step(wf, key="make", kind="rule", engine_task_id="1"))
    use = _Job(rec.start_step(wf, key="use", kind="rule", engine_task_id="2"))
    writer.produce(make, "data.txt")
    writer.finish(make, "completed", None)
    writer.flush()
    before = os.stat(tmp_path / "data.txt")
    os.utime(tmp_path / "other.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    time.sleep(0.01)  # a ctime the replacement can tell apart on a coarse clock
    subprocess.run(["cp", "-p", "other.txt", "data.txt"], cwd=tmp_path, check=True)
    after = os.stat(tmp_path / "data.txt")
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    writer.use(use, "data.txt")
    writer.finish(use, "completed", None)
    writer.flush()
    assert make.step is not None and use.step is not None
    (made,) = Run.get(id=make.step.run.id).outputs.all()
    (used,) = Run.get(id=use.step.run.id).inputs.all()
    assert used.id != made.id
    assert used.hash != made.hash  # the bytes the job read, not the ones replaced


def test_a_file_of_the_unwritten_batch_is_used_as_recorded_unless_replaced(
    instance: Instance, tmp_path: Path
) -> None:
    """A job using outputs made earlier in the same unwritten batch (Snakemake's `all` job)
    is linked to their queued records (`use_saved` of a record with no id yet); one of them
    replaced by `cp -p` since (same size and mtime, new ctime) is hashed again instead."""
    for name in ("a.txt", "b.txt", "other.txt"):
        (tmp_path / name).write_text(f"{name[0]} bytes\n")
    rec, writer, wf = _writer(tmp_path)
    make = _Job(rec.start_step(wf, key="make", kind="rule", engine_task_id="1"))
    gather = _Job(rec.start_step(wf, key="all", kind="rule", engine_task_id="2"))
    for name in ("a.txt", "b.txt"):
        writer.produce(make, name)
    writer.finish(make, "completed", None)
    before = os.stat(tmp_path / "b.txt")
    os.utime(tmp_path / "other.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    time.sleep(0.01)  # a ctime the replacement can tell apart on a coarse clock
    subprocess.run(["cp", "-p", "other.txt", "b.txt"], cwd=tmp_path, check=True)
    writer.use(gather, "a.txt", "first")
    writer.use(gather, "b.txt")
    writer.finish(gather, "completed", None)
    writer.flush()
    assert make.step is not None and gather.step is not None
    made = {a.key: a for a in Run.get(id=make.step.run.id).outputs.all()}
    used = {a.key: a for a in Run.get(id=gather.step.run.id).inputs.all()}
    assert used["a.txt"].id == made["a.txt"].id
    assert used["b.txt"].id != made["b.txt"].id
    assert used["b.txt"].hash == hashlib.sha256(b"o bytes\n").hexdigest()
    from lakeline.models import RunInput

    with instance.sessions.read() as session:
        roles = select(RunInput.role).where(RunInput.artifact_id == made["a.txt"].id)
        assert session.scalars(roles).all() == ["first"]


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("snakemake", logging.INFO, "x.py", 1, "", (), None)
    record.__dict__.update(extra)
    return record


def test_a_record_snakemake_waits_for_takes_every_record_before_it(
    instance: Instance, tmp_path: Path
) -> None:
    """Snakemake's logging thread only keeps records (the plugin's thread takes them in
    batches); a record Snakemake waits for — a temp() removal, behind the barrier — is taken
    at once with every record kept before it: the job is recorded and its output hashed
    while the file exists, and the journal holds the events in the order they came."""
    import lakeline as ll
    from snakemake_interface_logger_plugins.tests import MockOutputSettings
    from snakemake_logger_plugin_lakeline import LogHandler, LogHandlerSettings
    from snakemake_logger_plugin_lakeline.journal import journals, read

    root = write_workflow(tmp_path / "wf", "", {"data/raw.txt": "alpha", "tmp/a.txt": "made"})
    settings = LogHandlerSettings(instance="test")
    handler = LogHandler(common_settings=MockOutputSettings(), settings=settings)
    try:
        assert handler.tracker is not None
        handler.emit(
            _record(
                event="workflow_started",
                workflow_id="w-1",
                lakeline_workflow={"workdir": str(root)},
            )
        )
        handler.emit(
            _record(
                event="job_info",
                jobid=1,
                rule_name="make",
                input=["data/raw.txt"],
                output=["tmp/a.txt"],
                lakeline_job={"temp": ["tmp/a.txt"]},
            )
        )
        handler.emit(_record(event="job_finished", job_id=1))
        waited = threading.Event()
        handler.emit(_record(msg="Removing temporary output tmp/a.txt.", lakeline_done=waited))
        assert waited.is_set()
        assert handler.tracker.jobs[1].status == "completed"
        (root / "tmp" / "a.txt").unlink()  # what Snakemake does once the barrier lets it go
        (journal,) = journals(root)
        kinds = [type(event).__name__ for event in read(journal)]
        assert kinds == ["WorkflowStarted", "JobInfo", "JobFinished", "TempRemoval"]
    finally:
        handler.close()
    temp = ll.Artifact.get(key="tmp/a.txt")
    assert temp.hash == hashlib.sha256(b"made").hexdigest()  # hashed while it existed
    assert temp.kind == "transient" and temp.available is False
    assert temp.run is not None and temp.run.status == "completed"
    assert [a.key for a in temp.run.inputs] == ["data/raw.txt"]


def test_a_quiet_flush_keeps_a_step_only_started_for_its_finish(
    instance: Instance, tmp_path: Path
) -> None:
    """When Snakemake is quiet the plugin's flusher writes the batch as the batching Recorder's
    idle flush does: a finished job at once, a job only started (and named by nothing of the
    batch: no inputs) at its finish, so its run is inserted once, finished."""
    import lakeline as ll
    from lakeline.access.audit import entries
    from snakemake_interface_logger_plugins.tests import MockOutputSettings
    from snakemake_logger_plugin_lakeline import LogHandler, LogHandlerSettings

    root = write_workflow(tmp_path / "wf", "", {"data/raw.txt": "alpha", "out/a.txt": "made"})
    handler = LogHandler(common_settings=MockOutputSettings(), settings=LogHandlerSettings())
    try:
        tracker = handler.tracker
        assert tracker is not None
        started = {"workdir": str(root)}
        handler.emit(
            _record(event="workflow_started", workflow_id="w-1", lakeline_workflow=started)
        )
        made = {"input": ["data/raw.txt"], "output": ["out/a.txt"]}
        handler.emit(_record(event="job_info", jobid=1, rule_name="make", **made))
        handler.emit(_record(event="job_info", jobid=2, rule_name="wait", output=["out/b.txt"]))
        handler.emit(_record(event="job_finished", job_id=1))
        with handler._lock:
            handler._take(idle=True)  # what the flusher does once Snakemake is quiet
        waiting, done = tracker.jobs[2].step, tracker.jobs[1].step
        assert done is not None and done.run.id is not None
        assert waiting is not None and waiting.run.id is None  # kept for its finish
        (root / "out" / "b.txt").write_text("late")
        handler.emit(_record(event="job_finished", job_id=2))
    finally:
        handler.close()
    assert [e.action for e in entries(instance, uids=[waiting.run.uid])] == ["insert"]
    assert ll.Run.get(id=waiting.run.id).status == "completed"
    assert ll.Artifact.get(key="out/b.txt").run.uid == waiting.run.uid


def test_a_job_only_started_waits_the_plugins_started_ms_not_five_batch_ages(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy run's batch is due BATCH_MS after its first queued file (10 s: a flush's fixed
    cost over more jobs); a job only started, that nothing of the batch names, is written once
    Snakemake is quiet and it waited STARTED_MS, not the batching Recorder's default of
    5 x BATCH_MS (50 s)."""
    import lakeline as ll
    from snakemake_interface_logger_plugins.tests import MockOutputSettings
    from snakemake_logger_plugin_lakeline import LogHandler, LogHandlerSettings
    from snakemake_logger_plugin_lakeline import tracker as tracking

    monkeypatch.setattr(tracking, "STARTED_MS", 1000.0)  # 10 s in real runs
    root = write_workflow(tmp_path / "wf", "", {})
    handler = LogHandler(common_settings=MockOutputSettings(), settings=LogHandlerSettings())
    try:
        tracker = handler.tracker
        assert tracker is not None
        started = {"workdir": str(root)}
        handler.emit(
            _record(event="workflow_started", workflow_id="w-1", lakeline_workflow=started)
        )
        handler.emit(_record(event="job_info", jobid=1, rule_name="wait", output=["out/b.txt"]))
        with handler._lock:
            handler._take(idle=True)  # what the flusher does once Snakemake is quiet
        waiting = tracker.jobs[1].step
        assert waiting is not None and waiting.run.id is None  # kept for its finish
        assert tracker.recorder is not None and tracker.recorder.ms == tracking.BATCH_MS
        time.sleep(1.1)
        with handler._lock:
            handler._take(idle=True)
        assert waiting.run.id is not None  # written, as started
        (root / "out").mkdir()
        (root / "out" / "b.txt").write_text("late")
        handler.emit(_record(event="job_finished", job_id=1))
    finally:
        handler.close()
    assert ll.Run.get(id=waiting.run.id).status == "completed"
