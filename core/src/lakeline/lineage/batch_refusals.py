"""A BatchRecorder's flush refused by the database for some of its steps: those steps are left
out of the batch, named, and the rest is written by the same flush (`flush_leaving_out`).

Before, the batch stayed queued whole and every later flush, the exit flush included, failed
with the same error: the workflow's later steps were all lost. Now, after a failed flush (off
the hot path), a look-up of what the batch names finds the steps it cannot record: a run,
parent run, transform or user they name that does not exist (deleted since this process
read it), a run hidden by space rules (named by the flush, `refusals.naming`),
a step left out of an earlier batch, and the queued steps under any of those. They leave the
queue with what only they name: their finishes and used-by edges, the files only they used
or produced (a file another step used is written without that producer: a fact missing, none
wrong). A file used whose record was deleted since this Recorder saved it is hashed again;
a finish cached from a run deleted since loses that link, not its step (`_unlink`, a warning).
The flush is then made again; what it leaves out is logged at once and raised as
`StepsNotRecorded` by the next `flush()`, `flush_if_due`, `flush_idle` or `finish_workflow`
(a flush inside another call does its own work, as the call asked, and does not raise it,
unless the call then records unbatched something of a step it left out: `unbatched`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lakeline.errors import MissingReference, StepsNotRecorded
from lakeline.lineage.handles import loaded
from lakeline.lineage.hidden_runs import (
    hidden_reason,
    hidden_runs,
    role_of,
    unseen_reason,
    unseen_runs,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.orm import Session

    from lakeline.lineage.batching import BatchRecorder
    from lakeline.lineage.handles import FileRecord, Handle
    from lakeline.lineage.run_rows import Finish
    from lakeline.models import Artifact, Run

log = logging.getLogger("lakeline.recorder")
SHOWN = 10  # steps named in an error's text (`StepsNotRecorded.steps` has them all)


@dataclass
class Refused:
    """What a look-up after a failed flush found the batch cannot record."""

    steps: dict[int, tuple[Handle, str]] = field(default_factory=dict)  # by id(handle): why
    artifacts: set[int] = field(default_factory=set)  # ids of linked records deleted since
    # finishes cached from runs gone or no longer seen, and why: (step, finish, why)
    unlinked: list[tuple[Handle, Finish, str]] = field(default_factory=list)
    gone_runs: list[Run] = field(default_factory=list)  # the records of runs deleted since

    def add(self, handle: Handle, why: str) -> None:
        self.steps.setdefault(id(handle), (handle, why))


def flush_leaving_out(rec: BatchRecorder) -> None:
    """`rec._write()`, made again after leaving out what the database refused, until it
    writes or fails for another reason (raised, the batch queued as `_write` leaves it)."""
    if rec._gone_runs:  # what names a run found deleted before: left out before the write
        _leave_out_stale(rec)
    while True:
        try:
            rec._write()
            return
        except Exception as exc:
            refused = _refused(rec, exc)
            if refused is None or not (refused.steps or refused.artifacts or refused.unlinked):
                raise
            _unlink(rec, [u for u in refused.unlinked if id(u[0]) not in refused.steps])
            left = _leave_out(rec, refused)
            if left:
                log.warning("lakeline: %s", _text(left))
            rec._left_out.update((ref, (why, exc)) for ref, why in left.items())


def raise_left_out(rec: BatchRecorder) -> None:
    """Raise StepsNotRecorded for the steps left out since it was last raised, if any."""
    left, rec._left_out = rec._left_out, {}
    if left:
        steps = {ref: why for ref, (why, _) in left.items()}
        raise StepsNotRecorded(_text(steps), steps) from next(iter(left.values()))[1]


def check_recorded(rec: BatchRecorder, step: object) -> None:
    """After a flush inside a call that records something of `step` unbatched (a use, a
    reference, a link, a mark): raise StepsNotRecorded if the step is not recorded, left out
    by that flush or before (its run has no row: the call would name none). Before, the call
    went on and the database refused it (run_inputs.run_id NULL: an IntegrityError)."""
    from lakeline.lineage.handles import Handle

    if not isinstance(step, Handle) or loaded(step.run, "id") is not None:
        return
    if rec._runs.get(step.engine_ref, (None,))[0] is step:
        return  # still queued (not the case after a flush: all its runs are inserted)
    why = "it was not recorded (left out of a batch)"
    cause = MissingReference(f"step {step.engine_ref!r} is not recorded")
    rec._left_out.setdefault(str(step.engine_ref), (why, cause))
    raise_left_out(rec)


def unbatched(rec: BatchRecorder, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Recorder.<name>(*args, **kwargs)`, called after a flush, for what the flush's steps
    recorded: a step it names that is not recorded raises StepsNotRecorded (`check_recorded`);
    a file of `save_files` or an edge of `link_many` that names only such steps is not
    recorded (None in its place), one that names others too is, without them (as a flush
    leaves out what only they named)."""
    from lakeline.lineage.recorder import Recorder

    if name == "save_files":
        files = [_recorded_file(f) for f in (args[0] if args else kwargs["files"])]
        saved = iter(Recorder.save_files(rec, [f for f in files if f is not None]))
        return [None if f is None else next(saved) for f in files]
    if name == "link_many":
        edges = args[0] if args else kwargs["edges"]
        return Recorder.link_many(rec, [e for e in edges if _recorded(e[0])])
    check_recorded(rec, args[0] if args else kwargs.get("step"))  # by position or keyword
    return getattr(Recorder, name)(rec, *args, **kwargs)


