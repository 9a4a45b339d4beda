"""bench/engine_profile.py charges each BatchRecorder method to the part its docstring names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

# in a child process: time_recorder() patches BatchRecorder's methods for good
SCRIPT = """
import json, sys
sys.path.insert(0, "bench")
import engine_profile as ep
from lakeline.lineage.recorder import BatchRecorder

def noop(self, *args, **kwargs):
    return None

for name in ("flush_idle", "flush_if_due", "start_step", "_flush"):
    setattr(BatchRecorder, name, noop)
ep.reset()
ep.time_recorder()
BatchRecorder.flush_idle(None)
BatchRecorder.flush_if_due(None)
BatchRecorder.start_step(None)
BatchRecorder._flush(None)  # what flush() and the due and idle flushes call
print(json.dumps({p: ep.TOTAL["entries_" + p] for p in ep.PARTS}))
"""


def test_the_timers_checks_are_wake_not_calls() -> None:
    """flush_idle / flush_if_due (the flusher's checks whether a batch is due) are `wake`; a
    Recorder call is `calls` and a flush `flush`: each call charged to one part only."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout.splitlines()[-1])
    assert entries == {"hooks": 0, "calls": 1, "flush": 1, "wake": 2}
