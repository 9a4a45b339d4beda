"""What a BatchRecorder queues between flushes: files (with their plan, producer and users),
the checks it makes on them and on queued finishes, and its queued runs made unsaved again
when a flush rolls back."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.artifacts.save import Plan
    from lakeline.lineage.batching import BatchRecorder
    from lakeline.lineage.handles import Handle
    from lakeline.lineage.run_rows import Finish
    from lakeline.lineage.seen import Stat
    from lakeline.models import Artifact, Run, Transform


@dataclass
class QueuedFile:
    """A queued file: the artifact to save, its producer and the steps that used it."""

    location: str
    artifact: Artifact
    plan: Plan | None  # None: a failed flush dropped it, the next one reads the file again
    producer: Handle | None
    used_by: list[tuple[Handle, str]]
    stat: Stat | None  # when it was hashed (None: a folder)
    key: str | None  # as given


def stat_of(location: str) -> os.stat_result | None:
    """`os.stat(location)`, None when it cannot be read."""
    try:
        return os.stat(location)
    except OSError:
        return None


def mode_of(location: str) -> int | None:
    st = stat_of(location)
    return None if st is None else st.st_mode


def nul_error(change: Finish) -> bool:
    """An error text with a NUL byte: SQLite's JSON functions end the text there, so that
    finish is applied alone with bound parameters (`Finish.apply`), as the plain Recorder
    applies it; PostgreSQL refuses it at the call."""
    return bool(change.error) and "\x00" in (change.error or "")


def unsaved_runs(
    started: list[tuple[Handle, Handle]],
    replays: list[tuple[Handle, Run, Transform]] | None = None,
) -> None:
    """Runs a rolled back transaction inserted: unsaved again (no id), to be inserted anew;
    the handles of replays found in it: their queued run and transform again (the found
    records expired with the session, and are looked up anew by the next transaction)."""
    if not started and not replays:  # (every flush's first reset)
        return
    from sqlalchemy.orm import make_transient
    from sqlalchemy.orm.attributes import set_committed_value

    for handle, _ in started:
        if handle.run.id is not None:
            make_transient(handle.run)
            set_committed_value(handle.run, "id", None)
    started.clear()
    for handle, run, transform in reversed(replays or []):
        handle.run, handle.transform = run, transform
    if replays:
        replays.clear()


def requeue(
    rec: BatchRecorder,
    files: dict[str, QueuedFile],
    links: list[tuple[Handle, Artifact, str]],
    finishes: list[tuple[Handle, Finish]],
    since: float | None,
) -> None:
    """`rec._requeue`: queue a batch whose flush failed again, ahead of what was queued
    since; its files are read again at the next flush (the failed save removed its plans'
    copies)."""
    from lakeline.artifacts.store import discard

    for f in files.values():
        if f.plan is not None:
            discard(f.plan.tmp)  # the save removed it, unless it failed before its start
            f.plan = None
    rec._files = {**files, **rec._files}
    rec._links = links + rec._links
    rec._finishes = finishes + rec._finishes
    rec._since = since  # due again


def replan(rec: BatchRecorder, f: QueuedFile) -> bool:
    """`rec._replan`: read a file again (hash, copy) whose plan a failed flush dropped: False
    when it is gone or no longer the same type of entry (file or folder)."""
    from lakeline.artifacts.save import plan_file
    from lakeline.lineage.seen import file_stat

    assert rec.instance is not None
    mode = mode_of(f.location)
    if mode is None or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return False
    if stat.S_ISDIR(mode) != f.artifact._source_is_dir:
        return False
    f.stat = None if stat.S_ISDIR(mode) else file_stat(f.location)
    f.artifact.key = f.key  # derived again as at the first plan
    f.plan = plan_file(f.artifact, rec.instance)
    return True
