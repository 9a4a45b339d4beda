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


# the pass over Prefect's queued task runs' ends, made by its flusher thread: timed there
ENDED = """
import json, sys, threading, time
sys.path.insert(0, "bench")
import prefect_overhead as po
from lakeline_prefect.ended import Ended, Finish

po.time_flushes()
po.time_ended()
po.time_ended()  # once: not wrapped twice


def busy(entry):  # recording one task run's end: 50 ms of CPU
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass


ended = Ended(busy)
ended.queue(Finish(None, "t", "completed", None, None))
flusher = threading.Thread(target=ended.record)
flusher.start()
flusher.join()
print(json.dumps({"cpu": po.CPU[0], "left": len(ended)}))
"""


def test_the_ends_the_prefect_flusher_records_are_timed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ENDED], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    counted = json.loads(done.stdout.splitlines()[-1])
    assert counted["left"] == 0 and 0.04 <= counted["cpu"] < 0.09  # counted once
