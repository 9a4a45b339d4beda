"""A run or a used-by edge the database refused, as one clear error: a run hidden by space
rules (PostgreSQL row security: another run holds its engine id in a space the role does not
see), or a run, transform or user it names that does not exist (deleted since it was read).
Only a concurrent insert of the same run is taken as "recorded already: use it"."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

from sqlalchemy.exc import IntegrityError

from lakeline import checkpoints
from lakeline.db.errors import foreign_key_violation, reason_of, unique_violation
from lakeline.errors import LakelineError, MissingReference, PermissionDenied

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance
    from lakeline.lineage.batching import BatchRecorder
    from lakeline.lineage.handles import Handle
    from lakeline.lineage.recorder import Recorder
    from lakeline.models import Run

E = TypeVar("E", bound=BaseException)
log = logging.getLogger("lakeline.recorder")

# a run's references: column -> (table, what it names)
RUN_REFERENCES = {
    "parent_id": ("runs", "parent run"),
    "transform_id": ("transforms", "transform"),
    "cached_from_id": ("runs", "cached-from run"),
    "created_by_id": ("users", "user"),
}
_DETAIL = re.compile(r"Key \((?P<column>\w+)\)=\((?P<value>[^)]*)\) is not present in table")


def hidden_run(instance: Instance, engine: str, engine_ref: str | None) -> PermissionDenied | None:
    """PermissionDenied naming run `engine_ref` if the connected role is held to spaces (it
    cannot see the run that holds that engine id: another space's), else None."""
    if instance.engine.dialect.name != "postgresql":
        return None
    from sqlalchemy import text

    from lakeline.db.pg_helpers import helpers

    try:
        with instance.sessions.read() as session:
            conn = session.connection()
            spaces, role = conn.execute(
                text(f"SELECT {helpers(conn)}.lakeline_spaces(), session_user")
            ).one()
    except Exception:  # the caller's own error is the one to raise
        return None
    if spaces is None:
        return None
    return PermissionDenied(
        f"cannot record run {engine_ref!r} of engine {engine!r}: a run with that engine id is "
        f"recorded in a space role {role!r} is not a member of (it "
        "cannot see it): use another engine run id, or ask an admin to move that run "
        "(`lakeline space add --run UID --to SPACE`); nothing was recorded"
    )


def clashed(rec: Recorder, exc: IntegrityError, run: Run) -> Run:
    """The run recorded under the engine id of new `run`, whose insert raised `exc`: found (a
    replay, a concurrent insert), or `run` itself, inserted again when the run it met is not
    found (deleted since the clash, no error; else hidden by space rules: raised as such).
    Raises `refuse_run`'s error for any other refusal."""
    from lakeline.lineage.run_rows import insert_run, single_statement

    assert rec.instance is not None
    ref = str(vars(run).get("engine_ref"))
    if unique_violation(exc):
        checkpoints.reach("recorder.clash")
        found = rec._find(ref)
        if found is not None:
            return found
        try:
            with single_statement(rec.instance) as session:
                insert_run(session, run)
            return run
        except IntegrityError as again:
            found = rec._find(ref) if unique_violation(again) else None
            if found is not None:
                return found
            exc = again
    refuse_run(rec.instance, exc, run)


def finish_unlinked(
    instance: Instance, step: Handle, original: Run | None, finish: Callable[[Run | None], Run]
) -> Run:
    """`finish(original)`, the finish of `step` cached from `original`; if the database refuses
    it because `original` was deleted since it was looked up, `finish(None)`: the step recorded
    without its cached-from link (a fact missing, none wrong), with a warning."""
    try:
        return finish(original)
    except (IntegrityError, MissingReference) as exc:  # a save's: the foreign key's its cause
        cause = exc if isinstance(exc, IntegrityError) else exc.__cause__
        if original is None or cause is None or not foreign_key_violation(cause):
            raise
        missing = _missing(instance, cause, {"cached_from_id": original.id})
        if missing is None or missing[0] != "cached_from_id":  # another record: not this case
            raise
        log.warning(
            "lakeline: step %r was cached from run id %s, deleted since: recorded without its "
            "cached-from link",
            step.engine_ref,
            original.id,
        )
    return finish(None)


def naming(error: E, steps: Iterable[Handle]) -> E:
    """`error`, naming the queued `steps` it refuses (a flush leaves them out: batch_refusals)."""
    error.__dict__["refused_steps"] = list(steps)
    return error


def insert_again(
    rec: BatchRecorder, session: Session, lost: Sequence[Handle], found: dict[str | None, Run]
) -> set[int]:
    """Queued steps whose insert met a run under their engine id that the look-up then did
    not find: a run hidden by space rules, or one deleted since (no error: recorded anew).
    Inserted again, once; those that meet a run again are looked up again (into `found`), and
    one still not found is hidden (PermissionDenied naming them) or deleted again. Returns
    id(run) of those inserted."""
    from lakeline.lineage.batch_write import _recorded
    from lakeline.lineage.run_rows import insert_new_runs

    assert rec.instance is not None
    skipped = {id(run) for run in insert_new_runs(session, [h.run for h in lost])}
    refs = [h.engine_ref for h in lost if id(h.run) in skipped]
    found.update(_recorded(rec, session, refs) if refs else {})
    still = [h for h in lost if id(h.run) in skipped and h.engine_ref not in found]
    if still:
        ref = still[0].engine_ref
        raise naming(
            hidden_run(rec.instance, rec.engine, ref)
            or LakelineError(
                f"the run of step {ref!r} was deleted twice while a flush recorded it"
            ),
            still,
        )
    return {id(h.run) for h in lost if id(h.run) not in skipped}


def gone_reference(ref: str | None, column: str, value: object) -> MissingReference:
    """The error for new run `ref` whose `column` (RUN_REFERENCES) names id `value`, gone."""
    return MissingReference(
        f"cannot record run {ref!r}: its {RUN_REFERENCES[column][1]} id {value} ({column}) "
        "does not exist (deleted since this process read it); nothing was recorded"
    )


def gone_step(ref: str | None, run_id: int) -> MissingReference:
    """The error for step `ref` of a batch, whose run (id `run_id`) was deleted since it was
    written."""
    return MissingReference(
        f"cannot record step {ref!r}: its run id {run_id} does not exist (deleted since this "
        "process wrote it); nothing was recorded"
    )


def reused_ids(runs: Sequence[Run], given: Collection[int]) -> None:
    """Raise `gone_reference` for the first of `runs`, just inserted, that names a run by an
    id in `given` (those the statement gave out): SQLite gives a new row the highest id + 1,
    so a run naming a run deleted since (the highest then) names a new one, maybe itself,
    and its foreign key holds. The runs a statement names are older than it: never one of
    its own (PostgreSQL's sequences never give an id twice)."""
    for run in runs:
        own = vars(run)
        for column in ("parent_id", "cached_from_id"):
            if own.get(column) in given:
                raise gone_reference(own.get("engine_ref"), column, own[column])


def refuse_runs(instance: Instance, exc: BaseException, runs: Sequence[Run]) -> NoReturn:
    """`refuse_run` for the refused insert of `runs` in one statement: a foreign key's refusal
    names the first run naming a record that does not exist; anything else is raised as it
    is."""
    if foreign_key_violation(exc):
        for run in runs:
            own = vars(run)
            missing = _missing(instance, exc, own)
            if missing is not None and str(own.get(missing[0])) == missing[1]:
                refuse_run(instance, exc, run)
    raise exc


def refuse_run(instance: Instance, exc: BaseException, run: Run) -> NoReturn:
    """Raise the clear error for `exc`, the refused insert of new `run` that no recorded run
    explains (none found under its engine id): a foreign key's refusal names the record that
    does not exist, a unique clash the hidden run; anything else is raised as it is."""
    own = vars(run)
    ref = own.get("engine_ref")
    if foreign_key_violation(exc):
        missing = _missing(instance, exc, own)
        if missing is not None:
            raise gone_reference(ref, *missing) from exc
        raise MissingReference(
            f"cannot record run {ref!r}: a record it names does not exist "
            f"({reason_of(getattr(exc, 'orig', None) or exc)}); nothing was recorded"
        ) from exc
    if unique_violation(exc):
        hidden = hidden_run(instance, str(own.get("engine")), ref)
        if hidden is not None:
            raise hidden from exc
    raise exc


def refused_input(instance: Instance, exc: BaseException, run: Run) -> None:
    """Return if `exc`, the refused insert of `run`'s used-by edge to a known artifact, says
    the artifact is gone (deleted since it was read: register the file again); else raise
    MissingReference naming the run if it is gone, or `exc`."""
    if not foreign_key_violation(exc):
        raise exc
    missing = _missing(instance, exc, {"parent_id": run.id})
    if missing is None:  # PostgreSQL named artifact_id, or the run is there: the artifact went
        return
    raise MissingReference(
        f"cannot record that run {run.engine_ref!r} used a file: the run (id {run.id}) does "
        "not exist (deleted since this process recorded it); nothing was recorded"
    ) from exc


def _missing(
    instance: Instance, exc: BaseException, own: dict[str, object]
) -> tuple[str, str] | None:
    """(column, id) of the reference in `own` (a run's columns) that `exc` says, or a look-up
    finds, is absent; None when none is (PostgreSQL named a column not in RUN_REFERENCES)."""
    detail = getattr(getattr(getattr(exc, "orig", None), "diag", None), "message_detail", None)
    found = _DETAIL.search(detail or "")
    if found is not None:  # PostgreSQL says which
        column = found["column"]
        if column == "run_id":
            column = "parent_id"  # run_inputs' run: the edge's own run, passed as parent_id
        return (column, found["value"]) if column in RUN_REFERENCES else None
    from sqlalchemy import column as col
    from sqlalchemy import select, table

    try:
        with instance.sessions.read() as session:
            for name, (target, _) in RUN_REFERENCES.items():
                value = own.get(name)
                if value is None:
                    continue
                rows = table(target, col("id"))
                if session.scalar(select(rows.c.id).where(rows.c.id == value)) is None:
                    return name, str(value)
    except LakelineError:
        return None
    return None
