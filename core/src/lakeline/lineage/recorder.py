"""The Recorder: the one typed API through which workflow integrations record lineage.

    rec = Recorder("snakemake", root=workdir)
    wf = rec.start_workflow(key="rnaseq", engine_run_id=run_id, source_code=snakefile_text)
    step = rec.start_step(wf, key="align", kind="rule", engine_task_id="17", params={...})
    rec.use(step, "data/reads.fq")
    rec.produce(step, "results/aligned.bam")
    rec.finish_step(step, "completed")     # or finish_step(step, outputs=[...]): outputs
    rec.finish_workflow(wf, "completed")   # recorded in the finish's transaction

Everything is keyed by engine ids, so replaying the same events, or importing the same run
twice, changes nothing. Engines never touch models directly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lakeline import checkpoints
from lakeline.artifacts.describe import describe_new
from lakeline.artifacts.save import save_artifacts
from lakeline.db.session import stamp
from lakeline.errors import LakelineError
from lakeline.lineage.engine_support import current, current_run, location_exists, written_since
from lakeline.lineage.handles import FileRecord, Handle
from lakeline.lineage.notebook import code_hash
from lakeline.lineage.records import ensure_transform, fire, new_run
from lakeline.lineage.references import known_record
from lakeline.lineage.refusals import clashed, finish_unlinked, refused_input
from lakeline.lineage.run_rows import Finish, claim_outputs, insert_run, single_statement
from lakeline.lineage.run_updates import RunUpdates
from lakeline.lineage.seen import SeenFiles, file_state
from lakeline.lineage.track import params_of
from lakeline.lineage.usage import add_input, insert_input
from lakeline.models import Artifact, Run, Transform
from lakeline.storage.roots import normalize_root, protocol_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from lakeline.artifacts.save import Plan
    from lakeline.instance import Instance
    from lakeline.lineage.batching import BatchRecorder, make_recorder

__all__ = [
    "BatchRecorder",
    "FileRecord",
    "Handle",
    "Recorder",
    "current",
    "current_run",
    "file_state",
    "location_exists",
    "make_recorder",
    "written_since",
]

log = logging.getLogger("lakeline.recorder")


def __getattr__(name: str) -> Any:
    if name in ("BatchRecorder", "make_recorder"):  # batching.py subclasses Recorder: on use
        from lakeline.lineage import batching

        return getattr(batching, name)
    raise AttributeError(name)


@dataclass
class Recorder(RunUpdates):
    """Records an engine's workflow runs and their steps, idempotently by engine ids.

    `root`: the workflow's working folder; it is registered as a storage root so files in it
    are registered in place. Files elsewhere are uploaded when `upload` is true, else registered
    where they are (their folder becomes a storage root). `missing` lists files that were
    reported but no longer exist.
    """

    engine: str
    root: str | os.PathLike[str] | None = None
    upload: bool = False
    instance: Instance | None = None
    missing: list[str] = field(default_factory=list)
    _transforms: dict[tuple[str, str, int | None, str | None], Transform] = field(
        default_factory=dict, repr=False
    )
    _seen: SeenFiles = field(default_factory=SeenFiles, repr=False)

    def __post_init__(self) -> None:
        if not self.engine:
            raise LakelineError("a Recorder needs the engine's name (snakemake, nextflow, ...)")
        if self.instance is None:  # the integrations' entry point: the current instance
            from lakeline.instance import current

            self.instance = current()
        if self.root is not None:
            self.instance.register_storage(self.root)

    # -- runs -----------------------------------------------------------------------------------

    def _find(self, engine_ref: str) -> Run | None:
        assert self.instance is not None
        with self.instance.sessions.read() as session:
            stmt = select(Run).where(Run.engine == self.engine, Run.engine_ref == engine_ref)
            return session.scalars(stmt).first()

    def _transform(
        self,
        *,
        key: str,
        kind: str,
        parent: Transform | None,
        source_code: str | None,
        reference: str | None,
        description: str | None = None,
        version: str | None = None,
    ) -> Transform:
        assert self.instance is not None
        digest = None if source_code is None else code_hash(source_code)
        cache_key = (key, kind, None if parent is None else parent.id, digest)
        if cache_key not in self._transforms:  # cached once committed: other threads use it
            with self.instance.sessions.write() as session:
                transform = ensure_transform(
                    session,
                    key=key,
                    kind=kind,
                    source_code=source_code,
                    hash=digest,
                    reference=reference,
                    reference_type=self.engine if reference else None,
                    parent_id=None if parent is None else parent.id,
                    description=description,
                    version=version,
                    created_by_id=self.instance.user.id,
                )
                checkpoints.reach("recorder.transform")
            self._transforms[cache_key] = transform
        return self._transforms[cache_key]

    def _start(
        self,
        transform: Transform,
        engine_ref: str,
        *,
        parent: Run | None,
        params: dict[str, Any] | None,
        status: str,
        at: datetime | None,
    ) -> Handle:
        assert self.instance is not None
        run = new_run(
            transform,
            status=status,
            params=params_of(params),
            parent_id=None if parent is None else parent.id,
            engine=self.engine,
            engine_ref=engine_ref,
            created_by_id=self.instance.user.id,
            at=at,
        )
        try:  # insert first: recording new runs is the common case, replays the rare one
            with single_statement(self.instance) as session:
                insert_run(session, run)
        except IntegrityError as exc:  # recorded before (a replay) or concurrently: use that run
            found = clashed(self, exc, run)  # raises if refused (hidden, a record gone)
            if found is not run:  # else inserted again: the run it met was deleted since
                if found.transform_id != transform.id:  # the code changed: keep the run's own
                    with self.instance.sessions.read() as session:
                        transform = session.get(Transform, found.transform_id) or transform
                return Handle(found, transform, engine_ref)
        stamp(run, self.instance)  # a row inserted with Core: the session did not see it
        fire("run_started", run=run)
        return Handle(run, transform, engine_ref)

    def start_workflow(
        self,
        *,
        key: str,
        engine_run_id: str,
        source_code: str | None = None,
        reference: str | None = None,
        params: dict[str, Any] | None = None,
        kind: str = "pipeline",
        description: str | None = None,
        version: str | None = None,
        started_at: datetime | None = None,
        parent: Handle | Run | None = None,
    ) -> Handle:
        """The workflow run `engine_run_id` of pipeline `key` (created once).

        `parent` nests it under another run (a subflow called by a flow or a task, a
        workflow launched from a tracked script); its transform stays a pipeline of its own.
        """
        transform = self._transform(
            key=key,
            kind=kind,
            parent=None,
            source_code=source_code,
            reference=reference,
            description=description,
            version=version,
        )
        return self._start(
            transform,
            engine_run_id,
            parent=parent.run if isinstance(parent, Handle) else parent,
            params=params,
            status="started",
            at=started_at,
        )

    def start_step(
        self,
        workflow: Handle,
        *,
        key: str,
        kind: str,
        engine_task_id: str,
        params: dict[str, Any] | None = None,
        source_code: str | None = None,
        reference: str | None = None,
        started_at: datetime | None = None,
        status: str = "started",
        scoped: bool = True,
        parent: Handle | None = None,
    ) -> Handle:
        """A step run (rule job, process task, ...) inside `workflow` (created once).

        `parent` nests the run under another step's run (a job called by a job); its
        transform stays under the workflow's pipeline transform.

        With `scoped`, the engine's task id is only unique within its workflow run (Snakemake
        job ids); otherwise it is globally unique (Nextflow task hashes).
        """
        transform = self._transform(
            key=key,
            kind=kind,
            parent=workflow.transform,
            source_code=source_code,
            reference=reference,
        )
        engine_ref = f"{workflow.engine_ref}/{engine_task_id}" if scoped else engine_task_id
        return self._start(
            transform,
            engine_ref,
            parent=(parent or workflow).run,
            params=params,
            status=status,
            at=started_at,
        )

    def _finish(
        self,
        handle: Handle,
        status: str,
        *,
        at: datetime | None,
        exit_code: int | None,
        error: str | None,
        cached_from: Run | None = None,
        outputs: Sequence[str | os.PathLike[str] | FileRecord] = (),
    ) -> Run:
        assert self.instance is not None
        from_id = None if cached_from is None else cached_from.id
        change = Finish(status, at, exit_code, error, from_id)
        done: list[tuple[Run, bool]] = []

        def finish(session: Session, plans: Sequence[Plan] = ()) -> None:
            claim_outputs(session, [plan.result for plan in plans], handle.run.id)
            done.append(change.apply(session, handle.run))

        batch = self._outputs(handle, outputs)
        if batch:
            for made, saved in zip(
                batch,
                save_artifacts(batch, self.instance, also=finish, producer_from_context=False),
                strict=True,
            ):
                self._seen.remember(made._source, saved)
        else:
            with single_statement(self.instance) as bind:  # the common case: one statement
                record = change.row(bind, handle.run.id)
            if record is None:  # a replayed event, or the run is gone
                with self.instance.sessions.write() as session:
                    finish(session)
            else:
                done.append((record, True))
        record, changed = done[-1]
        stamp(record, self.instance)
        handle.run = record
        if changed:
            fire("run_finished", run=record)
        return record

    def _outputs(
        self, step: Handle, outputs: Sequence[str | os.PathLike[str] | FileRecord]
    ) -> list[Artifact]:
        """Unsaved artifacts for the outputs that exist; vanished ones go through `produce`."""
        assert self.instance is not None
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
            batch.append(self._describe(location, key=record.key, kind=record.kind, run=step.run))
        return batch

    def finish_step(
        self,
        step: Handle,
        status: str = "completed",
        *,
        finished_at: datetime | None = None,
        exit_code: int | None = None,
        error: str | None = None,
        cached_from: str | None = None,
        outputs: Sequence[str | os.PathLike[str] | FileRecord] = (),
    ) -> Run:
        """Finish a step; `cached` steps name the engine id of the run that really ran.

        `outputs`: files the step produced (paths, or FileRecords with a key or kind),
        recorded as `produce` would, in the same transaction as the finish.
        """
        original = None
        if cached_from is not None:
            original = self._find(cached_from)
            if original is None:
                log.warning("cached step %s: no recorded run %s", step.engine_ref, cached_from)

        def finish(cached: Run | None) -> Run:
            return self._finish(
                step, status, at=finished_at, exit_code=exit_code, error=error,
                cached_from=cached, outputs=outputs,
            )  # fmt: skip

        assert self.instance is not None
        return finish_unlinked(self.instance, step, original, finish)  # original deleted since

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
            batch.append((i, self._describe(location, key=item.key, kind=item.kind, run=run)))
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

    def finish_workflow(
        self,
        workflow: Handle,
        status: str = "completed",
        *,
        finished_at: datetime | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> Run:
        """Finish the workflow run."""
        return self._finish(workflow, status, at=finished_at, exit_code=exit_code, error=error)

    # -- files ----------------------------------------------------------------------------------

    def _location(self, path: str | os.PathLike[str]) -> str:
        text = os.fspath(path)
        if protocol_of(text) == "local" and self.root is not None and not os.path.isabs(text):
            text = os.path.join(os.fspath(self.root), text)
        return normalize_root(text)

    def _artifact(
        self,
        location: str,
        *,
        key: str | None,
        kind: str | None,
        run: Run | None,
        used_by: tuple[Run, str] | None = None,
    ) -> tuple[Artifact | None, bool]:
        """Save (or find) the artifact for a file (None when it is gone and unknown), and
        whether a new used-by edge from `used_by` was recorded (in the same transaction)."""
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
        artifact = self._describe(location, key=key, kind=kind, run=run)
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

    def _describe(self, location: str, run: Run | None = None, **fields: Any) -> Artifact:
        """`Artifact(location, ...)` read through this Recorder's instance's storages; without
        a producer (`run`), a file a step only used (`keying.may_be`)."""
        instance = self.instance
        assert instance is not None
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
        self, step: Handle, path: str | os.PathLike[str], *, role: str = "", key: str | None = None
    ) -> Artifact | None:
        """Record that `step` used the file (registering it if new); None if it vanished."""
        artifact, new_edge = self._artifact(
            self._location(path), key=key, kind=None, run=None, used_by=(step.run, role)
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
    ) -> Artifact | None:
        """Record that `step` produced the file (hashed and registered as its output).

        `kind` marks special outputs: "log", "benchmark", "transient" (deleted after use).
        """
        return self._artifact(self._location(path), key=key, kind=kind, run=step.run)[0]
