"""Two windows between threads or signals in the Prefect hooks' batching, each opened where the
other party would act (a trace or profile function, deterministically):

- `_due` read `flow.since` twice without the lock; the flusher's thread sets it to None
  (`_flushing`) between the two reads: TypeError (float - None) in a task hook;
- the first `Ended.queue` registered its exit handler after the append: a Ctrl-C whose
  handler runs as the append returns left an end queued that nothing records at exit."""

from __future__ import annotations

import linecache
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import FrameType
from typing import Any

from lakeline_prefect import hooks


def test_due_survives_the_flusher_resetting_the_batch_between_its_reads() -> None:
    flow = hooks._Flow(settings=None, root="/nowhere")  # type: ignore[arg-type]
    flow.since = time.monotonic()  # a batch begun just now: not due
    reset: list[int] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        if event == "line" and line.lstrip().startswith("elif") and not reset:
            reset.append(frame.f_lineno)
            flow.since = None  # what the flusher's `_flushing` does, from its thread
        return local

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code is hooks._due.__code__ else None

    sys.settrace(trace)
    try:
        hooks._due(flow, None)  # type: ignore[arg-type]  # TypeError before: now - None
    finally:
        sys.settrace(None)
    assert reset, "the trace never reached _due's second test"


def test_the_first_end_queued_is_recorded_at_exit_after_a_ctrl_c_as_it_is_queued(
    tmp_path: Path,
) -> None:
    """A KeyboardInterrupt where a signal's handler runs as the queue's `append` returns
    (CPython runs it after a C call), caught by the program, which then exits: the end is
    recorded at exit (before: queued, the exit handler not registered yet, never recorded)."""
    out = tmp_path / "recorded.txt"
    script = textwrap.dedent(
        """
        import sys
        from types import SimpleNamespace
        from lakeline_prefect.ended import Ended, Finish

        def finish(entry):
            with open(sys.argv[1], "a") as out:
                out.write(entry.name + "\\n")

        ended = Ended(finish)
        step = SimpleNamespace(flow=SimpleNamespace(recorder=None))

        def interrupt(frame, event, arg):
            if (
                event == "c_return"
                and frame.f_code is Ended.queue.__code__
                and getattr(arg, "__name__", "") == "append"
            ):
                raise KeyboardInterrupt

        sys.setprofile(interrupt)
        try:
            ended.queue(Finish(step, "a", "completed", None, None, produced=["out/a"]))
        except KeyboardInterrupt:
            print("interrupted, queued:", len(ended))
        finally:
            sys.setprofile(None)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "interrupted, queued: 1" in done.stdout, (done.stdout, done.stderr)
    assert out.exists() and out.read_text() == "a\n", done.stderr
