"""Writes a run's files in batches through the Recorder: `Recorder.save_files` (one bulk
save and the used-by edges in its transaction) and `Recorder.link_many` (edges to artifacts
already recorded).

A batching Recorder (the default) batches itself: then every file, edge and finish goes
straight to it (hashed when reported, written at its flush with the steps, one statement per
kind of row), and this layer only keeps the temp() files to mark gone.

The Recorder's `produce`/`use` record one file per transaction, which costs more than a small
Snakemake job takes to run. Files inside the workflow folder that exist are therefore
collected and written together when the batch is due: after BATCH_AGE seconds, at
BATCH_FILES files, before Snakemake deletes a temp() file or runs a job that rewrites a file
in place, and at the end. A step is finished only after its files are written. Files that
cannot be batched (gone, outside the workflow folder) and every file of a batch that failed
go through `produce`/`use` one by one. A file this run already recorded and that has not
changed since is linked to its artifact without hashing it again.
"""

from __future__ import annotations

import functools
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from snakemake_logger_plugin_lakeline.journal import joined, stat_of

if TYPE_CHECKING:
    from lakeline import Artifact
    from lakeline.lineage.recorder import Handle, Recorder

BATCH_AGE = 1.0  # seconds a recorded event may wait for its batch
BATCH_FILES = 500


def _stat(location: str) -> os.stat_result | None:
    try:
        return os.stat(location)
    except OSError:
        return None


def _not_data(st: os.stat_result | None) -> bool:
    return st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


def not_data(location: str) -> bool:
    """Whether the path is a FIFO, socket or device (a pipe() output, say): never opened,
    as reading one blocks until someone writes to it."""
    return _not_data(_stat(location))


def _identity(location: str, st: os.stat_result | None) -> tuple[int, ...] | None:
    """`stat_of` (size and mtime; a folder's summed) with the entry's inode, mode and ctime,
    from `st`, the entry's stat: what `_same` compares to tell a file is still the one
    recorded (None: it is gone)."""
    if st is None:
        return None
    found = stat_of(location) if stat.S_ISDIR(st.st_mode) else [st.st_size, st.st_mtime_ns]
    return None if found is None else (*found, st.st_ino, st.st_mode, st.st_ctime_ns)


def _same(now: tuple[int, ...] | None, then: tuple[int, ...]) -> bool:
    """Whether a file is still the one recorded: the same size, mtime and inode, and the same
    ctime unless its mode changed. A file replaced keeping its size and mtime (`cp -p`, a
    tool restoring the mtime) has a new ctime, as in the core's reuse check; protected()'s
    chmod (through a link too) changes the ctime as well, but with the mode: that file keeps
    its record, not hashed again (links to it share its place: the save picks the record
    keyed by the place, test_a_file_used_after_a_link_to_it_changed_its_ctime_is_its_own_record)."""
    if now is None or now[:-2] != then[:-2]:
        return False
    return now[-1] == then[-1] or now[-2] != then[-2]


class JobLike(Protocol):
    """What the writer needs of a job: its step, and a flag it sets when the step ended."""

    step: Handle | None
    finished: bool


Problem = Callable[[Any, str, BaseException], None]


def is_fatal(exc: BaseException) -> bool:
    """Whether the problem stops all recording (the catalog is unusable), not just one file."""
    from lakeline.errors import (
        DatabaseError,
        InstanceNotFound,
        NotConnected,
        SchemaOutOfDate,
    )
    from sqlalchemy.exc import DBAPIError

    fatal = (DatabaseError, InstanceNotFound, NotConnected, SchemaOutOfDate, DBAPIError)
    return isinstance(exc, fatal)


@dataclass
class Pending:
    """A file waiting for the next batch; `producer` is None for a file only used."""

    location: str
    kind: str | None = None
    key: str | None = None
    producer: JobLike | None = None
    users: list[tuple[JobLike, str]] = field(default_factory=list)


@dataclass
class Finish:
    job: JobLike
    status: str
    at: datetime | None
    exit_code: int | None
    error: str | None


