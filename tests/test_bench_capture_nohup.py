"""bench/capture.py started with SIGHUP ignored (`nohup`, as bench/scale.py's long runs are
started) keeps running when the terminal goes (SIGHUP): its own handler for SIGHUP, which ends
it as Ctrl-C does, is installed only where the signal is not ignored. Before, it replaced
nohup's SIG_IGN and a logout ended the bench."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _ignore_hangups() -> None:  # what nohup does before it execs the command
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def test_a_bench_under_nohup_outlives_a_hangup(tmp_path: Path) -> None:
    argv = [sys.executable, "bench/capture.py", "--engines", "track", "--db", "sqlite"]
    argv += ["--tasks", "200", "--rounds", "200", "--variants", "on"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    bench = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_hangups,
    )
    try:
        assert bench.stderr is not None
        for line in bench.stderr:  # measuring: past argument parsing and the handlers
            if "[sqlite] track: load" in line:
                break
        else:
            raise AssertionError(f"the bench ended first ({bench.wait()})")
        bench.send_signal(signal.SIGHUP)
        time.sleep(3)
        assert bench.poll() is None, f"a hangup ended the bench under nohup ({bench.returncode})"
    finally:
        if bench.poll() is None:
            bench.send_signal(signal.SIGTERM)
            try:
                bench.wait(timeout=60)
            except subprocess.TimeoutExpired:
                bench.kill()
                bench.wait()
