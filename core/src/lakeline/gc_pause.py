"""Pausing Python's cyclic garbage collector, nested across threads.

Two uses: reads that must never meet a collection (h5py through fsspec, formats/registry.py),
and bulk saves, which create thousands of long-lived objects in a burst: every 700
allocations start a collection, and the older generations' ones traverse every record made
so far (10k small files: ~10 us a file new, ~20 us a re-save, 10-20% of the CPU). The
collector runs again when the last pause ends, unless it was off before the first began. A
process forked meanwhile starts afresh: the threads whose pauses it inherited do not exist in
it, so it gets the collector as it was before them.
"""

from __future__ import annotations

import gc
import os
import threading
from contextlib import ContextDecorator

_lock = threading.Lock()
_depth = 0  # pauses under way, in any thread
_was_enabled = False  # the collector's state before the first of them


def _after_fork() -> None:
    global _lock, _depth
    _lock = threading.Lock()  # a thread of the parent may have held it
    if _depth:
        _depth = 0
        if _was_enabled:
            gc.enable()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class _Paused(ContextDecorator):
    """`gc_paused()`'s pause: a plain context manager (a generator's, made and stepped at each
    entry and exit, cost ~10k instructions more: a save, every Recorder flush, takes one). It
    keeps no state of its own (the module's counts it), so one object serves every pause, in
    any thread, nested or as a decorator."""

    def __enter__(self) -> None:
        global _depth, _was_enabled
        with _lock:
            if _depth == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


_PAUSED = _Paused()


def gc_paused() -> _Paused:
    """No automatic collection inside (explicit `gc.collect()` calls still run); a context
    manager, or a function's decorator."""
    return _PAUSED
