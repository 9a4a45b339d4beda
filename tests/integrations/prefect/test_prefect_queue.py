"""The queue of task runs' ends (`lakeline_prefect.ended`) under interruption and at exit, and
the batches the hooks and the flusher write around it: a Ctrl-C during a pass keeps the ends
not recorded yet queued, an exit during the flusher's pass writes what that pass recorded, a
flush by the flusher starts the hooks' batch anew."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import lakeline as ll
import pf_batch
import pf_ended
import pytest
from lakeline.instance import Instance
from lakeline_prefect.ended import Ended, Finish
from test_prefect_flows import ENGINE, prepare


def test_a_ctrl_c_during_a_pass_keeps_the_ends_not_recorded_queued() -> None:
    """A KeyboardInterrupt while the second of three ends is recorded: the second and third
    stay queued, first, with their outputs known as queued (before: taken from the queue and
    lost, never recorded)."""
    recorded: list[str] = []

    def finish(entry: Finish) -> None:
        if entry.name == "b" and "interrupted" not in recorded:
            recorded.append("interrupted")
            raise KeyboardInterrupt
        recorded.append(entry.name)

    ended = Ended(finish)
    for name in "abc":
        ended.queue(Finish(None, name, "completed", None, None, produced=[f"out/{name}"]))
    with pytest.raises(KeyboardInterrupt):
        ended.record()
    assert len(ended) == 2 and ended.made == {"out/b", "out/c"}
    ended.queue(Finish(None, "d", "completed", None, None, produced=["out/d"]))
    assert [s for s in ended.record()] == [None] * 3
    assert recorded == ["a", "interrupted", "b", "c", "d"]
    assert len(ended) == 0 and ended.made == set()


def test_the_outputs_of_queued_ends_are_added_to_not_copied() -> None:
    """`made` grows in place as ends are queued (before: a new frozenset each end, every
    output copied again: quadratic in a batch of 500)."""
    ended = Ended(lambda entry: None)
    made = ended.made
    for i in range(3):
        ended.queue(Finish(None, str(i), "completed", None, None, produced=[f"out/{i}"]))
    assert ended.made is made and made == {"out/0", "out/1", "out/2"}
    ended.record()
    assert ended.made == set()


def test_a_flush_by_the_flusher_starts_the_hooks_batch_anew(
    workdir: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`write` ends, `nap` sleeps 4 s: the flusher writes `write`'s end meanwhile. `nap`'s
    end then starts a new batch, written at the flow run's end with it; before, the hooks
    still dated their batch from `write`'s start and wrote `nap`'s end alone, a flush more
    (a batch's fixed cost) a long task."""
    from lakeline import checkpoints
    from lakeline_prefect import hooks

    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
    monkeypatch.setattr(hooks, "BATCH_MS", 3000.0)
    flushes: list[str] = []
    with checkpoints.at("recorder.flush", lambda: flushes.append(threading.current_thread().name)):
        pf_ended.written_then_nap(4.0)
    by_flusher = [t for t in flushes if t == "lakeline-prefect-flusher"]
    assert by_flusher, flushes  # the flusher wrote `write`'s end while `nap` ran
    assert len(flushes) - len(by_flusher) == 1, flushes  # the flow run's end only
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    assert workflow.status == "completed"
    assert {r.transform.key: r.status for r in workflow.children.all()} == {
        "write": "completed",
        "nap": "completed",
    }


def test_an_exit_during_the_flushers_pass_writes_the_ends_it_recorded(
    workdir: Path, instance: Instance, prefect_server: Path
) -> None:
    """A process that ran a flow run (the queue's exit handler registered then) exits while
    the flusher records a second flow run's ended task run: the exit waits for that pass and
    writes the batch it went into. Before, the exit found the queue empty and wrote nothing,
    the second flow run's Recorder had flushed already (its exit handler, registered later,
    ran first), and the task run stayed `started`."""
    from prefect.settings import PREFECT_API_URL

    raw, gate = prepare(workdir), workdir / "gate"
    script = workdir / "exits.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, threading, time
            from pathlib import Path
            sys.path.insert(0, {str(Path(pf_batch.__file__).parent)!r})
            import pf_batch
            from lakeline.lineage.batching import BatchRecorder
            from lakeline_prefect import flusher, hooks
            hooks.BATCH_MS = 600_000.0
            flusher.IDLE = 0.2
            raw, gate = Path({str(raw)!r}), Path({str(gate)!r})
            gate.touch()
            pf_batch.quick_then_held(raw, gate)  # a first flow run, whole
            gate.unlink()
            finish, in_pass = hooks._ENDED._finish, threading.Event()

            def slow(entry):  # the flusher's pass is under way when the process exits
                if threading.current_thread().name == "lakeline-prefect-flusher":
                    in_pass.set()
                    time.sleep(1.0)
                finish(entry)

            idle = BatchRecorder.flush_idle

            def late(self):  # the flusher's own flush, after its pass, comes too late
                time.sleep(5.0)
                idle(self)

            hooks._ENDED._finish, BatchRecorder.flush_idle = slow, late
            flow = threading.Thread(
                target=pf_batch.quick_then_held, args=(raw, gate), daemon=True
            )
            flow.start()
            print("in pass", in_pass.wait(120), flush=True)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "LAKELINE_CAPTURE_BATCH"}
    env.update(LAKELINE_INSTANCE=instance.name, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=workdir, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"in pass True" in done.stdout, done.stdout
    first, second = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).order_by("id")
    assert first.status == "completed"
    quick = {r.transform.key: r for r in second.children.all()}["quick"]
    assert quick.status == "completed", done.stderr.decode()[-2000:]