@dataclass
class Writer:
    """Batches a run's file records; steps start and finish through the Recorder."""

    recorder: Recorder
    workdir: str
    problem: Problem
    _known: dict[str, tuple[tuple[int, ...], Artifact]] = field(default_factory=dict)
    _files: dict[str, Pending] = field(default_factory=dict)
    _links: list[tuple[JobLike, Artifact, str]] = field(default_factory=list)
    _finishes: list[Finish] = field(default_factory=list)
    _removed: set[str] = field(default_factory=set)  # temp() files Snakemake deletes
    _since: float | None = None

    # -- what the tracker asks for --------------------------------------------------------------

    @functools.cached_property
    def queued(self) -> bool:
        """Whether the Recorder batches itself (a BatchRecorder)."""
        from lakeline.lineage.recorder import BatchRecorder

        return isinstance(self.recorder, BatchRecorder)

    def use(
        self, job: JobLike, path: str, role: str = "", st: os.stat_result | None = None
    ) -> None:
        """`job` used the file `path` (relative to the workflow folder, or absolute); `st`:
        its stat, if the caller took one for this event with lstat (`journal.Seen`: the entry
        is no symlink)."""
        if job.step is None:
            return
        location = joined(self.workdir, path)
        linked = st is None  # whether the entry itself may be a symlink (key_of looks)
        st = _stat(location) if st is None else st  # one stat: what it is, what is recorded
        if _not_data(st):
            return
        known = self._lookup(location, st, queued=self.queued)
        if self.queued:  # a file this run recorded, unchanged: linked (not hashed
            try:  # again), else queued
                if known is None or not self._use_known(job, known, role):
                    key = self.key_of(location, last=linked)
                    artifact = self.recorder.use(job.step, path, role=role, key=key, stat=st)
                    self._remember(location, artifact, st)
            except Exception as exc:
                self.problem(job, f"input {path}", exc)
            return
        if known is not None:
            self._links.append((job, known, role))
        elif location in self._files:
            self._files[location].users.append((job, role))
        elif self._batchable(location):
            key = self.key_of(location)
            self._files[location] = Pending(location, key=key, users=[(job, role)])
        else:
            try:
                artifact = self.recorder.use(job.step, path, role=role, key=self.key_of(location))
                self._remember(location, artifact)
            except Exception as exc:
                self.problem(job, f"input {path}", exc)
            return
        self._due()

    def produce(
        self, job: JobLike, path: str, kind: str | None = None, st: os.stat_result | None = None
    ) -> None:
        """`job` made the file `path` (`kind`: None, transient, log, benchmark); `st` as for
        `use`."""
        if job.step is None:
            return
        location = joined(self.workdir, path)
        linked = st is None
        st = _stat(location) if st is None else st
        if _not_data(st):
            return
        pending = self._files.get(location)
        if pending is not None and pending.producer is None:
            self.flush()  # used earlier in this batch, now rewritten: keep the two apart
        if not self.queued and self._batchable(location):
            self._files[location] = Pending(location, kind, self.key_of(location), producer=job)
            self._due()
            return
        try:
            key = self.key_of(location, last=linked)
            artifact = self.recorder.produce(job.step, path, kind=kind, key=key, stat=st)
            self._remember(location, artifact, st)
        except Exception as exc:
            self.problem(job, f"output {path}", exc)

    def finish(
        self,
        job: JobLike,
        status: str,
        at: datetime | None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> None:
        """Finish `job`'s step once its files are written."""
        self._finishes.append(Finish(job, status, at, exit_code, error))
        if self.queued:  # queued in the Recorder, after the files: written with them
            self._finish_steps()
        else:
            self._due()

    def removed(self, path: str) -> None:
        """Snakemake deletes the temp() file `path`: once it is gone, mark its record so."""
        self._removed.add(joined(self.workdir, path))
        self._due()

    def due(self) -> bool:
        """Whether the batch should be written now."""
        if self._since is None:
            return False
        return time.monotonic() - self._since >= BATCH_AGE or len(self._files) >= BATCH_FILES

    # -- batches ----------------------------------------------------------------------------------

    def _due(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    def _inside(self, location: str) -> bool:
        return location.startswith(self.workdir.rstrip("/") + "/")

    def _batchable(self, location: str) -> bool:
        return self._inside(location) and os.path.exists(location)

    def key_of(self, location: str, *, last: bool = True) -> str | None:
        """Uploaded files from outside the workflow folder are keyed by their name (files
        registered where they are get the same key: their path in their folder). A symlink
        in the workflow folder keeps its own path as key (its bytes are its target's).
        `last=False`: the entry itself is known to be no symlink (lstat'ed for this event),
        only the folders above it are looked at."""
        if not self._inside(location):
            name = os.path.basename(location.rstrip("/")) or None
            return name if self.recorder.upload else None
        base = self.workdir.rstrip("/")
        relative = location[len(base) + 1 :]
        parts = relative.split("/")
        if "" in parts or "." in parts or ".." in parts:  # not a clean path: as relpath says
            relative = os.path.relpath(location, self.workdir)
            parts = relative.split(os.sep)
        path = base  # a link below the workflow folder: checked up from there only
        if not last:
            parts = parts[:-1]
        for part in parts:  # (clean parts: joined with a "/" as os.path.join would)
            path = f"{path}/{part}"
            try:
                if stat.S_ISLNK(os.lstat(path).st_mode):
                    return relative
            except (OSError, ValueError):  # as os.path.islink: gone (or unusable) is no link
                continue
        return None

    def _lookup(
        self, location: str, st: os.stat_result | None, *, queued: bool = False
    ) -> Artifact | None:
        """The record of a file this run recorded, if unchanged since, and written (`queued`:
        or still in the batching Recorder's batch, its id set at the flush); `st`: its stat
        now."""
        known = self._known.get(location)
        if known is None or (known[1].id is None and not queued):
            return None
        return known[1] if _same(_identity(location, st), known[0]) else None

    def _use_known(self, job: JobLike, artifact: Artifact, role: str) -> bool:
        """`job` used `artifact` (the batching Recorder's `use_saved`: not located, looked up
        or hashed again); False when the Recorder no longer holds it unsaved (a failed
        flush recorded that file anew): then it is used as any file."""
        from lakeline.errors import LakelineError

        try:
            self.recorder.use_saved(job.step, artifact, role)  # type: ignore[attr-defined]
        except LakelineError:
            if artifact.id is not None:
                raise  # a saved record refused (its role): the job's problem
            return False
        return True

    def _remember(
        self, location: str, artifact: Artifact | None, st: os.stat_result | None = None
    ) -> None:
        """`artifact` records the file at `location`, as its stat `st` (taken before it was
        reported: a change since is seen as one) or, if not given, now says."""
        if artifact is None:
            return
        stat = _identity(location, _stat(location) if st is None else st)
        if stat is not None:
            self._known[location] = (stat, artifact)

    def flush(self, *, idle: bool = False) -> None:
        """Write the batch: files, then edges, then the steps that finished (`idle`: a
        batching Recorder keeps the steps only started that nothing of it names,
        `BatchRecorder.flush_idle`; a flush that must write them all is not idle).

        Raises only what stops all recording (the tracker decides) and StepsNotRecorded (the
        batch written but those steps, reported); a file that cannot be recorded is a problem
        of the jobs that made or used it.
        """
        from lakeline.errors import StepsNotRecorded
        from lakeline.lineage.recorder import FileRecord

        files, links = list(self._files.values()), self._links
        self._files, self._links, self._since = {}, [], None
        ready = [item for item in files if not not_data(item.location)]
        records = [
            FileRecord(
                item.location,
                producer=None if item.producer is None else item.producer.step,
                kind=item.kind,
                key=item.key,
                used_by=[(job.step, role) for job, role in item.users if job.step is not None],
            )
            for item in ready
        ]
        try:
            saved = self.recorder.save_files(records) if records else []
        except Exception as exc:
            if is_fatal(exc):
                raise
            for item in ready:  # find the culprit: each file on its own
                self._one_by_one(item, exc)
            saved = []
        for item, artifact in zip(ready, saved, strict=False):
            self._remember(item.location, artifact)
        self._link(links)
        self._finish_steps()
        try:
            if self.queued:
                if idle:
                    self.recorder.flush_idle()  # type: ignore[attr-defined]
                else:
                    self.recorder.flush()  # type: ignore[attr-defined]
        except StepsNotRecorded:  # the rest of the batch written: the removals too
            self._mark_removed()
            raise
        self._mark_removed()

    def _finish_steps(self) -> None:
        finishes, self._finishes = self._finishes, []
        for end in finishes:
            if end.job.step is None:
                continue
            try:
                step = end.job.step
                self.recorder.finish_step(
                    step, end.status, finished_at=end.at, exit_code=end.exit_code, error=end.error
                )
                end.job.finished = True
            except Exception as exc:
                if is_fatal(exc):
                    raise
                self.problem(end.job, "the job's end", exc)

    def _mark_removed(self) -> None:
        """temp() files Snakemake deleted: their records become unavailable (kept while the
        file still exists: Snakemake deletes it after this batch)."""
        for location in sorted(self._removed):
            if os.path.lexists(location):
                self._due()
                continue
            self._removed.discard(location)
            try:
                self.recorder.mark_gone(location)
            except Exception as exc:
                if is_fatal(exc):
                    raise
                relative = os.path.relpath(location, self.workdir)
                self.problem(None, f"temp() file {relative} (deleted)", exc)

    def _one_by_one(self, item: Pending, cause: BaseException) -> None:
        """Record one file through the Recorder (which knows gone files); else a problem."""
        relative = os.path.relpath(item.location, self.workdir)
        jobs = [(item.producer, "output")] if item.producer is not None else []
        jobs += [(job, "input") for job, _ in item.users]
        for job, what in jobs:
            if job.step is None:
                continue
            try:
                if what == "output":
                    artifact = self.recorder.produce(
                        job.step, relative, kind=item.kind, key=item.key
                    )
                else:
                    role = next(r for j, r in item.users if j is job)
                    artifact = self.recorder.use(job.step, relative, role=role, key=item.key)
                self._remember(item.location, artifact)
            except Exception as exc:
                if is_fatal(exc):
                    raise
                self.problem(job, f"{what} {relative}", exc)

    def _link(self, links: list[tuple[JobLike, Artifact, str]]) -> None:
        """The used-by edges to artifacts already recorded, in one transaction."""
        edges = [(job.step, artifact, role) for job, artifact, role in links if job.step]
        if not edges:
            return
        try:
            self.recorder.link_many(edges)
        except Exception as exc:
            if is_fatal(exc):
                raise
            for job, artifact, role in links:  # find the culprit: each edge on its own
                if job.step is None:
                    continue
                try:
                    self.recorder.link(job.step, [(artifact, role)])
                except Exception as one:
                    if is_fatal(one):
                        raise
                    self.problem(job, f"input {artifact.key or artifact.uid}", one)
