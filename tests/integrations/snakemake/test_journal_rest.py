"""The journal holds every event the plugin saw, so a replay (the catalog back after a loss,
`lakeline snakemake import`) records what live recording could not: the events of a batch
after one that raised (a Ctrl-C in a flush), and Snakemake's removals of temp() files."""

from __future__ import annotations

import time
from pathlib import Path

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.instance import Instance
from smk_testkit import write_workflow
from snakemake_logger_plugin_lakeline.events import (
    DoneInfo,
    Event,
    JobError,
    JobFinished,
    JobInfo,
    TempRemoval,
    WorkflowStarted,
)
from snakemake_logger_plugin_lakeline.importer import import_workflow
from snakemake_logger_plugin_lakeline.journal import journals, read
from snakemake_logger_plugin_lakeline.tracker import Tracker


def _interrupt() -> None:
    raise KeyboardInterrupt


def _job(jobid: int, rule: str, inputs: list[str], outputs: list[str], **more: object) -> JobInfo:
    return JobInfo(jobid, rule, time.time(), inputs=inputs, outputs=outputs, **more)  # type: ignore[arg-type]


def test_events_after_one_that_raised_are_journaled_for_a_replay(
    instance: Instance, tmp_path: Path
) -> None:
    root = write_workflow(tmp_path / "wf", "", {"data/raw.txt": "alpha"})
    (root / "tmp").mkdir()
    (root / "out").mkdir()
    (root / "tmp" / "a.txt").write_text("made")
    (root / "out" / "b.txt").write_text("b")
    tracker = Tracker(instance_name="test", report=lambda _: None)
    events: list[Event] = [
        WorkflowStarted("w-1", time.time(), workdir=str(root)),
        _job(1, "make", ["data/raw.txt"], ["tmp/a.txt"], temp=["tmp/a.txt"]),
        JobFinished(1, time.time()),
        TempRemoval("tmp/a.txt", time.time()),  # its flush is interrupted
        _job(2, "use", ["data/raw.txt"], ["out/b.txt"]),
        JobFinished(2, time.time()),
    ]
    with checkpoints.at("recorder.flush", _interrupt), pytest.raises(KeyboardInterrupt):
        tracker.apply_many(events)
    (journal,) = journals(root)
    kinds = [(type(e).__name__, getattr(e, "jobid", None)) for e in read(journal)]
    assert kinds == [
        ("WorkflowStarted", None),
        ("JobInfo", 1),
        ("JobFinished", 1),
        ("TempRemoval", None),
        ("JobInfo", 2),
        ("JobFinished", 2),
    ]
    assert ll.Run.filter(engine="snakemake", engine_ref="w-1/2").count() == 0  # not applied
    (root / "tmp" / "a.txt").unlink()  # Snakemake deletes it; the process is gone
    import_workflow(root, instance=instance, report=lambda _: None)
    assert ll.Run.get(engine="snakemake", engine_ref="w-1/2").status == "completed"
    assert [a.key for a in ll.Run.get(engine="snakemake", engine_ref="w-1/2").outputs] == [
        "out/b.txt"
    ]


