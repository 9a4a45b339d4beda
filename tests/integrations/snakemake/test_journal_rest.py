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
    Event,
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
