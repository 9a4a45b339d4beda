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
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lakeline import checkpoints
from lakeline.artifacts.save import save_artifacts
from lakeline.db.session import stamp
from lakeline.errors import LakelineError
from lakeline.lineage.engine_support import current, current_run, location_exists, written_since
from lakeline.lineage.file_recording import FileRecording
from lakeline.lineage.handles import FileRecord, Handle
from lakeline.lineage.notebook import code_hash
from lakeline.lineage.records import ensure_transform, fire, new_run
from lakeline.lineage.refusals import clashed, finish_unlinked
from lakeline.lineage.run_rows import Finish, claim_outputs, insert_run, single_statement
from lakeline.lineage.run_updates import RunUpdates
from lakeline.lineage.seen import SeenFiles, file_state
from lakeline.lineage.track import checked_params
from lakeline.models import Run, Transform

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
class Recorder(FileRecording, RunUpdates):
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
        clean_params, checked, text = checked_params(params)
        run = new_run(
            transform,
            status=status,
            params=clean_params,
            params_checked=checked,
            params_text=text,
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
