"""The capture benches time every batch a BatchRecorder writes, the due ones its timer writes
included: they wrap the method every write goes through (a batch written by `flush_if_due`
that the wrapper missed would leave its CPU out of lakeline's figure)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

# in a child process: time_flushes() patches BatchRecorder for good
SCRIPT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, "bench")
import lakeline as ll
import prefect_overhead as po
from lakeline.lineage.recorder import BatchRecorder

base = Path(sys.argv[1])
ll.init(storage=base / "data", name="bench-flush-timing")
po.time_flushes()
rec = BatchRecorder("bench", root=base, steps=10**6, ms=1.0)
wf = rec.start_workflow(key="wf", engine_run_id="r")
step = rec.start_step(wf, key="task", kind="task", engine_task_id="1")
(base / "out.txt").write_text("out")
rec.produce(step, base / "out.txt")
rec.finish_step(step)
time.sleep(0.01)
rec.flush_if_due()  # due by age: the timer's write
after_due = po.FLUSHES[0]
rec.finish_workflow(wf)
rec.flush()
print(json.dumps({"due": after_due, "all": po.FLUSHES[0], "cpu": po.CPU[0]}))
"""


def test_a_due_batch_written_by_the_timer_is_timed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counted = json.loads(done.stdout.splitlines()[-1])
    assert counted["due"] == 1  # the timer's batch
    assert counted["all"] >= 2 and counted["cpu"] > 0
