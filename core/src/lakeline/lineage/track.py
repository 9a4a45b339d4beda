"""`track()` / `finish()`: a script or notebook run recorded with its code, params and environment.

    import lakeline as ll
    ll.track(params={"min_count": 5})
    ...                     # artifacts loaded/opened/cached are inputs, artifacts saved outputs
    ll.finish()

A script that raises leaves its run `errored` with the traceback; one that ends without
`finish()` is finished at exit. Notebooks must call `finish()` (their source and an HTML
report are stored then).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lakeline.errors import LakelineError
from lakeline.lineage import context
from lakeline.lineage.notebook import code_hash, code_of, html_report, in_notebook, notebook_path
from lakeline.lineage.records import ensure_transform, fire, log_status, new_run

if TYPE_CHECKING:
    from lakeline.models import Run, Transform

log = logging.getLogger("lakeline")
_lock = threading.Lock()
_previous_excepthook = sys.excepthook
_hooks_installed = False


def _script_path() -> Path | None:
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return Path(file).resolve() if file else None


def _repo_key(path: Path) -> str:
    """A script's key: its path inside the git repository that holds it, else its name."""
    for parent in path.parents:
        if (parent / ".git").exists():
            return path.relative_to(parent).as_posix()
    return path.name


def _json_safe(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _json_safe(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [_json_safe(v) for v in value]
        return repr(value)


def params_of(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Parameters as JSON (values JSON cannot hold are kept as their repr)."""
    if params is None:
        return None
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    safe: dict[str, Any] = _json_safe(params)
    return safe


def start_tracked_run(
    *,
    key: str,
    kind: str,
    source_code: str | None,
    params: dict[str, Any] | None,
    reference: str | None = None,
    reference_type: str | None = None,
    parent: Run | None = None,
    capture_environment: bool = True,
) -> tuple[Transform, Run]:
    """Find or version the transform, then record a started run of it."""
    from lakeline.instance import current
    from lakeline.lineage.environment import environment_artifact

    instance = current()
    environment = environment_artifact() if capture_environment else None
    with instance.sessions.write() as session:
        transform = ensure_transform(
            session,
            key=key,
            kind=kind,
            source_code=source_code,
            hash=None if source_code is None else code_hash(source_code),
            reference=reference,
            reference_type=reference_type,
            created_by_id=instance.user.id,
        )
        run = new_run(
            transform,
            params=params_of(params),
            parent_id=None if parent is None else parent.id,
            environment=environment,
            created_by_id=instance.user.id,
        )
        session.add(run)
    fire("run_started", run=run)
    return transform, run


def finish_run(run: Run, status: str, *, error: str | None = None, **fields: Any) -> Run:
    """Record the end of `run` (completed, errored, aborted)."""
    from lakeline.instance import current

    with current().sessions.write() as session:
        record = session.merge(run)
        log_status(record, status)
        record.error = error
        for name, value in fields.items():
            setattr(record, name, value)
    for column in type(run).__table__.columns:
        setattr(run, column.key, getattr(record, column.key))
    fire("run_finished", run=run)
    return run


def track(
    params: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    description: str | None = None,
) -> Run:
    """Start recording this script or notebook as a run; returns the run.

    The transform is keyed by the file (its path in its git repository, else its name); an
    unchanged file reuses its transform, an edited one makes a new version.
    """
    global _hooks_installed
    with _lock:
        if context.process_run() is not None:
            raise LakelineError("track() was already called in this process; call finish() first")
        notebook = in_notebook()
        path = notebook_path() if notebook else _script_path()
        if path is None and key is None:
            raise LakelineError(
                "track() cannot find the script it runs in (interactive session?): pass key="
            )
        source: str | None = None
        if path is not None:
            try:
                source = code_of(path) if notebook else path.read_text()
            except OSError as exc:
                raise LakelineError(f"cannot read {path}: {exc}") from exc
        transform, run = start_tracked_run(
            key=key or _repo_key(path),  # type: ignore[arg-type]
            kind="notebook" if notebook else "script",
            source_code=source,
            params=params,
            reference=None if path is None else str(path),
            reference_type=None if path is None else "path",
        )
        if description and not transform.description:
            _describe(transform, description)
        context.set_process_run(run)
        _state.update(path=path, notebook=notebook)
        if notebook:
            _watch_notebook_errors()
        elif not _hooks_installed:
            sys.excepthook = _excepthook
            atexit.register(_at_exit)
            _hooks_installed = True
        return run


_state: dict[str, Any] = {}


def _describe(transform: Transform, description: str) -> None:
    from lakeline.instance import current

    with current().sessions.write() as session:
        session.merge(transform).description = description


def finish() -> Run:
    """Finish the run `track()` started: completed, with its end time (and notebook report)."""
    run = context.process_run()
    if run is None:
        raise LakelineError("finish() without track(): call lakeline.track() first")
    fields: dict[str, Any] = {}
    if _state.get("notebook"):
        fields["report_id"] = _notebook_report(_state["path"]).id
    finished = finish_run(run, "completed", **fields)
    context.set_process_run(None)
    _state.clear()
    return finished


def _notebook_report(path: Path) -> Any:
    import tempfile

    from lakeline.models import Artifact

    with tempfile.TemporaryDirectory() as tmp:
        report = html_report(path, Path(tmp) / f"{path.stem}.html")
        return Artifact(report, description=f"report of {path.name}", kind="__report__").save()


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    run = context.process_run()
    if run is not None:
        status = "aborted" if issubclass(exc_type, KeyboardInterrupt) else "errored"
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            finish_run(run, status, error=text)
        except Exception:
            log.exception("lakeline could not record the failed run %s", run.uid)
        context.set_process_run(None)
    _previous_excepthook(exc_type, exc, tb)


def _watch_notebook_errors() -> None:
    """In a notebook, a cell that raises marks the run errored (a later finish() completes it)."""
    from IPython import get_ipython

    shell = get_ipython()

    def handler(
        shell: Any,
        etype: type[BaseException],
        value: BaseException,
        tb: TracebackType | None,
        tb_offset: int | None = None,
    ) -> Any:
        run = context.process_run()
        if run is not None:
            text = "".join(traceback.format_exception(etype, value, tb))
            try:
                finish_run(run, "errored", error=text)
            except Exception:
                log.exception("lakeline could not record the failed run %s", run.uid)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)

    shell.set_custom_exc((Exception,), handler)


def _at_exit() -> None:
    run = context.process_run()
    if run is not None and os.environ.get("LAKELINE_NO_AUTOFINISH") != "1":
        try:
            finish_run(run, "completed")
        except Exception:
            log.exception("lakeline could not finish run %s at exit", run.uid)
        context.set_process_run(None)
