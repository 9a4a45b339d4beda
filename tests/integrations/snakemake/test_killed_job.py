"""A job killed mid-run (SIGKILL to Snakemake's process group: a node lost, an OOM kill), its
output half-written and marked incomplete in `.snakemake/incomplete`: neither the import from
`.snakemake/metadata` nor the replay of the plugin's journal records it as completed, nor its
half-written output; the job that completed before it stays recorded as it was."""

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
from smk_testkit import Step, run_snakemake, steps, write_workflow
from snakemake_logger_plugin_lakeline.importer import INCOMPLETE, import_workflow

KILLED = """
rule all:
    input: "out/slow.txt", "out/fast.txt"

rule fast:
    output: "out/fast.txt"
    shell: "echo fast > {output}"

rule slow:
    output: "out/slow.txt"
    shell: "echo partial > {output}; if [ -e hold ]; then sleep 600; fi; echo done >> {output}"
"""


def _killed_mid_slow(root: Path, *args: str) -> None:
    """Run Snakemake again with `slow` forced; SIGKILL its process group once `slow` has
    written half its output and waited 2 s (`hold` keeps it waiting)."""
    (root / "hold").touch()
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--nocolor"]
    env = dict(os.environ, LAKELINE_INSTANCE="test")
    with subprocess.Popen(
        [*command, "--forcerun", "slow", *args],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as snakemake:
        out = root / "out" / "slow.txt"
        deadline = time.monotonic() + 300
        while _text(out) != "partial\n" and snakemake.poll() is None:
            assert time.monotonic() < deadline, "slow never started"
            time.sleep(0.2)
        time.sleep(2)  # the plugin's journal (and batch) written by its timer meanwhile
        os.killpg(snakemake.pid, signal.SIGKILL)
        assert snakemake.wait(timeout=60) == -signal.SIGKILL
    (root / "hold").unlink()
    assert list((root / ".snakemake" / "incomplete").iterdir())  # Snakemake's marker


def _text(path: Path) -> str | None:
    """The file's text; None while it is not there (Snakemake deletes a forced job's output
    before the job runs)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def test_metadata_import_leaves_out_a_killed_job(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", KILLED)
    run_snakemake(root, plugin=False)
    _killed_mid_slow(root)
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == [f"lakeline: rule slow (out/slow.txt): not imported: {INCOMPLETE}"]
    assert steps() == [Step("fast", outputs=frozenset({"out/fast.txt"}))]
    assert ll.Artifact.filter(key="out/slow.txt").count() == 0  # never the half-written bytes
    run_snakemake(root, "--unlock", plugin=False)  # the kill left the folder locked
    run_snakemake(root, "--rerun-incomplete", plugin=False)  # Snakemake makes it again
    assert (root / "out" / "slow.txt").read_text() == "partial\ndone\n"
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == []
    slow = Step("slow", outputs=frozenset({"out/slow.txt"}))
    assert steps() == [Step("fast", outputs=frozenset({"out/fast.txt"})), slow]
    assert ll.Artifact.get(key="out/slow.txt").size == len("partial\ndone\n")


def test_journal_replay_records_a_killed_job_aborted(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", KILLED)
    run_snakemake(root)  # recorded live: slow, fast, all completed
    _killed_mid_slow(root, "--logger", "lakeline")
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == [] and result.metadata_jobs == 0
    first, killed = ll.Run.filter(engine="snakemake", parent_id__isnull=True).order_by("id")
    assert (first.status, killed.status) == ("completed", "errored")
    assert steps(killed.id) == [Step("slow", status="aborted")]  # no output claimed
    (done,) = ll.Artifact.filter(key="out/slow.txt")  # the first run's, as it was
    assert done.run_id == ll.Run.get(parent_id=first.id, transform__key="slow").id
    assert done.size == len("partial\ndone\n")


@pytest.fixture(autouse=True)
def _no_batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
