"""What the Recorder hands out and takes: handles of the runs it started, and files to record."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.models import Run, Transform


@dataclass
class Handle:
    """A run the Recorder started (or found again), with its transform."""

    run: Run
    transform: Transform
    engine_ref: str

    @property
    def uid(self) -> str:
        return self.run.uid


@dataclass
class FileRecord:
    """A file for `Recorder.save_files`: made by `producer` (a step, or None), used by steps."""

    path: str | os.PathLike[str]
    producer: Handle | None = None
    kind: str | None = None
    key: str | None = None
    used_by: list[tuple[Handle, str]] = field(default_factory=list)
