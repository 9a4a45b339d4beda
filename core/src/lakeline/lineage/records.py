"""Writing lineage records: versioned transforms, runs and their status transitions, inputs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote  # json.dumps's, for a str
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from lakeline.db.locks import lock_keys
from lakeline.db.rows import fill_new
from lakeline.errors import InvalidValue, LakelineError
from lakeline.ids import new_stem, new_uid, suffix_index, versioned_uid
from lakeline.lineage.liveness import this_host
from lakeline.models import Run, Transform
from lakeline.models.base import JSONText, check_aware, check_json, utcnow
from lakeline.models.run import ENGINE_REF_LENGTH, RUN_STATUSES
from lakeline.models.transform import TRANSFORM_KINDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from lakeline.models import Artifact

FINAL_STATUSES = ("completed", "errored", "aborted", "cached")
PARAMS_TEXT = "_params_text"  # a new run's attribute: its params' JSONText (`new_run`)
LOG_TEXT = "_log_text"  # and its status log's (`new_run`, `run_rows.finish_queued`)


def log_text(log: Any, status: str, at_text: str) -> JSONText:
    """`log` (a new run's status log: its JSONText, or None for none) with the entry
    {"status": status, "at": at_text} appended: the new list with its JSON text, as
    `json.dumps` writes it, made from the texts of the entries before (no dump of the list)."""
    entry = '{"status": ' + _quote(status) + ', "at": ' + _quote(at_text) + "}"
    if log is None:
        return JSONText([{"status": status, "at": at_text}], "[" + entry + "]")
    head = log.text[:-1]
    return JSONText(
        [*log.value, {"status": status, "at": at_text}],
        f"{head}, {entry}]" if log.value else f"[{entry}]",
    )


def ensure_transform(
    session: Session,
    *,
    key: str,
    kind: str,
    source_code: str | None = None,
    hash: str | None = None,
    reference: str | None = None,
    reference_type: str | None = None,
    parent_id: int | None = None,
    description: str | None = None,
    version: str | None = None,
    created_by_id: int | None = None,
) -> Transform:
    """The transform with this key, kind and parent for this code; a new version if it changed.

    Without a hash, the latest transform of that key is reused as it is.
    """
    if kind not in TRANSFORM_KINDS:
        raise LakelineError(f"unknown transform kind {kind!r}; kinds: {', '.join(TRANSFORM_KINDS)}")
    if not key:
        raise LakelineError("a transform needs a key (a script name, rule, task, ...)")
    lock_keys(session, "transform", [f"{kind}:{parent_id}:{key}"])
    versions = _versions(session, key, kind, parent_id)
    latest = next((t for t in versions if t.is_latest), None)
    if hash is None and latest is not None:
        return latest
    for candidate in reversed(versions):
        if candidate.hash == hash:
            return candidate
    if latest is None:
        stem, index = new_stem(), 0
    else:
        stem = latest.stem
        top = session.scalar(select(func.max(Transform.uid)).where(Transform.stem == stem))
        index = suffix_index(str(top)[-4:]) + 1
        session.execute(update(Transform).where(Transform.id == latest.id).values(is_latest=False))
        description = description or latest.description
    return _insert_transform(
        session,
        {
            "key": key,
            "kind": kind,
            "description": description,
            "source_code": source_code,
            "hash": hash,
            "reference": reference,
            "reference_type": reference_type,
            "parent_id": parent_id,
            "uid": versioned_uid(stem, index),
            "created_at": utcnow(),
            "created_by_id": created_by_id,
            "stem": stem,
            "version": version,
            "is_latest": True,
        },
    )


# SQL text built once a process: a select or insert construct costs ~0.3-1 ms to compile per
# engine (a first run in a fresh process: each integration's run), the ORM's flush of one
# object ~0.5 ms more than the statement
_TRANSFORM_SQL: dict[Any, Any] = {}


def _versions(session: Session, key: str, kind: str, parent_id: int | None) -> list[Transform]:
    """The transforms of `key`, `kind` and `parent_id` (every version), by uid: detached
    records, as a session that then closed leaves them."""
    from lakeline.artifacts.settle import detach
    from lakeline.models.base import Str

    top = parent_id is None
    stmt = _TRANSFORM_SQL.get(("versions", top))
    if stmt is None:
        from sqlalchemy import BindParameter, Integer, bindparam, text

        table = Transform.__table__
        names = ", ".join(f'transforms."{column.name}"' for column in table.columns)
        parent = "IS NULL" if top else "= :parent_id"
        sql = (
            f'SELECT {names} FROM transforms WHERE transforms."key" = :key AND '
            f"transforms.kind = :kind AND transforms.parent_id {parent} ORDER BY transforms.uid"
        )
        binds: list[BindParameter[Any]] = [  # a NUL byte refused, as the ORM's comparison
            bindparam("key", type_=Str()),
            bindparam("kind", type_=Str()),
        ]
        if not top:
            binds.append(bindparam("parent_id", type_=Integer))
        stmt = text(sql).bindparams(*binds).columns(*table.columns)
        _TRANSFORM_SQL["versions", top] = stmt
    if session.autoflush:  # as the ORM's select does: records pending in the session seen
        session.flush()
    params: dict[str, Any] = {"key": key, "kind": kind}
    if not top:
        params["parent_id"] = parent_id
    keys = [column.key for column in Transform.__table__.columns]
    new = Transform.__mapper__.class_manager.new_instance
    found = []
    for row in session.execute(stmt, params):
        record: Transform = new()
        fill_new(record, dict(zip(keys, row, strict=True)))
        found.append(record)
    detach(found)  # type: ignore[arg-type]  # any mapped class
    _stamped(session, found)
    return found


def _insert_transform(session: Session, values: dict[str, Any]) -> Transform:
    """INSERT a new transform with `values` (every column but the id) in `session`'s
    transaction: SQL for the driver, values bound as the columns' types bind them (as
    `run_rows.insert_run`); a detached record with its id."""
    from lakeline.artifacts.settle import detach
    from lakeline.db.rows import bound_values

    connection = session.connection()
    dialect = connection.dialect
    table = Transform.__table__
    names = list(values)
    sql = _TRANSFORM_SQL.get(("insert", dialect.name))
    if sql is None:
        quote = dialect.identifier_preparer.quote
        mark = "%s" if dialect.name == "postgresql" else "?"
        sql = (
            f"INSERT INTO transforms ({', '.join(quote(table.c[name].name) for name in names)}) "
            f"VALUES ({', '.join([mark] * len(names))}) RETURNING id"
        )
        _TRANSFORM_SQL["insert", dialect.name] = sql
    (bound,) = bound_values(table, dialect, names, [values])  # type: ignore[arg-type]
    new_id = connection.exec_driver_sql(sql, tuple(bound)).one()[0]
    record: Transform = Transform.__mapper__.class_manager.new_instance()
    fill_new(record, {**values, "id": new_id})
    detach([record])  # type: ignore[list-item]
    _stamped(session, [record])
    return record


def _stamped(session: Session, records: Sequence[Transform]) -> None:
    """Note on `records` the session's instance, as a load or flush there notes it."""
    from lakeline.db.session import stamp

    instance = session.info.get("lakeline_instance")
    if instance is not None:
        for record in records:
            stamp(record, instance)


