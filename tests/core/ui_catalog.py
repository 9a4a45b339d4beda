"""A small catalog for the web UI's tests: a workflow with steps, hostile text everywhere."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lakeline as ll
from lakeline.lineage.recorder import Recorder

XSS = '<script>alert("x")</script>'


@dataclass
class Catalog:
    raw: ll.Artifact  # data/reads.csv, input of align
    counts: ll.Artifact  # out/counts.csv, output of align, input of summarise
    summary: ll.Artifact  # out/summary.txt
    hostile: ll.Artifact  # a key and description with <script>
    workflow: ll.Run
    align: ll.Run
    failed: ll.Run


def build(tmp_path: Path) -> Catalog:
    """Save a hostile artifact and record a three-step workflow through the Recorder."""
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "reads.csv").write_text("sample,reads\ns1,10\ns2,20\n")
    hostile_file = tmp_path / "hostile.txt"
    hostile_file.write_text(f"text with {XSS}\n")
    hostile = ll.Artifact(
        hostile_file, key=f"notes/{XSS}.txt", description=f"described as {XSS}"
    ).save()
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(
        key="toy-pipeline", engine_run_id="run-1", source_code=f"rule align: # {XSS}\n"
    )
    align = rec.start_step(
        wf,
        key="align",
        kind="rule",
        engine_task_id="1",
        params={"threads": 4, "note": XSS},
        source_code=f"def align():\n    return '{XSS}'\n",
    )
    rec.use(align, root / "data" / "reads.csv")
    (root / "out" / "counts.csv").write_text("sample,count\ns1,5\ns2,7\n")
    rec.produce(align, root / "out" / "counts.csv")
    rec.finish_step(align, "completed", exit_code=0)
    summarise = rec.start_step(wf, key="summarise", kind="rule", engine_task_id="2")
    rec.use(summarise, root / "out" / "counts.csv")
    (root / "out" / "summary.txt").write_text("12 reads counted\n")
    rec.produce(summarise, root / "out" / "summary.txt")
    rec.finish_step(summarise, "completed", exit_code=0)
    broken = rec.start_step(wf, key="plot", kind="rule", engine_task_id="3")
    rec.use(broken, root / "out" / "summary.txt")
    failed = rec.finish_step(
        broken, "errored", exit_code=1, error=f"Traceback (most recent call last):\n  {XSS}\n"
    )
    rec.finish_workflow(wf, "errored")
    get = ll.Artifact.get
    return Catalog(
        raw=get(key="data/reads.csv"),
        counts=get(key="out/counts.csv"),
        summary=get(key="out/summary.txt"),
        hostile=hostile,
        workflow=ll.Run.get(wf.run.uid),
        align=ll.Run.get(align.run.uid),
        failed=failed,
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(*options: str) -> Iterator[str]:
    """`lakeline ui` in a subprocess on a free loopback port (the current instance, from the
    environment the fixtures set); yields its base URL and stops it afterwards."""
    import httpx

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lakeline.cli", "ui", "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"lakeline ui exited: {process.stdout.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{base}/static/style.css", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