def test_a_temp_removal_is_journaled_and_replayed(instance: Instance, tmp_path: Path) -> None:
    """A temp() file an earlier run made (recorded, available), used and removed by this
    run, whose process died before it marked the file gone: the import of its journal marks
    it gone (before, the removal was not journaled: the catalog said it was available)."""
    root = write_workflow(tmp_path / "wf", "", {"data/raw.txt": "alpha"})
    (root / "tmp").mkdir()
    (root / "out").mkdir()
    (root / "tmp" / "a.txt").write_text("made")
    first = Tracker(instance_name="test", report=lambda _: None, journaling=False)
    first.apply_many(
        [
            WorkflowStarted("w-1", time.time(), workdir=str(root)),
            _job(1, "make", ["data/raw.txt"], ["tmp/a.txt"], temp=["tmp/a.txt"]),
            JobFinished(1, time.time()),
        ]
    )
    first.close()  # an earlier run, interrupted before the job that uses tmp/a.txt
    assert ll.Artifact.get(key="tmp/a.txt").available is True
    second = Tracker(instance_name="test", report=lambda _: None)
    (root / "out" / "b.txt").write_text("b")
    second.apply_many(
        [
            WorkflowStarted("w-2", time.time(), workdir=str(root)),
            _job(1, "use", ["tmp/a.txt"], ["out/b.txt"]),
            JobFinished(1, time.time()),
            TempRemoval("tmp/a.txt", time.time()),
        ]
    )
    (root / "tmp" / "a.txt").unlink()  # Snakemake deletes it; the process dies before a flush
    assert ll.Artifact.get(key="tmp/a.txt").available is True  # (what the catalog says)
    (journal,) = journals(root)
    assert [type(e).__name__ for e in read(journal)][-1] == "TempRemoval"
    import_workflow(root, instance=instance, report=lambda _: None)
    assert ll.Artifact.get(key="tmp/a.txt").available is False
    used = ll.Run.get(engine="snakemake", engine_ref="w-2/1").inputs
    assert [a.key for a in used] == ["tmp/a.txt"]


def test_a_completed_jobs_later_events_after_its_details_are_dropped(
    instance: Instance, tmp_path: Path
) -> None:
    """Once a job's completion is queued, the tracker keeps only its label and products
    (DoneInfo); what later events record of it is as before: the temp() file it made and
    Snakemake then deletes is marked gone, a job announced again (a retry) reuses its
    step, and a later error of it records its log."""
    root = write_workflow(tmp_path / "wf", "", {"data/raw.txt": "alpha"})
    for folder in ("tmp", "out", "logs"):
        (root / folder).mkdir()
    (root / "tmp" / "a.txt").write_text("made")
    (root / "logs" / "a.log").write_text("log of a")
    (root / "out" / "b.txt").write_text("b")
    tracker = Tracker(instance_name="test", report=lambda _: None)
    make = _job(1, "make", ["data/raw.txt"], ["tmp/a.txt"], temp=["tmp/a.txt"])
    make.logs = ["logs/a.log"]
    tracker.apply_many(
        [
            WorkflowStarted("w-1", time.time(), workdir=str(root)),
            make,
            JobFinished(1, time.time()),
            _job(2, "use", ["tmp/a.txt"], ["out/b.txt"]),
            JobFinished(2, time.time()),
        ]
    )
    assert isinstance(tracker.jobs[1].info, DoneInfo)  # its inputs, stats, flags dropped
    assert tracker.jobs[1].info.temp == ("tmp/a.txt",)  # (DoneInfo)
    tracker.apply_many([TempRemoval("tmp/a.txt", time.time())])
    (root / "tmp" / "a.txt").unlink()  # Snakemake deletes it
    (root / "out" / "b.txt").write_text("b again")
    tracker.apply_many([_job(2, "use", ["data/raw.txt"], ["out/b.txt"])])
    tracker.apply_many([JobFinished(2, time.time())])
    (root / "logs" / "a.log").write_text("log of a, failed")
    tracker.apply_many([JobError(1, "make", time.time(), error="boom", logs=["logs/a.log"])])
    assert tracker.close() == []
    assert ll.Artifact.get(key="tmp/a.txt").available is False
    assert ll.Run.filter(engine="snakemake", engine_ref="w-1/2").count() == 1  # one step
    again = ll.Run.get(engine="snakemake", engine_ref="w-1/2")
    assert again.status == "completed"
    assert sorted(a.hash == ll.Artifact.get(key="out/b.txt").hash for a in again.outputs) == [
        False,
        True,
    ]  # both versions it made
    failed = ll.Run.get(engine="snakemake", engine_ref="w-1/1")
    assert failed.status == "errored"
    logs = [a for a in failed.outputs if a.kind == "log"]
    assert [a.key for a in logs] == ["logs/a.log", "logs/a.log"]  # at its end, at its error
    assert Path(ll.Artifact.get(key="logs/a.log").path).read_text() == "log of a, failed"