def log_status(run: Run, status: str, at: datetime | None = None) -> None:
    """Move `run` to `status`, recording the transition and its time."""
    if status not in RUN_STATUSES:
        raise LakelineError(f"unknown run status {status!r}; statuses: {', '.join(RUN_STATUSES)}")
    at = utcnow() if at is None else check_aware(at)
    run.status = status
    run.status_log = [*(run.status_log or []), {"status": status, "at": at.isoformat()}]
    if status == "scheduled" and run.scheduled_at is None:
        run.scheduled_at = at
    if status == "started" and run.started_at is None:
        run.started_at = at
    if status in FINAL_STATUSES:
        run.finished_at = at


def new_run(
    transform: Transform,
    *,
    status: str = "started",
    params: dict[str, Any] | None = None,
    parent_id: int | None = None,
    engine: str | None = None,
    engine_ref: str | None = None,
    environment: Artifact | None = None,
    host: str | None = None,
    created_by_id: int | None = None,
    at: datetime | None = None,
    params_checked: bool = False,
    params_text: str | None = None,
) -> Run:
    """A new run of `transform` (not yet added to a session), with `status` logged at `at`
    (as `log_status` logs it). Built without the ORM's attribute events (`fill_new`): the
    capture hot path makes one per engine task. `params_checked`: `params` found clean by
    `track.run_params` (not walked again); `params_text`: their JSON text, checked
    (`track.checked_params`), which the run's insert binds as it is unless its params were
    set anew since (`run_rows._row`). `host`: by default the process's (`this_host`,
    read once a process, as the liveness check compares it)."""
    if status not in RUN_STATUSES:
        raise LakelineError(f"unknown run status {status!r}; statuses: {', '.join(RUN_STATUSES)}")
    # refused here, not by the insert: a BatchRecorder's queued run would fail every flush
    if engine_ref is not None and (
        "\x00" in engine_ref
        or len(engine_ref) > ENGINE_REF_LENGTH
        or not engine_ref.isascii()  # a lone surrogate: no database encodes it
    ):
        from lakeline.values import check_text

        check_text(engine_ref, ENGINE_REF_LENGTH, "a run's engine reference (engine_ref)")
    if params is not None and not params_checked:
        try:
            check_json(params)
        except InvalidValue as exc:
            raise InvalidValue(f"a run's params: {exc}") from None
    if at is None:
        at = utcnow()
    elif at.tzinfo is not UTC:  # (UTC's: aware)
        check_aware(at)
    log = log_text(None, status, _iso(at))
    run: Run = (_NEW_RUN or _new_run_maker())()
    fill_new(
        run,
        {
            "uid": new_uid(),
            "transform_id": transform.id,
            "params": params,
            "parent_id": parent_id,
            "engine": engine,
            "engine_ref": engine_ref,
            "environment_id": None if environment is None else environment.id,
            "host": host or this_host(),
            "created_by_id": created_by_id,
            "status": status,
            "status_log": log.value,
            "scheduled_at": at if status == "scheduled" else None,
            "started_at": at if status == "started" else None,
            "finished_at": at if status in FINAL_STATUSES else None,
        },
    )
    own = vars(run)
    own[LOG_TEXT] = log
    if params_text is not None:
        own[PARAMS_TEXT] = JSONText(params, params_text)
    return run


