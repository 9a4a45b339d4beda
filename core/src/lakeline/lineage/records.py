"""Writing lineage records: versioned transforms, runs and their status transitions, inputs."""

from __future__ import annotations

import logging
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from lakeline.db.locks import lock_keys
from lakeline.db.rows import fill_new
from lakeline.errors import InvalidValue, LakelineError
from lakeline.ids import new_stem, new_uid, suffix_index, versioned_uid
from lakeline.models import Run, Transform
from lakeline.models.base import check_aware, check_json, utcnow
from lakeline.models.run import ENGINE_REF_LENGTH, RUN_STATUSES
from lakeline.models.transform import TRANSFORM_KINDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from lakeline.models import Artifact

FINAL_STATUSES = ("completed", "errored", "aborted", "cached")


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
    same = select(Transform).where(
        Transform.key == key,
        Transform.kind == kind,
        Transform.parent_id.is_(parent_id)
        if parent_id is None
        else Transform.parent_id == parent_id,
    )
    versions = list(session.scalars(same.order_by(Transform.uid)))
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
    transform = Transform(
        uid=versioned_uid(stem, index),
        stem=stem,
        is_latest=True,
        key=key,
        kind=kind,
        source_code=source_code,
        hash=hash,
        reference=reference,
        reference_type=reference_type,
        parent_id=parent_id,
        description=description,
        version=version,
        created_by_id=created_by_id,
    )
    session.add(transform)
    session.flush()
    return transform


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
) -> Run:
    """A new run of `transform` (not yet added to a session), with `status` logged at `at`
    (as `log_status` logs it). Built without the ORM's attribute events (`fill_new`): the
    capture hot path makes one per engine task."""
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
    if params is not None:
        try:
            check_json(params)
        except InvalidValue as exc:
            raise InvalidValue(f"a run's params: {exc}") from None
    at = utcnow() if at is None else check_aware(at)
    run: Run = Run.__mapper__.class_manager.new_instance()
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
            "host": host or socket.gethostname(),
            "created_by_id": created_by_id,
            "status": status,
            "status_log": [{"status": status, "at": at.isoformat()}],
            "scheduled_at": at if status == "scheduled" else None,
            "started_at": at if status == "started" else None,
            "finished_at": at if status in FINAL_STATUSES else None,
        },
    )
    return run


def fire(hook_name: str, **kwargs: Any) -> None:
    """Call an observer hook; plugins must not break the user's run, so errors are logged."""
    fire_each(hook_name, [kwargs])


def fire_each(hook_name: str, calls: Sequence[dict[str, Any]]) -> None:
    """`fire(hook_name, **kwargs)` for each of `calls` (a flush's runs, edges), whether
    anyone acts on the hook asked once: nobody listening, or only the OpenLineage emitter
    with no destination set (it would return at once), costs no call (~5 us each)."""
    if not calls:
        return
    try:
        caller = _acting(hook_name)
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


def _acting(hook_name: str) -> Any:
    """The hook's caller, or None when no plugin would act on it now."""
    from lakeline.exporters import openlineage_emitter as emitter
    from lakeline.plugins import get_plugin_manager

    caller = getattr(get_plugin_manager().hook, hook_name)
    impls = caller.get_hookimpls()
    idle = (emitter.run_started, emitter.run_finished)
    if all(impl.function in idle for impl in impls) and not emitter.active():
        return None  # the emitter alone, with nowhere to send: it returns at once
    return caller
