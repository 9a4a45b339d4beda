"""Snakemake stopped while a job still runs: the plugin is closed with the job's step open and
its output half-written. A second SIGINT to Snakemake's process alone (`kill -INT`, not a
terminal's Ctrl-C, which reaches the job too) lands while Snakemake waits for its running
jobs: Snakemake exits at once, logging no error, its incomplete marker left on the output,
and the job goes on as an orphan. The job is recorded `aborted`, its half-written output
never hashed as its product (DESIGN §7), and the workflow run `errored`: never `completed`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from smk_testkit import Step, steps, write_workflow

HELD = """
rule all:
    input: "out/slow.txt", "out/fast.txt"

rule fast:
    output: "out/fast.txt"
    shell: "echo fast > {output}"

rule slow:
    output: "out/slow.txt"
    shell: "echo partial > {output}; while [ -e hold ]; do sleep 0.2; done; echo done >> {output}"
"""
TERMINATING = "Terminating processes on user request"


def _interrupted_twice(root: Path, *args: str) -> str:
    """Run Snakemake with the plugin; once `slow` has written half its output, SIGINT
    Snakemake's process twice (the second while it waits for `slow`); then end the orphaned
    job. Returns Snakemake's output."""
    (root / "hold").touch()
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--nocolor"]
    log = root.parent / "snakemake.log"
    with (
        log.open("w") as out,
        subprocess.Popen(
            [*command, "--logger", "lakeline", *args],
            cwd=root,
            env=dict(os.environ, LAKELINE_INSTANCE="test"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the orphaned job is ended with its group
        ) as snakemake,
    ):
        try:
            _wait(lambda: _text(root / "out" / "slow.txt") == "partial\n", snakemake)
            _wait(lambda: (root / "out" / "fast.txt").exists(), snakemake)
            time.sleep(1)  # (what Snakemake logged is taken by the plugin's timer meanwhile)
            os.kill(snakemake.pid, signal.SIGINT)
            _wait(lambda: TERMINATING in log.read_text(), snakemake)
            time.sleep(1)  # Snakemake waits for `slow` now
            os.kill(snakemake.pid, signal.SIGINT)
            assert snakemake.wait(timeout=120) != 0
            assert _text(root / "out" / "slow.txt") == "partial\n"  # the job still held
        finally:
            os.killpg(snakemake.pid, signal.SIGKILL)  # the orphaned job
            snakemake.wait()
    (root / "hold").unlink()
    assert list((root / ".snakemake" / "incomplete").iterdir())  # Snakemake's marker
    return log.read_text()


def _wait(condition: object, snakemake: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while not condition():  # type: ignore[operator]
        assert snakemake.poll() is None, "Snakemake ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def test_a_job_running_when_snakemake_stops_is_aborted(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", HELD)
    output = _interrupted_twice(root)
    assert "lakeline: recorded" in output  # the plugin was closed, and recorded the run
    assert steps() == [
        Step("fast", outputs=frozenset({"out/fast.txt"})),
        Step("slow", status="aborted"),  # no output claimed
    ]
    assert ll.Artifact.filter(key="out/slow.txt").count() == 0  # never the half-written bytes
    assert ll.Run.get(engine="snakemake", parent_id__isnull=True).status == "errored"


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_a_quiet_runs_job_running_when_snakemake_stops_is_aborted(
    instance: Instance, tmp_path: Path
) -> None:
    """--quiet: no finish is logged, the plugin finds finished jobs by Snakemake's records;
    the held one has none, and its output is marked incomplete."""
    root = write_workflow(tmp_path / "wf", HELD)
    _interrupted_twice(root, "--quiet", "progress")
    assert Step("slow", status="aborted") in steps()
    assert ll.Artifact.filter(key="out/slow.txt").count() == 0
    assert ll.Run.get(engine="snakemake", parent_id__isnull=True).status == "errored"


@pytest.fixture(autouse=True)
def _no_batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
