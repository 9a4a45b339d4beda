"""pytest plugin: every Recorder is a BatchRecorder, to run the lineage tests with batching on:
`uv run --frozen python -m pytest -p tests.batched_recorder tests/core/test_recorder.py ...`.
`LAKELINE_TEST_BATCH_STEPS` sets the batch size (default 100). Tests that read a run's or an
artifact's id, or the catalog, before the batch is written fail by design (see the
BatchRecorder paragraph of docs/architecture.md); tests/core/test_recorder_batching.py is the
check that the lineage written is the plain Recorder's."""

from __future__ import annotations

import functools
import os

import lakeline.lineage.recorder as recorder_module
from lakeline.lineage.batching import BatchRecorder

STEPS = int(os.environ.get("LAKELINE_TEST_BATCH_STEPS", "100"))


class _Batched(BatchRecorder):
    __init__ = functools.partialmethod(BatchRecorder.__init__, steps=STEPS)  # type: ignore[assignment]


recorder_module.Recorder = _Batched  # type: ignore[misc]
