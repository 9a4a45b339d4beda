"""A Ctrl-C the moment `Ended.record` has taken the queue, before it records the first end:
CPython runs a signal's handler after a C call returns, here the queue lock's `__exit__`. The
ends taken are queued again (before: taken outside the `try` that queues them again: lost, none
recorded). The interrupt is raised where the handler would run, by a profile function."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import pytest
from lakeline_prefect.ended import Ended, Finish


def test_a_ctrl_c_as_the_queue_is_taken_loses_no_end() -> None:
    recorded: list[str] = []
    ended = Ended(lambda entry: recorded.append(entry.name))
    for name in "abc":
        ended.queue(Finish(None, name, "completed", None, None, produced=[f"out/{name}"]))
    fired: list[str] = []

    def interrupt(frame: FrameType, event: str, arg: Any) -> None:
        if (
            not fired
            and event == "c_return"
            and frame.f_code is Ended.record.__code__
            and getattr(arg, "__name__", "") == "__exit__"
            and not ended._queue  # the queue just taken, its lock released
        ):
            fired.append("interrupted")
            raise KeyboardInterrupt

    sys.setprofile(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            ended.record()
    finally:
        sys.setprofile(None)
    assert fired and recorded == []
    assert len(ended) == 3 and ended.made == {"out/a", "out/b", "out/c"}
    ended.record()
    assert recorded == ["a", "b", "c"] and len(ended) == 0
