"""pytest plugin: every Recorder is a BatchRecorder (`-p tests.batched_recorder`), to run the
lineage tests with batching on. `LAKELINE_TEST_BATCH_STEPS` sets the batch size (default 100)."""

from __future__ import annotations

import functools
import os

import lakeline.lineage.recorder as recorder_module
from lakeline.lineage.batching import BatchRecorder

STEPS = int(os.environ.get("LAKELINE_TEST_BATCH_STEPS", "100"))


class _Batched(BatchRecorder):
    __init__ = functools.partialmethod(BatchRecorder.__init__, steps=STEPS)  # type: ignore[assignment]


recorder_module.Recorder = _Batched  # type: ignore[misc]
