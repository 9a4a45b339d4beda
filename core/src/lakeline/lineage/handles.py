"""What the Recorder hands out and takes: handles of the runs it started, and files to record."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    """A file for `Recorder.save_files`: made by `producer` (a step, or None), used by steps;
    `stat`: its lstat, if the caller just took one (as `Recorder.use`'s)."""

    path: str | os.PathLike[str]
    producer: Handle | None = None
    kind: str | None = None
    key: str | None = None
    used_by: list[tuple[Handle, str]] = field(default_factory=list)
    stat: os.stat_result | None = None


def check_stat(stat: object) -> None:
    """Refuse a `stat=` that is no `os.stat_result` (a DirEntry, a tuple) at the call, with a
    TypeError naming it: not an AttributeError from deep inside, nor taken without a word."""
    if stat is not None and not isinstance(stat, os.stat_result):
        raise TypeError(
            f"stat= takes the file's os.lstat (an os.stat_result), not {type(stat).__name__}"
        )


def loaded(record: Any, name: str) -> Any:
    """`getattr(record, name)` for a column, read from the record's dict where it is there
    (~0.05 us, the ORM's read ~0.4 us); None for one a new record never had set (its id: the
    ORM's read runs the default-value events, ~1.7 us). The capture's flush reads a few per
    step."""
    values = record.__dict__
    if name in values:
        return values[name]
    if record._sa_instance_state.key is None:  # transient: the dict is all there is
        return None
    return getattr(record, name)  # loaded, expired: read it
