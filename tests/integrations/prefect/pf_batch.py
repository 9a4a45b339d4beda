"""Flows for batched capture: a quick task then one held until the test lets it go, and a
flow that terminates its own process after a task completed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from lakeline_prefect import flow, task


@task
def quick(raw: Path) -> Path:
    """Writes out/quick.txt from a file."""
    out = raw.parent.parent / "out"
    out.mkdir(exist_ok=True)
    target = out / "quick.txt"
    target.write_text(raw.read_text().upper())
    return target


@task
def held(gate: Path) -> str:
    """Waits until `gate` exists (the test creates it): a long task."""
    deadline = time.monotonic() + 120
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} never appeared")
        time.sleep(0.05)
    return "let go"


@flow
def quick_then_held(raw: Path, gate: Path) -> str:
    quick(raw)
    return held(gate)


@flow
def terminated(raw: Path) -> None:
    """Runs `quick`, then the process gets SIGTERM (a scheduler stopping it)."""
    quick(raw)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)


@task(persist_result=True)
def measured(path: Path) -> int:
    """A task whose result Prefect persists: lakeline notes its cache key as it finishes."""
    return len(path.read_text())


@flow
def persisted(paths: list[Path]) -> int:
    return sum(measured(p) for p in paths)
