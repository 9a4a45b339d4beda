"""A real Ctrl-C (SIGINT to the process) while the scheduler records the queued jobs' ends
(`_record_ended`, on redun's main thread as the root job ends), in a real redun run: redun
turns the KeyboardInterrupt into its exit ("Shutting down..."), `run` records what is still
queued as it ends, and the exit writes the batch. Each job that ended is recorded once, with
its own output. Before (the pass took the queue, the interrupt lost what it took): the second
and third jobs stayed `started` and their outputs were not recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance

SCRIPT = """
import os, signal, time
from redun import File, task
from redun.config import Config
import lakeline_redun.scheduler as live
from lakeline_redun import setup_scheduler
from lakeline_redun.record import ExecutionRecorder

redun_namespace = "llc"
live.IDLE, live.BATCH_MS = 600.0, 600_000.0  # the timer records nothing: the root job's end does

@task()
def write(name: str) -> File:
    out = File(f"out/{name}.txt")
    out.write(name * 3)
    return out

@task()
def three() -> list:
    return [write(name) for name in "abc"]

finish, seen = ExecutionRecorder.finish_job, []

def interrupted(self, job, ended=None):  # Ctrl-C while the second queued end is recorded
    if ended is not None:
        seen.append(job.id)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    return finish(self, job, ended)

ExecutionRecorder.finish_job = interrupted
config = Config({"backend": {"db_uri": "sqlite:///.redun/redun.db", "automigrate": "True"}})
scheduler = setup_scheduler(config)
scheduler.load()
scheduler.run(three())
"""


def test_a_ctrl_c_while_ended_jobs_are_recorded_loses_none_and_repeats_none(
    instance: Instance, tmp_path: Path
) -> None:
    work = tmp_path / "proj"
    (work / ".redun").mkdir(parents=True)
    (work / "out").mkdir()
    script = work / "interrupted.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if k != "LAKELINE_CAPTURE_BATCH"}
    env.update(LAKELINE_INSTANCE=instance.name)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=work, env=env, capture_output=True, timeout=300
    )
    said = done.stderr.decode() + done.stdout.decode()
    assert done.returncode != 0 and "Shutting down" in said, said[-2000:]
    jobs = ll.Run.filter(engine="redun", parent_id__isnull=False)
    writes = [r for r in jobs if r.transform.key == "llc.write"]
    assert len(writes) == 3, said[-2000:]
    assert {r.status for r in writes} == {"completed"}, (
        [(r.params, r.status) for r in writes],
        said[-2000:],
    )
    for run in writes:
        assert [e["status"] for e in run.status_log] == ["started", "completed"]
    made = {a.key: a.run_id for a in ll.Artifact.filter()}
    assert sorted(made) == ["out/a.txt", "out/b.txt", "out/c.txt"], made
    assert sorted(made.values()) == sorted(r.id for r in writes)  # each its own output, once
