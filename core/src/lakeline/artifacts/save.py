"""Saving artifacts: hash, store bytes, write records in one transaction — all or nothing.

Bytes go first (uploads are content-addressed, so a retry rewrites the same object); the
records follow in one transaction; if that fails, the bytes this save created are removed.
Copied bytes are hashed as they are copied (the recorded hash is the hash of the stored
bytes); the transaction checks, under a lock per object that deletes take too, that every
object its records point to is still there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.attributes import instance_dict

from lakeline import checkpoints
from lakeline.artifacts import pipeline
from lakeline.artifacts.edit import Edits, refresh_metadata
from lakeline.artifacts.keying import located, settle_keys
from lakeline.artifacts.missing import hidden_key, missing_reference
from lakeline.artifacts.newrows import next_indexes, record_values, retire
from lakeline.artifacts.pipeline import eligible
from lakeline.artifacts.places import REF_ROOT, Places, promote
from lakeline.artifacts.planning import Plan as Plan  # re-exported: its callers' import
from lakeline.artifacts.planning import _plan, _plan_reference, plan_stored
from lakeline.artifacts.planning import plan_file as plan_file
from lakeline.artifacts.settle import detach, settle
from lakeline.artifacts.store import Budget, BytesGone, drop_unused, guarded, restore, spool_folder
from lakeline.artifacts.store import cleanup as _cleanup
from lakeline.artifacts.store import io_bound as _io_bound
from lakeline.artifacts.store import map_items as _map
from lakeline.artifacts.store import storage_of as _storage
from lakeline.artifacts.store import upload as _upload
from lakeline.artifacts.undo import forget, keep, put_back
from lakeline.db.errors import RETRIES, retryable
from lakeline.db.locks import lock_keys, try_lock_keys
from lakeline.db.rows import CHUNK, chunks, fill_new, insert_rows, one_of
from lakeline.db.session import after_commit, check_own, stamp, unsaved
from lakeline.errors import IntegrityProblem
from lakeline.gc_pause import gc_paused
from lakeline.ids import STEM_LENGTH, new_uids
from lakeline.lineage.context import current_run_in
from lakeline.models import Artifact

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.artifacts.offload import Job
    from lakeline.instance import Instance
    from lakeline.models import Run

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


InTransaction = Callable[["Session", Sequence[Plan]], None]


def _insert(session: Session, artifacts: Sequence[Artifact]) -> None:
    """INSERT the new records in one go (the ORM's flush would emit one INSERT ... RETURNING
    per row on SQLite) and give each object its id."""
    table = Artifact.__table__
    assert isinstance(table, Table)
    columns = _columns(primary_key=False)
    wanted = _column_set()
    rows = []
    for artifact in artifacts:
        values = instance_dict(artifact)  # the attributes set so far
        for name in wanted.difference(values):
            values[name] = None  # stored as NULL: say so, or a detached record can't tell
        rows.append(values)
    ids = insert_rows(session, table, rows, unique="uid", columns=columns)
    for artifact, new_id in zip(artifacts, ids, strict=True):
        instance_dict(artifact)["id"] = new_id


def _write_records(
    instance: Instance,
    plans: Sequence[Plan],
    also: InTransaction | None = None,
    *,
    producer_from_context: bool = True,
    before: InTransaction | None = None,
    committed: list[bool] | None = None,
) -> BaseException | None:
    """Insert the new records (or find existing identical ones) in one transaction
    (`before(session, plans)` runs in it first).

    New records are inserted with Core, so their objects never join the session: once the
    transaction commits they become detached records, as if loaded and the session closed.
    An exception raised once it committed (a Ctrl-C) is returned, the records settled: the
    caller raises it once the save is finished (it is saved). `committed` gets True appended
    once the transaction committed.
    """
    user_id = instance.user.id
    run = current_run_in(instance) if producer_from_context else None
    committed = [] if committed is None else committed
    created: list[Artifact] = []
    new_storage = False
    try:
        with instance.sessions.write() as session:
            after_commit(session, partial(committed.append, True))
            if before is not None:
                before(session, plans)
            created, new_storage = write_batch(session, instance, plans, user_id, run)
            if also is not None:
                also(session, plans)
            checkpoints.reach("save.written")
        settle(instance, created, new_storage)
    except BaseException as exc:
        if not committed:
            raise
        settle(instance, created, new_storage, late=True)
        return exc
    return None


def write_batch(
    session: Session, instance: Instance, plans: Sequence[Plan], user_id: int, run: Run | None
) -> tuple[list[Artifact], bool]:
    """In `session`'s transaction: find the records `plans` turn out to be, insert the new
    ones. Returns the new records and whether a reference storage was created."""
    # new records' values read from their own dicts (unset: None, as the ORM's ~0.3 us read)
    keys = sorted({key for p in plans if (key := vars(p.artifact).get("key")) is not None})
    latest: dict[str | None, Artifact] = {}
    same: dict[tuple[str | None, str | None], Artifact] = {}

    def remember(row: Artifact) -> None:
        if row.is_latest and row.key is not None:
            latest[row.key] = row
        if (row.key, row.hash) not in same or row.is_latest:
            same[(row.key, row.hash)] = row

    lock_keys(session, "artifact", keys)
    references = sorted({p.artifact._source for p in plans if p.digest is None})
    lock_keys(session, "location", references)
    places = Places(session, plans, instance.uid, files=len(plans) > CHUNK)
    wanted = []
    if places.foldable(keys):
        # its keys and the records at its places: one statement (`Places.lookup`)
        lookup = places.lookup(keys)
        keyset = set(keys)
        for row, ref_root in places.found(lookup) if lookup else ():
            if row.key in keyset:
                remember(row)
            places.take(row, ref_root)
    else:
        wanted = places.conditions()
        for chunk in chunks(keys):
            where = one_of(session, Artifact.key, chunk)
            for row in session.scalars(select(Artifact).where(where)):
                remember(row)
    keyless = sorted(
        {p.digest.hash for p in plans if vars(p.artifact).get("key") is None and p.digest}
    )
    for chunk in chunks(keyless):
        stmt = select(Artifact).where(Artifact.key.is_(None), one_of(session, Artifact.hash, chunk))
        for row in session.scalars(stmt):
            remember(row)
    for where in wanted:
        for row, ref_root in session.execute(select(Artifact, REF_ROOT).where(where)):
            places.take(row, ref_root)

    def read_keys(more: list[str]) -> None:
        checkpoints.reach("save.read_keys")
        try_lock_keys(session, "artifact", more)  # met late: not in order, so never waited for
        for chunk in chunks(more):
            for row in session.scalars(
                select(Artifact).where(one_of(session, Artifact.key, chunk))
            ):
                remember(row)

    settle_keys(session, plans, latest, places, read_keys)
    # the stems new versions will likely follow (a key's latest record, other bytes), read at
    # once; a stem missed (a reference, a location's record) is read when met
    likely = {
        previous.stem
        for p in plans
        if (previous := latest.get(key := vars(p.artifact).get("key"))) is not None
        and previous.id is not None
        and (key, p.digest.hash if p.digest else None) not in same
    }
    next_index = next_indexes(session, sorted(likely)) if likely else {}
    retired: list[int] = []  # previous latest records, no longer latest: one UPDATE a chunk
    created: list[Artifact] = []
    stems = iter(new_uids(len(plans), STEM_LENGTH))  # drawn at once: a new stem each
    storage_ids = {s: s.id for s in {p.storage for p in plans if p.digest and p.storage}}
    run_id = run.id if run is not None else None
    for plan in plans:
        artifact, digest = plan.artifact, plan.digest
        existing = _existing(session, plan, same, places)
        if existing is not None:
            refresh_metadata(session, existing, artifact)  # a new description, kind, label
            plan.result = existing
            continue
        own = vars(artifact)
        key = own.get("key")
        previous = latest.get(key) if key is not None else None
        if previous is None:
            stem, index = next(stems), 0
        else:
            # a new version keeps what the previous one said about itself unless told
            artifact.description = artifact.description or previous.description
            artifact.kind = artifact.kind or previous.kind
            stem = previous.stem
            if stem not in next_index:
                next_index.update(next_indexes(session, [stem]))
            index = next_index.get(stem, 0)
            if previous.id is None:
                previous.is_latest = False
            else:
                retired.append(previous.id)
        next_index[stem] = index + 1
        if digest is not None:
            storage_id = storage_ids[_storage(plan)]
        elif plan.storage is not None:
            storage_id = plan.storage.id
        else:
            assert plan.ref_place is not None
            storage_id = places.storage_id(plan.ref_place[0])
        values = record_values(plan, stem, index, user_id, storage_id, run_id)
        fill_new(artifact, values)  # a new object: no per-attribute events
        created.append(artifact)
        plan.result = artifact
        if key is not None:
            latest[key] = artifact
        if own.get("hash") is not None:
            same[(key, own["hash"])] = artifact
        places.add(plan, artifact)
    retire(session, retired)
    _insert(session, created)
    return created, places.created


def _existing(
    session: Session,
    plan: Plan,
    same: dict[tuple[str | None, str | None], Artifact],
    places: Places,
) -> Artifact | None:
    """The record `plan` turns out to be, if any.

    A file: the record with the same key (or none) and hash; else a reference with its hash
    at its location. A reference it matches becomes available (takes the bytes) instead of
    getting a duplicate. A reference: the record at its location with the same hash (or both
    without), and the same key when one was given.
    """
    digest = plan.digest
    if digest is None:
        return places.find(plan)
    existing = same.get((vars(plan.artifact).get("key"), digest.hash))  # a new record's own
    if located(plan):  # a file keyed by its location is a record there, or fills a reference
        here = places.find(plan)
        if here is not None or existing is None or existing.available:
            existing = here
    if existing is not None and not existing.available and existing.hash_type != digest.hash_type:
        existing = None
    if existing is None:
        existing = places.find(plan, unavailable_only=True)
    if existing is not None and not existing.available:
        promote(session, existing, plan)
    return existing


def _retried(exc: BaseException) -> bool:
    """Whether `_write_with_retries` retries after `exc`."""
    retry = isinstance(exc, IntegrityError | OperationalError) and retryable(exc)
    return retry or isinstance(exc, BytesGone)


def _adopt(target: Artifact, source: Artifact) -> None:
    """Make `target` (a new, unsaved object) stand for the existing record `source`."""
    loaded = instance_dict(source)
    names = _columns()
    try:  # a loaded or just written record: plain reads
        values = {name: loaded[name] for name in names}
    except KeyError:  # some column expired or never loaded: read through the ORM
        values = {name: loaded[name] if name in loaded else getattr(source, name) for name in names}
    fill_new(target, values)  # made detached by the caller (`detach`)


@cache
def _columns(*, primary_key: bool = True) -> list[str]:
    return [c.key for c in Artifact.__table__.columns if primary_key or not c.primary_key]


@cache
def _column_set() -> frozenset[str]:
    """`_columns(primary_key=False)` as a set (made once: 24 names)."""
    return frozenset(_columns(primary_key=False))


def _finish(plans: Sequence[Plan]) -> None:
    from lakeline.plugins import get_plugin_manager

    # a hook call costs microseconds even when no plugin listens: asked once per save
    listening = bool(get_plugin_manager().hook.artifact_saved.get_hookimpls())
    adopted: list[Artifact] = []  # detached at once, whatever happens meanwhile (a Ctrl-C)
    try:
        for plan in plans:
            artifact = plan.artifact
            if artifact._staged:
                from lakeline.artifacts.transfer import remove_local

                remove_local(Path(artifact._source))
            artifact._created = plan.result is artifact
            if plan.result is not artifact and plan.result is not None:
                _adopt(artifact, plan.result)
                adopted.append(artifact)
            elif listening:
                from lakeline.lineage.records import fire

                fire("artifact_saved", artifact=artifact)
    finally:
        detach(adopted)


@gc_paused()  # thousands of new objects at once: collections would traverse them all
def save_artifacts(
    artifacts: Sequence[Artifact],
    instance: Instance,
    *,
    progress: Progress | None = None,
    also: InTransaction | None = None,
    producer_from_context: bool = True,
    planned: Sequence[Plan] | None = None,
    before: InTransaction | None = None,
) -> list[Artifact]:
    """Save new artifacts into `instance` atomically, as a batch, with the changed fields of
    loaded ones among them (artifacts/edit.py: checked before any file is stored, written first
    in the same transaction): every record and edit, or none.

    `also(session, plans)` runs inside the same transaction, after the records are flushed
    (the Recorder adds its used-by edges there). New records without a `run` take the
    current run as their producer unless `producer_from_context` is False: the Recorder
    names every producer itself, and a file a step only uses must never get one.
    `planned`: plans made by `plan_file` for all of `artifacts`, all new files, in order.
    `before(session, plans)` runs in the transaction before the records are written (the
    BatchRecorder inserts the runs that produced them there; again if it is retried).
    """
    for artifact in artifacts:
        if not isinstance(artifact, Artifact):
            raise TypeError(f"lakeline.save() takes Artifacts, got {type(artifact).__name__}")
        check_own(artifact, instance)
    new = [a for a in artifacts if unsaved(a)]
    fresh = {id(a) for a in new}
    if len(fresh) != len(new):
        raise ValueError("the same Artifact object appears twice in one save")
    saved = [a for a in artifacts if id(a) not in fresh]
    edits = Edits(saved) if saved else None  # loaded records: metadata edits only
    if edits is not None and new:
        edits.check(instance)  # refused before any file is stored

    made: list[Plan] = []  # every plan made so far: its copy is removed if the save fails
    budget = Budget()
    # where copies wait: asked only by `plan_one`, which a save of plans made (the Recorder's
    # flush) never calls
    spool = spool_folder(instance) if planned is None else ""

    def plan_one(artifact: Artifact) -> Plan:
        plan = _plan(instance, artifact, budget, spool)
        made.append(plan)
        if progress:
            progress("hash", 1)
        return plan

    files = [a for a in new if not getattr(a, "_reference", False)]
    job = None
    pipelined = planned is None and also is None and before is None
    if pipelined:
        if len(new) >= pipeline.MIN_FILES:  # the worker's module: imported for such saves
            from lakeline.artifacts.offload import job_for

            job = job_for(instance, new)
        pipelined = job is not None or (
            instance.dialect == "postgresql" and eligible(instance, new)
        )
    kept = keep(new)  # put back if the save fails: the objects as the caller gave them
    committed: list[bool] = []  # True once the records' transaction committed
    try:
        if pipelined:
            plans, late = _pipelined(
                instance,
                new,
                plan_one,
                made,
                progress,
                producer_from_context,
                job,
                edits,
                committed,
            )
        else:
            plans = _planned(instance, new, files, plan_one, made, planned, progress)
            try:
                _upload(instance, plans, progress)
                checkpoints.reach("save.stored")
                checked = guarded(instance, also)
                first = before if edits is None else edits.before(before)
                late = _write_with_retries(
                    instance,
                    plans,
                    checked,
                    producer_from_context,
                    before=first,
                    committed=committed,
                )
                checkpoints.reach("save.committed")
            except BaseException as exc:
                if not committed:
                    forget(plans)
                    _cleanup(instance, plans)
                    raise
                late = exc  # an interrupt on the way out of a committed save: raised below
    except BaseException:  # nothing committed
        put_back(kept)
        raise
    # committed: an interrupt from here on is raised once the save is finished (it is saved)
    try:
        if edits is not None:
            edits.settle()
        drop_unused(instance, plans)
    except BaseException as exc:
        late = late or exc
    _finish(plans)
    for artifact in artifacts:
        stamp(artifact, instance)
    if late is not None:
        raise late
    return list(artifacts)


def _planned(
    instance: Instance,
    new: Sequence[Artifact],
    files: Sequence[Artifact],
    plan_one: Callable[[Artifact], Plan],
    made: list[Plan],
    planned: Sequence[Plan] | None,
    progress: Progress | None,
) -> list[Plan]:
    """A plan for each of `new`, in order: files hashed (and copied) unless `planned`."""
    if planned is not None:
        assert len(planned) == len(new) == len(files)
        assert all(p.artifact is a for p, a in zip(planned, files, strict=True))
        made.extend(planned)
    try:
        planned_iter = iter(
            planned
            if planned is not None
            else _map(plan_one, files, threads=_io_bound(instance, files))
        )
    except BaseException:
        _cleanup(instance, made)
        raise
    plans: list[Plan] = []
    for artifact in new:  # in the caller's order: `also` pairs plans with its artifacts
        if not getattr(artifact, "_reference", False):
            plans.append(next(planned_iter))
        else:
            plans.append(_plan_reference(instance, artifact))
            if progress:
                progress("hash", 1)
    return plans


def _pipelined(
    instance: Instance,
    new: Sequence[Artifact],
    plan_one: Callable[[Artifact], Plan],
    made: list[Plan],
    progress: Progress | None,
    producer_from_context: bool,
    job: Job | None = None,
    edits: Edits | None = None,
    committed: list[bool] | None = None,
) -> tuple[list[Plan], BaseException | None]:
    """Many small files: stored batch by batch while the records are written
    (artifacts/pipeline.py), by `job`'s worker process when given, else by this thread while
    another writes; a conflict met is retried as any save's. Returns the plans and an
    interrupt that arrived after the commit (see `_write_records`; `committed` as there)."""
    run = current_run_in(instance) if producer_from_context else None
    storage = instance.storage
    try:
        writer: pipeline.Writer | pipeline.Outcome
        if job is not None and instance.dialect != "postgresql":  # SQLite: one thread
            plans, writer, late = pipeline.save_offloaded(
                instance,
                new,
                job,
                lambda artifact, result: plan_stored(storage, artifact, made, result),
                progress,
                run,
                _retried,
                edits,
            )
        else:  # PostgreSQL: the records written by a thread while the server works
            plans, writer, late = pipeline.save(
                instance,
                new,
                plan_one,
                progress,
                run,
                _retried,
                job,
                lambda artifact, result: plan_stored(storage, artifact, made, result),
                edits,
            )
        committed = [] if committed is None else committed
        if writer.committed:
            committed.append(True)
            settle(instance, (), writer.new_storage)  # detached while it committed
        else:
            checked = guarded(instance, None)
            first = None if edits is None else edits.before(None)
            late = _write_with_retries(
                instance,
                plans,
                checked,
                producer_from_context,
                writer.error,
                before=first,
                committed=committed,
            )
    except BaseException as exc:
        if committed:  # an interrupt on the way out of a committed save: saved
            return plans, exc
        if job is not None:  # the files it stored after the failure: removed below
            job.finish(lambda artifact, result: plan_stored(storage, artifact, made, result))
        clear = missing_reference(instance, [p.artifact for p in made], exc)  # before forget
        forget(made)
        _cleanup(instance, made)
        if clear is not None:
            raise clear from exc
        raise
    return plans, late


def _write_with_retries(
    instance: Instance,
    plans: Sequence[Plan],
    checked: InTransaction,
    producer_from_context: bool,
    failed: BaseException | None = None,
    *,
    before: InTransaction | None = None,
    committed: list[bool] | None = None,
) -> BaseException | None:
    """`_write_records`, again after a concurrent writer or delete got in the way (`failed`:
    how a first attempt made elsewhere ended); returns what `_write_records` returns."""
    for attempt in range(RETRIES):
        try:
            if failed is not None:
                error, failed = failed, None
                raise error
            return _write_records(
                instance,
                plans,
                checked,
                producer_from_context=producer_from_context,
                before=before,
                committed=committed,
            )
        except BytesGone as exc:
            forget(plans)
            if attempt == RETRIES - 1:
                raise IntegrityProblem(
                    "stored bytes kept disappearing while this save wrote its records "
                    "(a concurrent delete or gc): nothing was saved"
                ) from exc
            restore(instance, exc.plans)
        except (IntegrityError, OperationalError) as exc:
            # Another writer saved the same key concurrently: re-read and retry.
            if attempt == RETRIES - 1 or not retryable(exc):
                saving = [p.artifact for p in plans]
                clear = missing_reference(instance, saving, exc) or hidden_key(
                    instance, saving, exc
                )
                if clear is not None:
                    raise clear from exc
                raise
            forget(plans)
    raise AssertionError("unreachable: the last attempt returns or raises")