def _recorded(step: Handle | None) -> bool:
    return step is not None and loaded(step.run, "id") is not None


def _recorded_file(f: FileRecord) -> FileRecord | None:
    """`f` without the steps not recorded; None if it named only those."""
    users = [(u, role) for u, role in f.used_by if _recorded(u)]
    producer = f.producer if _recorded(f.producer) else None
    if (producer, users) == (f.producer, f.used_by):
        return f
    if producer is None and not users and (f.producer is not None or f.used_by):
        return None
    return replace(f, producer=producer, used_by=users)


def _text(steps: dict[str, str]) -> str:
    shown = "; ".join(f"{ref!r}: {why}" for ref, why in list(steps.items())[:SHOWN])
    more = f"; and {len(steps) - SHOWN} more" if len(steps) > SHOWN else ""
    return (
        f"{len(steps)} step(s) not recorded, left out of the Recorder's batch with what only "
        f"they named (the rest of the batch was written): {shown}{more}"
    )


def _refused(rec: BatchRecorder, exc: BaseException) -> Refused | None:
    """What the batch names that the database cannot record (None: the look-up failed)."""
    assert rec.instance is not None
    queued = {id(h): (h, p) for h, p in rec._runs.values()}
    refused = Refused()
    for handle in vars(exc).get("refused_steps", ()):  # hidden by space rules, named by the flush
        if id(handle) in queued:
            refused.add(handle, str(exc))
    named: dict[int, Handle] = {id(h): h for h, _ in queued.values()}
    named.update((id(s), s) for s, _ in rec._finishes)
    for f in rec._files.values():
        named.update((id(u), u) for u, _ in f.used_by)
        if f.producer is not None:
            named[id(f.producer)] = f.producer
    named.update((id(u), u) for u, _, _ in rec._links)
    runs: dict[int, list[tuple[Handle, str]]] = {}  # run id -> the steps it fails, and why
    holders: dict[int, list[Run]] = {}  # run id -> the records of the batch holding it
    others: dict[str, dict[int, list[tuple[Handle, str]]]] = {"transforms": {}, "users": {}}
    for key, handle in named.items():
        run_id = loaded(handle.run, "id")
        if key not in queued:
            if run_id is None:
                refused.add(handle, "it was not recorded (left out of an earlier batch)")
            else:
                runs.setdefault(run_id, []).append((handle, f"its run (id {run_id})"))
                holders.setdefault(run_id, []).append(handle.run)
            continue
        if run_id is not None:  # inserted by an interrupted flush: the flush finds it again
            continue
        parent = queued[key][1]
        parent_id = loaded(parent.run, "id")
        if parent_id is not None:
            runs.setdefault(parent_id, []).append((handle, f"its parent run id {parent_id}"))
            holders.setdefault(parent_id, []).append(parent.run)
        elif id(parent) not in queued:
            refused.add(handle, f"its parent step {parent.engine_ref!r} is not recorded")
        own = vars(handle.run)
        for table, column, what in (
            ("transforms", "transform_id", "transform"),
            ("users", "created_by_id", "user"),
        ):
            value = own.get(column)
            if value is not None:
                others[table].setdefault(value, []).append((handle, f"its {what} id {value}"))
    cached: dict[int, list[tuple[Handle, Finish]]] = {}  # a finish's cached-from run id
    for step, change in rec._finishes:
        if change.cached_from_id is not None:
            cached.setdefault(change.cached_from_id, []).append((step, change))
    linked = {loaded(a, "id") for _, a, _ in rec._links} - {None}
    try:
        with rec.instance.sessions.read() as session:
            for table, wanted in (("runs", runs), *others.items()):
                present = _present(session, table, wanted)
                # runs moved since to a space the role is not in: hidden, not gone
                hidden = hidden_runs(session, set(wanted) - present) if table == "runs" else ()
                missing = set(wanted) - present - set(hidden)
                unseen = _unseen(rec, session, missing, holders) if table == "runs" else set()
                role = role_of(session) if hidden or unseen else None
                for value, steps in wanted.items():
                    if value in hidden:
                        for handle, what in steps:
                            refused.add(handle, hidden_reason(what, role))
                    elif value in unseen:
                        for handle, what in steps:
                            refused.add(handle, unseen_reason(what, role))
                    elif value not in present:
                        if table == "runs":
                            refused.gone_runs.extend(holders.get(value, ()))
                        for handle, what in steps:
                            refused.add(handle, f"{what} does not exist (deleted since)")
            refused.artifacts = linked - _present(session, "artifacts", linked)
            refused.unlinked = _cached_gone(rec, session, cached)
    except Exception:  # the flush's own error is the one to raise
        return None
    _children(refused, queued.values())
    return refused


