"""The plugin records through a batching Recorder: a finished job still reaches the catalog
while a long job runs (the plugin's flusher thread writes what is due), as it did when every
call was its own transaction — a run killed during the long job keeps it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from lakeline.instance import Instance
from lakeline.models import Run, Transform
from smk_testkit import write_workflow
from sqlalchemy import select

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
WAIT = 30.0  # seconds the finished job may take to show (about one: the batch is due)


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
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and process.poll() is None:
            seen = _status(instance, "fast")
            if seen == "completed":
                break
            time.sleep(0.2)
        assert not (root / "out" / "slow.txt").exists()  # `slow` was still running
    finally:
        (root / "release").touch()
        output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert seen == "completed", f"`fast` was {seen!r} in the catalog while `slow` ran"
    assert _status(instance, "slow") == "completed"