# the text of a minute ("YYYY-MM-DDTHH:MM:"), by (year, month, day, hour, minute): a run's
# status log entries fall in a few minutes; cleared when it holds 4096
_minutes: dict[tuple[int, int, int, int, int], str] = {}


def _iso(at: datetime) -> str:
    """`at.isoformat()`; a datetime in UTC made of its minute's text and its seconds (~12.6k
    instructions -> ~8k: a run's first status log entry)."""
    if at.__class__ is not datetime or at.tzinfo is not UTC:
        return at.isoformat()
    minute = (at.year, at.month, at.day, at.hour, at.minute)
    head = _minutes.get(minute)
    if head is None:
        if len(_minutes) >= 4096:
            _minutes.clear()
        head = _minutes[minute] = "%04d-%02d-%02dT%02d:%02d:" % minute  # noqa: UP031
    if at.microsecond:
        return "%s%02d.%06d+00:00" % (head, at.second, at.microsecond)  # noqa: UP031
    return "%s%02d+00:00" % (head, at.second)  # noqa: UP031


_NEW_RUN: Any = None  # the ORM's constructor of a Run without `__init__` (`_new_run_maker`)


def _new_run_maker() -> Any:
    """`Run`'s class manager's `new_instance`, looked up once (three attribute reads a run)."""
    global _NEW_RUN
    _NEW_RUN = Run.__mapper__.class_manager.new_instance
    return _NEW_RUN


def fire(hook_name: str, **kwargs: Any) -> None:
    """Call an observer hook; plugins must not break the user's run, so errors are logged."""
    fire_each(hook_name, [kwargs])


def fire_each(
    hook_name: str, calls: Sequence[dict[str, Any]], looked: list[bool] | None = None
) -> None:
    """`fire(hook_name, **kwargs)` for each of `calls` (a flush's runs, edges), whether
    anyone acts on the hook asked once: nobody listening, or only the OpenLineage emitter
    with no destination set (it would return at once), costs no call (~5 us each).
    `looked`: where hooks fired together (a flush's) keep whether the emitter has a
    destination, its environment read once for them all (an empty list: not read yet)."""
    if not calls:
        return
    try:
        caller = _acting(hook_name, looked)
    except Exception:
        logging.getLogger("lakeline").exception("plugin hook %s failed", hook_name)
        return
    if caller is None:
        return
    for kwargs in calls:
        try:
            caller(**kwargs)
        except Exception:
            logging.getLogger("lakeline").exception("plugin hook %s failed", hook_name)


_hooks: list[Any] = []  # (the emitter module, get_plugin_manager), imported at first use


def _acting(hook_name: str, looked: list[bool] | None = None) -> Any:
    """The hook's caller, or None when no plugin would act on it now (`looked`: see
    `fire_each`)."""
    if not _hooks:  # imported once (an import statement costs ~6k instructions a call)
        from lakeline.exporters import openlineage_emitter
        from lakeline.plugins import get_plugin_manager

        _hooks[:] = [openlineage_emitter, get_plugin_manager]
    emitter, get_plugin_manager = _hooks
    caller = getattr(get_plugin_manager().hook, hook_name)
    impls = caller.get_hookimpls()
    if not impls:  # nobody listens (`artifact_used` by default): no look at the environment
        return None  # (the emitter's `active`: two variables read, ~17k instructions)
    idle = (emitter.run_started, emitter.run_finished)
    if all(impl.function in idle for impl in impls):
        if looked is None:
            active = emitter.active()
        elif looked:
            active = looked[0]
        else:
            active = emitter.active()
            looked.append(active)
        if not active:
            return None  # the emitter alone, with nowhere to send: it returns at once
    return caller