def _cached_gone(
    rec: BatchRecorder, session: Session, cached: dict[int, list[tuple[Handle, Finish]]]
) -> list[tuple[Handle, Finish, str]]:
    """The finishes of `cached` (by cached-from run id) whose run the role no longer sees, and
    why: deleted since, or (PostgreSQL, a role held to spaces) hidden by space rules or not
    visible to it, as for a step's own run."""
    assert rec.instance is not None
    missing = set(cached) - _present(session, "runs", cached)
    hidden = hidden_runs(session, missing)
    unseen = unseen_runs(session, missing - hidden)  # a cached-from run is anyone's
    role = role_of(session) if hidden or unseen else None
    gone: list[tuple[Handle, Finish, str]] = []
    for run_id in sorted(missing):
        what = f"its cached-from run id {run_id}"
        if run_id in hidden:
            why = hidden_reason(what, role)
        elif run_id in unseen:
            why = unseen_reason(what, role)
        else:
            why = f"{what} does not exist (deleted since)"
        gone.extend((step, change, why) for step, change in cached[run_id])
    return gone


def _unseen(
    rec: BatchRecorder, session: Session, missing: set[int], holders: dict[int, list[Run]]
) -> set[int]:
    """Of the runs `missing` (not seen, not the role's own hidden ones), those that may be
    another role's moved to a space this role is not in rather than deleted (`unseen_runs`):
    a run this role created (a run of the batch's, as its record says) is known deleted."""
    assert rec.instance is not None
    me = rec.instance.user.id
    others = {
        run_id
        for run_id in missing
        if not any(loaded(run, "created_by_id") == me for run in holders.get(run_id, ()))
    }
    return unseen_runs(session, others)


def _children(refused: Refused, queued: Iterable[tuple[Handle, Handle]]) -> None:
    """Add to `refused` the queued steps (handle, parent) under a step it refuses."""
    queued = list(queued)
    grown = True
    while grown:
        grown = False
        for handle, parent in queued:
            if id(parent) in refused.steps and id(handle) not in refused.steps:
                refused.add(handle, f"its parent step {parent.engine_ref!r} is not recorded")
                grown = True


def _leave_out_stale(rec: BatchRecorder) -> None:
    """Leave out, before a flush writes, the queued steps that name a run an earlier flush
    found deleted (their own, their parent's): on SQLite the next run inserted takes the
    deleted run's id, and they would be recorded under it (or finish it) without an error."""
    gone = rec._gone_runs
    refused = Refused()
    for handle, parent in rec._runs.values():
        if id(parent.run) in gone:
            why = f"its parent run id {loaded(parent.run, 'id')} does not exist (deleted since)"
            refused.add(handle, why)
    named = [s for s, _ in rec._finishes] + [u for u, _, _ in rec._links]
    for f in rec._files.values():
        named.extend(u for u, _ in f.used_by)
        if f.producer is not None:
            named.append(f.producer)
    for handle in named:
        if id(handle.run) in gone:
            refused.add(
                handle, f"its run (id {loaded(handle.run, 'id')}) does not exist (deleted since)"
            )
    if not refused.steps:
        return
    _children(refused, rec._runs.values())
    left = _leave_out(rec, refused)
    log.warning("lakeline: %s", _text(left))
    cause = MissingReference(
        "a run they name was deleted since this process recorded it (found by an earlier flush)"
    )
    rec._left_out.update((ref, (why, cause)) for ref, why in left.items())


