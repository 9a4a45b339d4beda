"""The Recorder's files: what a step used and produced, saved (hashed, registered in place
or uploaded) and linked to its runs, references to data lakeline holds no bytes for, and
files the engine deleted (a mixin of `Recorder`, recorder.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from stat import S_ISLNK
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from lakeline.artifacts.describe import describe_new
from lakeline.artifacts.save import save_artifacts
from lakeline.errors import LakelineError
from lakeline.lineage.handles import FileRecord, Handle, check_stat
from lakeline.lineage.records import fire
from lakeline.lineage.references import known_record
from lakeline.lineage.refusals import refused_input
from lakeline.lineage.run_rows import claim_outputs
from lakeline.lineage.usage import add_input, insert_input
from lakeline.storage.roots import normalize_root, protocol_of, resolve_existing

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from lakeline.artifacts.save import Plan
    from lakeline.instance import Instance
    from lakeline.lineage.seen import SeenFiles
    from lakeline.models import Artifact, Run

log = logging.getLogger("lakeline.recorder")


class FileRecording:
    """The Recorder's methods that record files (a mixin of `Recorder`)."""

    engine: str
    root: str | os.PathLike[str] | None
    upload: bool
    instance: Instance | None
    missing: list[str]
    _seen: SeenFiles

    def _outputs(
        self, step: Handle, outputs: Sequence[str | os.PathLike[str] | FileRecord]
    ) -> list[Artifact]:
        """Unsaved artifacts for the outputs that exist; vanished ones go through `produce`."""
        assert self.instance is not None
        for item in outputs:  # all refused before any is recorded
            if isinstance(item, FileRecord):
                check_stat(item.stat)
        batch = []
        for item in outputs:
            record = item if isinstance(item, FileRecord) else FileRecord(item)
            if record.producer not in (None, step) or record.used_by:
                raise LakelineError("outputs of a step take no other producer and no used_by")
            location = self._location(record.path)
            if protocol_of(location) == "local" and not os.path.exists(location):
                self.produce(step, record.path, key=record.key, kind=record.kind)
                continue
            if self._outside_roots(location) and not self.upload:
                self.instance.register_storage(Path(location).parent)
            batch.append(
                self._describe(
                    location, key=record.key, kind=record.kind, run=step.run, known=record.stat
                )
            )
        return batch

    def link(self, step: Handle, used: Sequence[tuple[Artifact, str]]) -> int:
        """Record that `step` used artifacts already saved (no rehash), with their roles,
        in one transaction; return how many edges are new."""
        assert self.instance is not None
        with self.instance.sessions.write() as session:
            new = [a for a, role in used if insert_input(session, step.run.id, a.id, role)]
        for artifact in new:
            fire("artifact_used", artifact=artifact, run=step.run)
        return len(new)

    def link_many(self, edges: Sequence[tuple[Handle, Artifact, str]]) -> int:
        """`link` for many steps at once: (step, artifact, role) edges in one transaction."""
        assert self.instance is not None
        with self.instance.sessions.write() as session:
            new = [(s, a) for s, a, role in edges if insert_input(session, s.run.id, a.id, role)]
        for step, artifact in new:
            fire("artifact_used", artifact=artifact, run=step.run)
        return len(new)

    def save_files(self, files: Sequence[FileRecord]) -> list[Artifact | None]:
        """Record many files in one bulk save and one transaction of edges: each is produced
        by `producer` (None: only used) and used by the steps in `used_by`. Files that are
        gone go through `produce`/`use` one by one (they may be known already)."""
        assert self.instance is not None
        for item in files:  # all refused before any is recorded
            check_stat(item.stat)
        results: list[Artifact | None] = [None] * len(files)
        batch: list[tuple[int, Artifact]] = []
        for i, item in enumerate(files):
            location = self._location(item.path)
            if protocol_of(location) == "local" and not os.path.exists(location):
                if item.producer is not None:
                    made = self.produce(item.producer, item.path, key=item.key, kind=item.kind)
                    results[i] = made
                for user, role in item.used_by:
                    results[i] = self.use(user, item.path, role=role, key=item.key)
                continue
            if self._outside_roots(location) and not self.upload:
                self.instance.register_storage(Path(location).parent)
            run = None if item.producer is None else item.producer.run
            described = self._describe(
                location, key=item.key, kind=item.kind, run=run, known=item.stat
            )
            batch.append((i, described))
        edges: list[tuple[Run, Artifact, str]] = []

        def link(session: Session, plans: Sequence[Plan]) -> None:
            for (i, _), plan in zip(batch, plans, strict=True):
                assert plan.result is not None and plan.result.id is not None
                for user, role in files[i].used_by:
                    if insert_input(session, user.run.id, plan.result.id, role):
                        edges.append((user.run, plan.result, role))

        if batch:
            save_artifacts(
                [artifact for _, artifact in batch],
                self.instance,
                also=link,
                producer_from_context=False,
            )
        for i, artifact in batch:
            results[i] = artifact
        for run, artifact, _ in edges:
            fire("artifact_used", artifact=artifact, run=run)
        return results

    def _outside_roots(self, location: str) -> bool:
        from lakeline.artifacts.locate import storage_containing

        assert self.instance is not None
        contained = storage_containing(location, self.instance, normalized=True)
        return contained is None and protocol_of(location) == "local"

    # -- files ----------------------------------------------------------------------------------

    def _location(self, path: str | os.PathLike[str]) -> str:
        text = os.fspath(path)
        if protocol_of(text) == "local" and self.root is not None and not os.path.isabs(text):
            text = os.path.join(os.fspath(self.root), text)
        return normalize_root(text)

    def _located(
        self, path: str | os.PathLike[str], known: os.stat_result | None = None
    ) -> tuple[str, os.stat_result | None]:
        """`_location(path)` and, for a local file or folder, its stat: the kernel resolves
        the path once (`resolve_existing`), where `_location` costs an lstat per folder level
        and the queue would stat it again. (location, None) when it cannot be stat'ed.
        `known`: the caller's stat of the path (`use`'s `stat`), not taken again."""
        if known is not None and known.__class__ is not os.stat_result:
            check_stat(known)  # refused before anything is queued
        text = path if path.__class__ is str else os.fspath(path)
        if "://" not in text or protocol_of(text) == "local":
            if self.root is not None and not text.startswith("/"):  # os.path.join, cheaper
                root = os.fspath(self.root)
                text = f"{root}{text}" if not root or root.endswith("/") else f"{root}/{text}"
            try:
                return resolve_existing(text, known=known)
            except OSError:  # gone, a symlink loop, ...: as the Recorder resolves it
                pass
        return self._location(path), None

    def _artifact(
        self,
        location: str,
        *,
        key: str | None,
        kind: str | None,
        run: Run | None,
        used_by: tuple[Run, str] | None = None,
        given: os.stat_result | None = None,
    ) -> tuple[Artifact | None, bool]:
        """Save (or find) the artifact for a file (None when it is gone and unknown), and
        whether a new used-by edge from `used_by` was recorded (in the same transaction);
        `given`: the caller's stat of it (`use`'s `stat`)."""
        from lakeline.artifacts.locate import storage_containing

        assert self.instance is not None
        exists = os.path.exists(location) if protocol_of(location) == "local" else True
        contained = storage_containing(location, self.instance, normalized=True)  # _location
        if not exists:
            known = known_record(contained, self.instance)
            if known is not None:
                new = used_by is not None and add_input(
                    used_by[0], known, self.instance, used_by[1]
                )
                return known, new
            self.missing.append(location)
            if used_by is None:
                log.warning("%s no longer exists: recorded as missing", location)
                return None, False
            # the step read it, its bytes are gone since: keep the edge, by location
            log.warning("%s no longer exists: its use is recorded as a reference", location)
            return self._gone_input(location, used_by, key=key, kind=kind)
        if used_by is not None and (seen := self._seen.get(location, key, contained)) is not None:
            try:  # registered by this Recorder and unchanged since: link, do not hash again
                return seen, add_input(used_by[0], seen, self.instance, used_by[1])
            except IntegrityError as exc:  # the record was deleted meanwhile: register it again
                refused_input(self.instance, exc, used_by[0])  # raises if the run is gone
                self._seen.forget(location)
        if contained is None and not self.upload and protocol_of(location) == "local":
            self.instance.register_storage(Path(location).parent)
        artifact = self._describe(location, key=key, kind=kind, run=run, known=given)
        if used_by is None:
            saved = save_artifacts([artifact], self.instance, producer_from_context=False)[0]
            if run is not None and saved.run_id is None:  # used before its producer was known
                with self.instance.sessions.write() as session:
                    claim_outputs(session, [saved], run.id)
            self._seen.remember(location, saved)
            return saved, False
        user, role = used_by
        new_edge = [False]

        def link(session: Session, plans: Sequence[Plan]) -> None:
            result = plans[0].result
            assert result is not None and result.id is not None
            new_edge[0] = insert_input(session, user.id, result.id, role)

        save_artifacts([artifact], self.instance, also=link, producer_from_context=False)
        self._seen.remember(location, artifact)
        return artifact, new_edge[0]

    def _describe(
        self,
        location: str,
        run: Run | None = None,
        known: os.stat_result | None = None,
        **fields: Any,
    ) -> Artifact:
        """`Artifact(location, ...)` read through this Recorder's instance's storages; without
        a producer (`run`), a file a step only used (`keying.may_be`). `known`: the stat of
        `location` (a resolved path) the caller took, if any (a symlink's own: not used)."""
        instance = self.instance
        assert instance is not None
        if known is not None and not S_ISLNK(known.st_mode):
            fields["resolved"] = known
        return describe_new(location, lambda: instance, run=run, used_only=run is None, **fields)

    def _gone_input(
        self, location: str, used_by: tuple[Run, str], *, key: str | None, kind: str | None
    ) -> tuple[Artifact, bool]:
        """A reference (hash unknown) to an input whose bytes are gone, with its edge (the
        `artifact_used` hook fires there); a later save of bytes there fills it in."""
        from lakeline.lineage.references import record_reference

        user, role = used_by
        assert self.instance is not None
        saved = record_reference(
            self.instance,
            user,
            location,
            output=False,
            role=role,
            key=key,
            hash=None,
            hash_type=None,
            size=None,
            kind=kind,
        )
        return saved, False

    def reference(
        self,
        step: Handle,
        location: str | os.PathLike[str],
        *,
        output: bool = False,
        role: str = "",
        key: str | None = None,
        hash: str | None = None,
        hash_type: str | None = None,
        size: int | None = None,
        kind: str | None = None,
    ) -> Artifact:
        """Record data `step` used (or, with `output`, produced) that lakeline holds no bytes
        for: a table, a file gone from disk but known by its checksum (`Artifact.reference`).

        A gone local file recorded earlier with its bytes stays that record.
        """
        from lakeline.lineage.references import record_reference

        text = os.fspath(location)
        if protocol_of(text) == "local":
            text = self._location(text)
        assert self.instance is not None
        return record_reference(
            self.instance,
            step,
            text,
            output=output,
            role=role,
            key=key,
            hash=hash,
            hash_type=hash_type,
            size=size,
            kind=kind,
        )

    def mark_gone(self, path: str | os.PathLike[str]) -> Artifact | None:
        """The engine deleted this file (a temp() output): its records held in place there
        become unavailable, keeping hash and lineage; the newest is returned (None if the
        file still exists or was never recorded)."""
        from lakeline.lineage.references import mark_gone

        assert self.instance is not None
        return mark_gone(self._location(path), self.instance)

    def use(
        self,
        step: Handle,
        path: str | os.PathLike[str],
        *,
        role: str = "",
        key: str | None = None,
        stat: os.stat_result | None = None,
    ) -> Artifact | None:
        """Record that `step` used the file (registering it if new); None if it vanished.

        `stat`: the file's `os.lstat` (or `os.stat`), if the caller took one just now: what
        it is and what the step saw, not stat'ed again (a symlink's own lstat is ignored).
        Its bytes are hashed as they are read: a file changed since is hashed as it is now.
        """
        check_stat(stat)
        artifact, new_edge = self._artifact(
            self._location(path),
            key=key,
            kind=None,
            run=None,
            used_by=(step.run, role),
            given=stat,
        )
        if artifact is not None and new_edge:
            fire("artifact_used", artifact=artifact, run=step.run)
        return artifact

    def produce(
        self,
        step: Handle,
        path: str | os.PathLike[str],
        *,
        key: str | None = None,
        kind: str | None = None,
        stat: os.stat_result | None = None,
    ) -> Artifact | None:
        """Record that `step` produced the file (hashed and registered as its output).

        `kind` marks special outputs: "log", "benchmark", "transient" (deleted after use);
        `stat` as for `use`.
        """
        check_stat(stat)
        location = self._location(path)
        return self._artifact(location, key=key, kind=kind, run=step.run, given=stat)[0]
