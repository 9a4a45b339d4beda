"""A real Ctrl-C in a real Prefect flow run: a script run in a process of its own, recording
into the test's instance through the test's Prefect server, that sends itself SIGINT where
its own body says (`ctrl_c()`). Shared by the ctrl_c and interrupted_* tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from lakeline.instance import Instance

# what every such script starts with: its imports, a task writing out/NAME, and `ctrl_c()`
HEAD = """
import os, signal, sys, time
from pathlib import Path
from lakeline_prefect import flow, flusher, hooks, task

@task
def write(name: str) -> Path:
    path = Path("out") / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(name * 3)
    return path

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the handler raises KeyboardInterrupt here
"""


@dataclass(frozen=True)
class Done:
    """How the script ended: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        return self.stdout + self.stderr


def run_script(workdir: Path, instance: Instance, body: str, *args: str) -> Done:
    """Run `HEAD` then `body` (written to workdir/interrupted.py) with `args`, in `workdir`,
    recording into `instance` through the running Prefect test server; batched, as by default
    (LAKELINE_CAPTURE_BATCH unset). Needs the `prefect_server` fixture."""
    from prefect.settings import PREFECT_API_URL

    script = workdir / "interrupted.py"
    script.write_text(HEAD + textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if k != "LAKELINE_CAPTURE_BATCH"}
    env.update(LAKELINE_INSTANCE=instance.name, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=300,
    )
    return Done(done.returncode, done.stdout.decode(), done.stderr.decode())