def _unlink(rec: BatchRecorder, unlinked: list[tuple[Handle, Finish, str]]) -> None:
    """The queued finishes in `unlinked` (step, finish, why), cached from a run deleted since
    the step finished (or no longer seen by the role), lose that link: the step is recorded
    cached, from no run (a fact missing, none wrong), not left out with its files and edges;
    a warning names it and why."""
    if not unlinked:
        return
    gone = {id(change) for _, change, _ in unlinked}
    rec._finishes = [
        (step, replace(change, cached_from_id=None) if id(change) in gone else change)
        for step, change in rec._finishes
    ]
    for step, change, why in unlinked:
        log.warning(
            "lakeline: step %r finished %s: %s; recorded without its cached-from link",
            step.engine_ref,
            change.status,
            why,
        )


def _present(session: Session, table: str, ids: Iterable[int]) -> set[int]:
    """Those of `ids` that `table` holds (as the connected role sees it)."""
    from sqlalchemy import column, select
    from sqlalchemy import table as table_of

    from lakeline.db.rows import chunks

    rows = table_of(table, column("id"))
    found: set[int] = set()
    for chunk in chunks(sorted(set(ids))):
        found.update(session.scalars(select(rows.c.id).where(rows.c.id.in_(chunk))))
    return found


def _leave_out(rec: BatchRecorder, refused: Refused) -> dict[str, str]:
    """Take the refused steps, and what only they name, out of `rec`'s queue; a used file
    whose record was deleted is queued again (hashed anew). Their engine refs -> why."""
    gone = refused.steps
    left = {str(h.engine_ref): why for h, why in gone.values()}
    rec._gone_runs.update((id(run), run) for run in refused.gone_runs)
    for ref in [ref for ref, (h, _) in rec._runs.items() if id(h) in gone]:
        del rec._runs[ref]
        rec._notes.pop(ref, None)
        rec._start_times.pop(ref, None)
    rec._first_start = min(rec._start_times.values(), default=None)
    rec._finishes = [(s, c) for s, c in rec._finishes if id(s) not in gone]
    for location, f in list(rec._files.items()):
        if f.producer is not None and id(f.producer) in gone:
            f.producer = None
        f.used_by = [(u, role) for u, role in f.used_by if id(u) not in gone]
        if f.producer is None and not f.used_by:  # named by steps left out only
            del rec._files[location]
    again = [(u, a, role) for u, a, role in rec._links if loaded(a, "id") in refused.artifacts]
    rec._links = [
        (u, a, role)
        for u, a, role in rec._links
        if id(u) not in gone and loaded(a, "id") not in refused.artifacts
    ]
    rec._step_transforms.clear()  # a transform deleted since: made again
    users: dict[int, tuple[Artifact, list[tuple[Handle, str]]]] = {}  # by id(artifact)
    for user, artifact, role in again:
        if id(user) not in gone:
            users.setdefault(id(artifact), (artifact, []))[1].append((user, role))
    for artifact, uses in users.values():
        _use_again(rec, artifact, uses)
    if not (rec._files or rec._links or rec._finishes):
        rec._since = None
    return left


def _use_again(rec: BatchRecorder, artifact: Artifact, uses: list[tuple[Handle, str]]) -> None:
    """Queue the steps' `uses` (user, role) of the file whose record `artifact` was deleted
    since this Recorder saved it: hashed again, as the plain Recorder registers it again."""
    key = loaded(artifact, "key")  # as the use gave it (or the save derived it)
    for location in rec._seen.locations_of(artifact):
        rec._seen.forget(location)
        where, st = rec._located(location)
        queued = [rec._queue(where, st, key=key, kind=None, producer=None, user=u) for u in uses]
        if all(queued):
            return
        uses = [u for u, done in zip(uses, queued, strict=True) if not done]
    for user, _ in uses:
        log.warning(
            "lakeline: step %r used a file whose record (id %s) was deleted since and that "
            "changed since: that use is not recorded",
            user.engine_ref,
            loaded(artifact, "id"),
        )
