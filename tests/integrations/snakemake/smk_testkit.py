"""Helpers for the Snakemake plugin's tests: real `snakemake` runs in subprocesses, and the
recorded lineage read back as comparable values. (A plain module: test modules import it.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from lakeline.testing import ExpectedStep

Step = ExpectedStep

# a small workflow: one job splits a file, two count words, one merges (with a log)
SNAKEFILE = """
rule all:
    input: "out/total.txt"

rule split:
    input: "data/raw.txt"
    output: "out/a.txt", "out/b.txt"
    shell: "head -c 20 {input} > {output[0]}; tail -c +21 {input} > {output[1]}"

rule count:
    input: "out/{part}.txt"
    output: "out/{part}.count"
    shell: "wc -w < {input} > {output}"

rule merge:
    input: "out/a.count", "out/b.count"
    output: "out/total.txt"
    log: "logs/merge.log"
    shell: "awk '{{s += $1}} END {{print s}}' {input} > {output}; echo merged > {log}"
"""


@dataclass
class Result:
    """A finished Snakemake invocation."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def write_workflow(root: Path, snakefile: str, files: dict[str, str] | None = None) -> Path:
    """A workflow folder: its Snakefile and data files (paths relative to it)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Snakefile").write_text(textwrap.dedent(snakefile).lstrip())
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip() if "\n" in text else text)
    return root


def run_snakemake(
    workdir: Path,
    *args: str,
    cores: int = 2,
    plugin: bool = True,
    instance: str | None = "test",
    check: bool = True,
    timeout: float = 600,
    ignore_sigint: bool = False,
) -> Result:
    """Run Snakemake for real in `workdir` (with `--logger lakeline` unless `plugin` is off).

    The instance is found through $LAKELINE_HOME (set by the `lakeline_home` fixture) and
    $LAKELINE_INSTANCE. A run still going after `timeout` seconds is killed (and fails).
    `ignore_sigint` starts it with SIGINT ignored, as a non-interactive shell starts `cmd &`
    (Python then installs no Ctrl-C handler: `_thread.interrupt_main()` does nothing).
    """
    env = dict(os.environ)
    if instance is not None:
        env["LAKELINE_INSTANCE"] = instance
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--nocolor"]
    if plugin:
        command += ["--logger", "lakeline"]
    completed = subprocess.run(
        [*command, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=_ignore_sigint if ignore_sigint else None,
    )
    result = Result(completed.returncode, completed.stdout, completed.stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.output}")
    return result


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def workflow_runs() -> list[int]:
    """Ids of the recorded Snakemake workflow runs, oldest first."""
    from lakeline.instance import current
    from lakeline.models import Run
    from sqlalchemy import select

    with current().sessions.read() as session:
        stmt = (
            select(Run.id)
            .where(Run.engine == "snakemake", Run.parent_id.is_(None))
            .order_by(Run.id)
        )
        return list(session.scalars(stmt))


def steps(workflow_id: int | None = None) -> list[Step]:
    """The steps of one workflow run (default: the newest) as ExpectedStep values, sorted."""
    from lakeline.testing import recorded_steps

    return ordered(recorded_steps("snakemake", workflow_id or workflow_runs()[-1]))


def ordered(items: list[Step]) -> list[Step]:
    return sorted(items, key=lambda s: (s.key, sorted(s.inputs), sorted(s.outputs), s.status))
