"""Live capture through `setup_scheduler`: same lineage as importing the database."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
import redun_flows as rf
from lakeline.instance import Instance, init
from lakeline_redun import LakelineScheduler, import_redun
from redun import File
from redun_project import Flow


def lineage() -> list[tuple[Any, ...]]:
    """Every redun run of the current instance, with its edges, by engine ids only."""
    rows = []
    for run in ll.Run.filter(engine="redun"):
        parent = run.parent.engine_ref if run.parent is not None else None
        origin = ll.Run.get(id=run.cached_from_id).engine_ref if run.cached_from_id else None
        rows.append(
            (
                run.engine_ref,
                run.transform.key,
                run.transform.kind,
                run.status,
                parent,
                origin,
                json.dumps(run.params, sort_keys=True),
                (run.error or "").splitlines()[:1],
                sorted((a.key, a.hash) for a in run.inputs.all()),
                sorted((a.key, a.hash) for a in ll.Artifact.filter(run_id=run.id)),
            )
        )
    return sorted(rows, key=repr)


def test_live_and_import_give_the_same_lineage(
    instance: Instance, flow: Flow, tmp_path: Path
) -> None:
    flow.run(rf.main(File("raw.txt")), live=True)
    flow.run(rf.main(File("raw.txt")), live=True)  # cached
    with pytest.raises(ValueError, match="boom"):
        flow.run(rf.main(File("raw.txt"), fail=True), live=True)
    live = lineage()
    assert len([r for r in live if r[4] is None]) == 3  # three workflow runs
    assert {r[3] for r in live} == {"completed", "cached", "errored"}
    assert all(r[3] != "started" for r in live)

    init(storage=tmp_path / "other", name="other")  # a second, empty instance
    assert ll.Run.filter(engine="redun").count() == 0
    import_redun(str(flow.db))
    assert lineage() == live


def test_live_records_while_running(instance: Instance, flow: Flow) -> None:
    flow.run(rf.main(File("raw.txt")), live=True)
    report = ll.Artifact.get(key="out/report.txt")
    assert report.run.transform.key == "llt.report" and report.run.status == "completed"
    assert ll.Artifact.get(key="out/total.txt").load() == "8"
    before = ll.Run.filter(engine="redun").count()
    import_redun(str(flow.db))  # importing after a live capture changes nothing
    assert ll.Run.filter(engine="redun").count() == before


def test_setup_scheduler_from_redun_ini(instance: Instance, flow: Flow) -> None:
    from redun.cli import setup_scheduler

    (flow.root / ".redun" / "redun.ini").write_text(
        "[backend]\n"
        f"db_uri = {flow.db_uri}\n"
        "[scheduler]\n"
        "setup_scheduler = lakeline_redun::setup_scheduler\n"
    )
    scheduler = setup_scheduler(config_dir=str(flow.root / ".redun"), migrate=True)
    assert isinstance(scheduler, LakelineScheduler)


WAIT, SLOWER = 30.0, 10.0  # see test_a_finished_job_is_recorded_while_a_long_job_runs
STARTING = 600.0  # seconds redun may take from its start to llt.quick's output


def test_a_finished_job_is_recorded_while_a_long_job_runs(
    instance: Instance, flow: Flow, tmp_path: Path
) -> None:
    """Batched capture: a finished job reaches the catalog while a long job runs (a timer
    writes the due batch), as with a transaction per call; a killed run keeps it."""
    release = tmp_path / "release"
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            expr = rf.quick_then_held(File("raw.txt"), str(release))
            outcome["value"] = flow.run(expr, live=True)
        except BaseException as exc:
            outcome["error"] = exc

    def status() -> str | None:
        runs = [r for r in ll.Run.filter(engine="redun") if r.transform.key == "llt.quick"]
        return runs[0].status if runs else None

    worker = threading.Thread(target=run)
    begun = time.monotonic()
    worker.start()
    seen: str | None = None
    try:
        # `llt.quick` shows about a second after its end (the timer writes what ended once
        # redun is idle for 0.5 s, or within BATCH_MS): WAIT seconds plus SLOWER times what
        # redun took from its start to quick's output, so a loaded machine waits longer;
        # `llt.held` ends only once `release` is written, so the wait is never cut short
        deadline, written = begun + STARTING, None
        while time.monotonic() < deadline and worker.is_alive():
            seen = status()
            if seen == "completed":
                break
            if written is None and (flow.root / "out" / "quick.txt").exists():
                written = time.monotonic()  # quick ran: from now on its record is due
                deadline = written + WAIT + SLOWER * (written - begun)
            time.sleep(0.2)
        held_ended = (flow.root / "out" / "held.txt").exists()
    finally:
        release.touch()
        worker.join(300)
    assert "error" not in outcome, outcome.get("error")
    assert not held_ended
    assert seen == "completed", f"llt.quick was {seen!r} in the catalog while llt.held ran"
    assert {r.status for r in ll.Run.filter(engine="redun")} == {"completed"}


def test_a_file_rewritten_after_the_job_that_used_it_is_not_its_input(
    instance: Instance, flow: Flow
) -> None:
    """A completed job is recorded with the others that ended in its batch, up to ~2 s after
    its end: a file it used that a later job rewrote meanwhile is left out (a warning), never
    recorded with the bytes the later job wrote (with a transaction per call it is hashed at
    the job's end)."""
    original = (flow.root / "raw.txt").read_text()
    flow.run(rf.read_then_rewrite(File("raw.txt")), live=True)
    assert (flow.root / "raw.txt").read_text() != original
    runs = {r.transform.key: r for r in ll.Run.filter(engine="redun", parent_id__isnull=False)}
    rewritten = ll.Artifact.get(run_id=runs["llt.rewrite"].id)
    assert rewritten.key == "raw.txt" and rewritten.hash is not None
    used = list(runs["llt.quick"].inputs.all())
    assert len(used) <= 1 and rewritten.hash not in {a.hash for a in used}
    assert {r.status for r in runs.values()} == {"completed"}


def test_a_completed_job_is_described_from_the_scheduler(
    instance: Instance, flow: Flow, tmp_path: Path
) -> None:
    """A completed job's arguments, result and child jobs' results are what the scheduler
    holds, and its start and end times are those redun's backend wrote as the scheduler
    saw them written: recording a job's start and end reads nothing back from redun's
    database (it read the job row at the start; at the end the job, task, call node,
    arguments, values and child jobs, ~10 queries a job, then its end time; and the
    execution's row for its command line, which is now kept as redun's backend records
    it). The runs' times are redun's, the lineage (the workflow's args too) the import's."""
    from redun.backends.db import Job as JobRow
    from redun.config import Config
    from sqlalchemy import event

    reads: dict[str, int] = {}

    def counted(method: Any) -> Any:
        def run(self: Any, job: Any, *more: Any) -> None:
            def count(*_: Any) -> None:
                reads[job.id] = reads.get(job.id, 0) + 1

            engine = self.backend.engine
            event.listen(engine, "before_cursor_execute", count)
            try:
                method(self, job, *more)
            finally:
                event.remove(engine, "before_cursor_execute", count)

        return run

    class Counting(LakelineScheduler):
        _record_start = counted(LakelineScheduler._record_start)
        _record_end = counted(LakelineScheduler._record_end)

    config = Config({"backend": {"db_uri": flow.db_uri, "automigrate": "True"}})
    cwd = os.getcwd()
    os.chdir(flow.root)
    try:
        scheduler = Counting(config=config)
        scheduler.load()
        scheduler.run(rf.main(File("raw.txt")))
    finally:
        os.chdir(cwd)
    live = lineage()
    assert len(live) == 7 and {r[3] for r in live} == {"completed"}  # main, its 5 jobs
    assert sum(reads.values()) == 0  # nothing: the execution's args as recorded, no job's
    times = {
        row.id: (row.start_time, row.end_time)
        for row in scheduler.backend.session.query(JobRow).all()
    }
    runs = ll.Run.filter(engine="redun", parent_id__isnull=False)
    assert {r.engine_ref: (r.started_at, r.finished_at) for r in runs} == times
    assert not scheduler._times and not scheduler._ends  # forgotten once recorded
    init(storage=tmp_path / "other", name="other")
    import_redun(str(flow.db))
    assert lineage() == live


def _held(scheduler: LakelineScheduler) -> dict[str, int]:
    """What the scheduler still holds per job, by kind (empty once every job is recorded)."""
    kinds = ("_times", "_ends", "_starts", "_children", "_results")
    return {k: len(getattr(scheduler, k)) for k in kinds if getattr(scheduler, k)}


def test_the_scheduler_forgets_every_job_whether_recorded_or_not(
    instance: Instance,
    flow: Flow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job's times, arguments and returned files are kept only until it ends: not after a
    workflow's root job, nor for the children of a job that failed, nor for jobs whose
    recording failed (no lakeline instance to record into: a warning each, the workflow
    runs on)."""
    from redun.config import Config

    config = Config({"backend": {"db_uri": flow.db_uri, "automigrate": "True"}})
    cwd = os.getcwd()
    os.chdir(flow.root)
    try:
        scheduler = LakelineScheduler(config=config)
        scheduler.load()
        scheduler.run(rf.main(File("raw.txt")))
        assert _held(scheduler) == {}
        with pytest.raises(ValueError, match="boom"):
            scheduler.run(rf.main(File("raw.txt"), fail=True))
        assert _held(scheduler) == {}
        assert {r.status for r in ll.Run.filter(engine="redun")} == {"completed", "errored"}
        ll.disconnect()  # nothing to record into: every job's recording fails
        monkeypatch.setenv("LAKELINE_HOME", str(tmp_path / "no-instance-here"))
        unrecorded = LakelineScheduler(config=config)
        unrecorded.load()
        (flow.root / "raw.txt").write_text("other words this time")
        assert unrecorded.run(rf.main(File("raw.txt"))).read() == "total 5\n"
    finally:
        os.chdir(cwd)
    assert _held(unrecorded) == {}
    assert any("could not record" in r.getMessage() for r in caplog.records)
