"""Snakemake waits for the plugin before it deletes a temp() file (live.py's barrier), so that
the file is hashed as its job's output while it exists. It waited BARRIER_TIMEOUT at most:
at load 22 the plugin's first set-up took longer, Snakemake deleted the files unrecorded,
and the job using one recorded it as a reference without kind or producer
(test_temp_outputs_deleted_by_snakemake_are_unavailable's flake: kind None). Now it waits
while the plugin makes progress (the process spends CPU), and gives up only on a plugin that
makes none (stuck on a lock or the network). Real Snakemake runs, the first set-up made slow
(busy, as under load; or asleep, as stuck) past a short BARRIER_TIMEOUT."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from smk_testkit import write_workflow

TEMP = """
rule all:
    input: "final.txt"

rule make:
    output: temp("tmp/{x}.txt")
    shell: "echo {wildcards.x} > {output}"

rule use:
    input: "tmp/a.txt", "tmp/b.txt"
    output: "final.txt"
    shell: "cat {input} > {output}"
"""

SLOW = """
import sys, time
import snakemake_logger_plugin_lakeline.live as live
import snakemake_logger_plugin_lakeline.tracker as tracker

live.BARRIER_TIMEOUT, live.BARRIER_CPU = 2.0, 0.02
set_up, how = tracker.Tracker._ensure_workflow, sys.argv.pop(1)

def slow(self):
    if self.workflow is None:  # the first set-up: 4 x BARRIER_TIMEOUT
        end = time.monotonic() + 8.0
        while time.monotonic() < end:
            if how == "stuck":
                time.sleep(0.5)
    return set_up(self)

tracker.Tracker._ensure_workflow = slow
sys.argv = ["snakemake", "--cores", "2", "--nocolor", "--logger", "lakeline"]
from snakemake.cli import main
main()
"""


def _run(root: Path, how: str) -> str:
    script = root.parent / "slow_set_up.py"
    script.write_text(SLOW)
    done = subprocess.run(
        [sys.executable, str(script), how],
        cwd=root,
        env=dict(os.environ, LAKELINE_INSTANCE="test"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not (root / "tmp").exists()  # Snakemake deleted its temp() files
    return done.stdout + done.stderr


def test_snakemake_waits_for_a_plugin_slow_at_work_before_deleting_temp_files(
    instance: Instance, tmp_path: Path
) -> None:
    said = _run(write_workflow(tmp_path / "wf", TEMP), "busy")
    assert "gone before they could be recorded" not in said, said[-3000:]
    for name in ("a", "b"):
        temp = ll.Artifact.get(key=f"tmp/{name}.txt")
        assert (temp.kind, temp.available) == ("transient", False), said[-3000:]
        assert temp.run is not None and temp.run.transform.key == "make"
    use = ll.Run.get(engine="snakemake", transform__key="use")
    assert sorted(a.key for a in use.inputs) == ["tmp/a.txt", "tmp/b.txt"]


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_snakemake_goes_on_when_the_plugin_makes_no_progress(
    instance: Instance, tmp_path: Path
) -> None:
    """A plugin that spends no CPU for BARRIER_TIMEOUT is stuck: Snakemake stops waiting
    for it (the run is not held up), and the files it deleted meanwhile are said lost."""
    said = _run(write_workflow(tmp_path / "wf", TEMP), "stuck")
    gone = re.search(r"^lakeline: files gone before they could be recorded: (.*)$", said, re.M)
    assert gone is not None, said
    assert sorted(gone.group(1).split(", ")) == ["tmp/a.txt", "tmp/b.txt"]  # in either order
    assert ll.Artifact.get(key="final.txt").available is True


@pytest.fixture(autouse=True)
def _no_batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
