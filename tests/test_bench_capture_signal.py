"""bench/capture.py killed (SIGTERM) while it measures Prefect stops the Prefect test server it
started (a uvicorn process of its own): before, the server ran on after the bench."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_bench_stops_its_prefect_server(tmp_path: Path) -> None:
    argv = [sys.executable, "bench/capture.py", "--engines", "prefect", "--db", "sqlite"]
    argv += ["--tasks", "2000", "--rounds", "5", "--variants", "on"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    bench = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    servers: set[int] = set()
    try:
        assert bench.stderr is not None
        for line in bench.stderr:  # the server is up once an engine is measured
            if "[sqlite] prefect: load" in line:
                break
        else:
            raise AssertionError(f"the bench ended first ({bench.wait()})")
        servers = _children(bench.pid)
        assert servers, "no Prefect server process under the bench"
        bench.send_signal(signal.SIGTERM)
        code = bench.wait(timeout=120)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in servers if _alive(p)], "the Prefect server outlived the bench"
        assert code == 128 + signal.SIGTERM  # ended by its own handler, as Ctrl-C ends it
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for pid in servers:  # what this test started, if the bench left it
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
