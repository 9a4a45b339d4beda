"""The BatchRecorder's flush: a batch of queued runs, files, edges and finishes written in
one transaction."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from lakeline import checkpoints
from lakeline.artifacts.save import save_artifacts
from lakeline.db.rows import fill_new
from lakeline.db.session import after_commit, stamp
from lakeline.errors import LakelineError
from lakeline.lineage.batch_files import QueuedFile, nul_error, unsaved_runs
from lakeline.lineage.handles import loaded
from lakeline.lineage.records import fire_each
from lakeline.lineage.run_rows import (
    FINISH_COLUMNS,
    Finish,
    claim_many,
    finish_found,
    finish_queued,
    insert_new_runs,
)
from lakeline.lineage.usage import insert_inputs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy.orm import Session

    from lakeline.artifacts.save import Plan
    from lakeline.lineage.batching import BatchRecorder
    from lakeline.lineage.handles import Handle
    from lakeline.models import Artifact, Run, Transform


def write_batch(
    rec: BatchRecorder,
    files: list[QueuedFile],
    links: list[tuple[Handle, Artifact, str]],
    finishes: list[tuple[Handle, Finish]],
    started: list[tuple[Handle, Handle]],
    committed: list[Callable[[], None]],
) -> list[QueuedFile]:
    """Write a batch in one transaction, the queued runs first (`started` gets those it
    inserts, to be made unsaved again if it fails); the files that could not be read again (a
    retried batch), left out, are returned. Once the transaction committed, `committed` gets
    what to do next (the queue emptied of the runs, the records stamped, the plugins told), for
    the caller to call outside its handling of a failed flush; an exception raised after the
    commit (a Ctrl-C inside the save after it) leaves `committed` set and the batch written:
    not to be queued again (its runs, still queued, are found as replays by the next flush)."""
    assert rec.instance is not None
    gone = [f for f in files if f.plan is None and not rec._replan(f)]
    files = [f for f in files if f.plan is not None]
    edges: list[tuple[Run, Artifact]] = []
    done: list[tuple[Handle, Run, bool]] = []
    new: set[int] = set()  # the runs inserted here, as the database holds them
    first: dict[int, tuple[Handle, Finish]] = {}  # by id(run): a run inserted finished
    applied: list[tuple[Run, dict[str, Any]]] = []  # finished before their insert: as they were
    replays: list[tuple[Handle, Run, Transform]] = []  # queued runs recorded before: as queued

    def reset() -> None:
        """Undo what a rolled-back transaction did to the queued runs: not finished, unsaved."""
        for run, values in applied:
            for name, value in values.items():
                set_committed_value(run, name, value)
        applied.clear()
        unsaved_runs(started, replays)

    def written(inserted: list[tuple[Handle, Handle]]) -> None:
        """After the commit: the runs leave the queue, records stamped, plugins told."""
        assert rec.instance is not None
        looked: list[bool] = []  # the hooks' look at the environment: once for the three
        rec._runs_written(inserted, looked)
        for f in files:  # as it was when hashed
            rec._seen.remember(f.location, f.artifact, f.stat)
        fire_each("artifact_used", [{"artifact": a, "run": run} for run, a in edges], looked)
        for step, record, _ in done:
            stamp(record, rec.instance)
            step.run = record
        finished = [{"run": record} for _, record, changed in done if changed]
        fire_each("run_finished", finished, looked)

    def runs(session: Session, plans: Sequence[Plan] = ()) -> None:
        reset()  # a retried transaction starts again
        first.clear()
        if rec._runs:
            queued = {id(h.run) for h, _ in rec._runs.values() if loaded(h.run, "id") is None}
            for step, change in finishes:  # started and finished here: inserted finished
                run = step.run
                if (
                    id(run) in queued
                    and run.status != change.status
                    and id(run) not in first
                    and not nul_error(change)
                ):
                    first[id(run)] = (step, change)
                    values = vars(run)
                    applied.append((run, {name: values.get(name) for name in FINISH_COLUMNS}))
                    finish_queued(run, change)
            rec._insert_all(session, started, replays)
        new.clear()
        new.update(id(handle.run) for handle, _ in started)
        for key in [key for key in first if key not in new]:
            del first[key]  # a replay: its finish goes to the run recorded before
        for f in files:  # new records (inserted by the save): no attribute events
            if f.producer is not None:
                fill_new(f.artifact, {"run_id": loaded(f.producer.run, "id")})

    def write(session: Session, plans: Sequence[Plan] = ()) -> None:
        edges.clear()  # a retried transaction starts again
        done.clear()
        after_commit(session, partial(committed.append, partial(written, list(started))))
        wanted: dict[tuple[int, int, str], tuple[Run, Artifact]] = {}
        claims: list[tuple[Artifact | None, int]] = []
        for f, plan in zip(files, plans, strict=True):
            result = plan.result
            result_id = None if result is None else loaded(result, "id")
            assert result is not None and result_id is not None
            if f.producer is not None:
                claims.append((result, loaded(f.producer.run, "id")))
            for user, role in f.used_by:
                wanted.setdefault((loaded(user.run, "id"), result_id, role), (user.run, result))
        for user, artifact, role in links:  # files saved before, unchanged since
            edge = (loaded(user.run, "id"), loaded(artifact, "id"), role)
            wanted.setdefault(edge, (user.run, artifact))
        claim_many(session, claims)
        made = insert_inputs(session, wanted)  # one statement: the new ones back
        edges.extend(pair for edge, pair in wanted.items() if edge in made)
        checkpoints.reach("recorder.flush")  # half the batch written, not committed
        done.extend((step, step.run, True) for step, _ in first.values())  # inserted finished
        checkpoints.reach("recorder.flush.finished")
        later = [
            (step, change)
            for step, change in finishes
            if first.get(id(step.run), (None, None))[1] is not change
        ]
        once: dict[int, tuple[Handle, Finish]] = {}  # a run's first finish: batched
        for step, change in later:
            once.setdefault(step.run.id, (step, change))
        found = finish_found(session, [(s.run, c) for s, c in once.values()])
        for step, change in later:
            record = found.get(step.run.id)
            first_step, first_change = once[step.run.id]
            if record is not None and first_step is step and first_change is change:
                done.append((step, record, True))
            else:  # a replay, a gone run, or the same run's next finish
                done.append((step, *change.apply(session, step.run)))

    try:
        if files:
            save_artifacts(
                [f.artifact for f in files],
                rec.instance,
                also=write,
                producer_from_context=False,
                planned=[f.plan for f in files if f.plan is not None],
                before=runs,
            )
        else:

            def both(session: Session) -> None:
                runs(session)
                write(session)

            retried(rec, both, reset)
    except BaseException:
        if committed:  # written: the runs keep their ids
            started.clear()
        else:
            reset()  # queued again as they were
        raise
    return gone


def retried(rec: BatchRecorder, work: Callable[[Session], None], reset: Callable[[], None]) -> None:
    """`work` in a write transaction, again (after `reset`) when another writer's commit got
    in its way as a save's retries do (a deadlock, a unique clash)."""
    from sqlalchemy.exc import OperationalError

    from lakeline.db.errors import RETRIES, retryable

    assert rec.instance is not None
    for attempt in range(RETRIES):
        try:
            with rec.instance.sessions.write() as session:
                work(session)
            return
        except (IntegrityError, OperationalError) as exc:
            if attempt == RETRIES - 1 or not retryable(exc):
                raise
            reset()


def insert_queued(
    rec: BatchRecorder,
    session: Session,
    started: list[tuple[Handle, Handle]],
    replays: list[tuple[Handle, Run, Transform]] | None = None,
) -> None:
    """Insert the queued runs in `session`'s transaction (those recorded before are found);
    `started` gets the runs it inserts, `replays` the handles of runs recorded before with the
    queued run and transform they held (`unsaved_runs` gives them back: the session's records
    expire when it rolls back). They go in with INSERT ... ON CONFLICT DO NOTHING, and only
    those it leaves out are looked up (replays are rare): one statement a flush however many
    runs (on PostgreSQL over the runs as one JSON text: less client CPU a run than the look-up
    and COPY that took more than 16, 20 runs 1693 -> 775 us, 200 runs 6442 -> 4477, load 9).
    In waves: a step nested under a step of this batch after it."""
    runs = list(rec._runs.values())
    # looked for first: those a flush interrupted after its commit inserted
    first = [(h, p) for h, p in runs if loaded(h.run, "id") is not None]
    found = _recorded(rec, session, [handle.engine_ref for handle, _ in first]) if first else {}
    waiting = []
    for handle, parent in runs:
        known = found.get(handle.engine_ref)
        if known is not None:
            _replayed(rec, session, handle, known, replays)
            continue
        if loaded(handle.run, "id") is not None:  # inserted by an interrupted flush, deleted since
            unsaved_runs([(handle, parent)])
        waiting.append((handle, parent))
    while waiting:
        ready = [(h, p) for h, p in waiting if loaded(p.run, "id") is not None]
        if not ready:
            raise LakelineError("a step's parent run was never started")
        for handle, parent in ready:  # a new run (transient): no attribute events
            fill_new(handle.run, {"parent_id": loaded(parent.run, "id")})
        started.extend(ready)  # made unsaved again if the transaction fails
        try:
            skipped = insert_new_runs(session, [handle.run for handle, _ in ready])
        except IntegrityError as exc:  # a parent run deleted since: name the step
            from lakeline.lineage.refusals import refuse_runs

            assert rec.instance is not None
            refuse_runs(rec.instance, exc, [handle.run for handle, _ in ready])
        if skipped:
            left = {id(run) for run in skipped}  # recorded before: replays
            checkpoints.reach("recorder.clash")
            found = _recorded(rec, session, [run.engine_ref for run in skipped])
            lost = [h for h, _ in ready if id(h.run) in left and h.engine_ref not in found]
            if lost:  # in a space the role does not see, or deleted since the clash
                from lakeline.lineage.refusals import insert_again

                left -= insert_again(rec, session, lost, found)
            started[:] = [(h, p) for h, p in started if id(h.run) not in left]
            for handle, _ in ready:
                if id(handle.run) in left:
                    _replayed(rec, session, handle, found[handle.engine_ref], replays)
        waiting = [(h, p) for h, p in waiting if loaded(h.run, "id") is None]


def _recorded(
    rec: BatchRecorder, session: Session, refs: Sequence[str | None]
) -> dict[str | None, Run]:
    """The runs of this engine recorded under `refs`, by engine ref."""
    from sqlalchemy import select

    from lakeline.db.rows import chunks, one_of
    from lakeline.models import Run

    found: dict[str | None, Run] = {}
    for chunk in chunks(refs):
        where = one_of(session, Run.engine_ref, chunk)
        stmt = select(Run).where(Run.engine == rec.engine, where)
        found.update((run.engine_ref, run) for run in session.scalars(stmt))
    return found


def _replayed(
    rec: BatchRecorder,
    session: Session,
    handle: Handle,
    known: Run,
    replays: list[tuple[Handle, Run, Transform]] | None,
) -> None:
    """A queued step recorded before: its handle takes that run (and its transform, if it
    differs), the metadata it was annotated with while queued merged into its params."""
    from lakeline.models import Transform

    if replays is not None:
        replays.append((handle, handle.run, handle.transform))
    notes = rec._notes.get(handle.engine_ref, {})
    params = dict(known.params or {})
    params.update({n: {**dict(params.get(n) or {}), **m} for n, m in notes.items()})
    if params != (known.params or {}):
        known.params = params
    if known.transform_id != handle.transform.id:
        handle.transform = session.get(Transform, known.transform_id) or handle.transform
    handle.run = known
