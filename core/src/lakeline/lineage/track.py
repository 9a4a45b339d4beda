"""`track()` / `finish()`: a script or notebook run recorded with its code, params and environment.

    import lakeline as ll
    ll.track(params={"min_count": 5})
    ...                     # artifacts loaded/opened/cached are inputs, artifacts saved outputs
    ll.finish()

A script that raises leaves its run `errored` with the traceback; one that ends without
`finish()` is finished at exit: `completed` with exit code 0, or `errored` with the code given
to `sys.exit()` when it is not 0. SIGTERM (and SIGHUP) end the run `aborted` with exit code
128 + the signal, then the process dies of the signal as it would have. Every run records the
pid, host and start time of its process, so one left `started` by a killed process is seen
as stale (`Run.stale`, `lakeline runs --stale`). Notebooks must call `finish()` (their source
and an HTML report are stored then).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import signal
import sys
import threading
import traceback
from datetime import datetime
from functools import cache
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from lakeline.errors import LakelineError
from lakeline.lineage import context
from lakeline.lineage.notebook import code_hash, code_of, html_report, in_notebook, notebook_path
from lakeline.lineage.records import ensure_transform, fire, log_status, new_run
from lakeline.models.base import clean_json_text, dump_json
from lakeline.values import has_surrogate

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.models import Run, Transform

log = logging.getLogger("lakeline")
_lock = threading.Lock()
_previous_excepthook = sys.excepthook
_real_exit = sys.exit
_hooks_installed = False
_exit_request: list[object] = []  # what the main thread last passed to sys.exit()
_process: dict[int, datetime] = {}  # pid -> start time of this process (reset by a fork)
EXIT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def exit_status(code: object) -> tuple[str, int, str | None]:
    """(status, exit code, error) of a run its process ends with `sys.exit(code)`: None and 0
    complete it; an int errs with that code; anything else (a message) errs with code 1."""
    if code is None or code == 0:
        return "completed", 0, None
    if isinstance(code, int):
        return "errored", code, f"the process exited with exit code {code}"
    return "errored", 1, str(code)


def _process_started_at() -> tuple[int, datetime]:
    from lakeline.lineage.liveness import process_identity

    pid = os.getpid()
    if pid not in _process:
        _process.clear()
        _process[pid] = process_identity()[1]
    return pid, _process[pid]


def _script_path() -> Path | None:
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return Path(file).resolve() if file else None


@cache
def script_key(path: Path) -> str:
    """A script's or notebook's transform key (`path` absolute).

    In a git repository: `<repository>/<path in it>`, the repository named by its origin remote
    (clones and worktrees agree), else by its folder. Elsewhere: the absolute path. Scripts of
    one name in unrelated folders or repositories are therefore different transforms.
    """
    for parent in path.parents:
        if (parent / ".git").exists():
            return f"{_repository_name(parent)}/{path.relative_to(parent).as_posix()}"
    return path.as_posix()


def _repository_name(root: Path) -> str:
    """The name of the git repository at `root`: its origin's last path part, else its folder."""
    import subprocess

    try:
        found = subprocess.run(
            ["git", "-C", str(root), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        url = found.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        url = ""
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    return name or root.name


def main_module_name() -> str:
    """What `__main__` stands for in keys: the script's key, the module run with `-m`, the
    notebook's key; `__main__` in an interactive session."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name not in (None, "__main__"):
        return str(spec.name).removesuffix(".__main__")
    path = _script_path()
    if path is None and in_notebook():
        try:
            path = notebook_path()
        except LakelineError:
            path = None
    return "__main__" if path is None else script_key(path)


def _json_safe(value: Any) -> Any:
    import json

    try:  # strict JSON: NaN and infinities are kept as their repr (PostgreSQL refuses them)
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _json_safe(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [_json_safe(v) for v in value]
        return repr(value)


def params_of(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Parameters as JSON (values JSON cannot hold are kept as their repr)."""
    return run_params(params)[0]


def run_params(params: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
    """`params_of(params)`, and whether it is known clean (`checked_params`)."""
    clean, checked, _ = checked_params(params)
    return clean, checked


def checked_params(
    params: dict[str, Any] | None,
) -> tuple[dict[str, Any] | None, bool, str | None]:
    """`params_of(params)`, whether it is known clean: JSON as it is, holding no string a
    run's params column refuses (`check_json`: a NUL byte, a lone surrogate), so that
    `new_run(params_checked=True)` need not walk it again; and, when known so from its JSON
    text (`clean_json_text`: a dict JSON takes as it is, ASCII escapes of no NUL and no
    surrogate), that text, which the run's insert binds as it is (`new_run(params_text=)`:
    the params are not dumped again, and are stored as they were at the call, as an unbatched
    run's are). Other plain params (dicts with string keys, lists, strings, ints, finite
    floats; not ASCII) are walked once here, then dumped; any other value takes `params_of`'s
    dump and repr (not known clean, no text)."""
    if params is None:
        return None, True, None
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    if params.__class__ is dict:
        text = clean_json_text(params)
        if text is not None:  # what `json.dumps` takes, so `_json_safe` gives it back as it is
            return params, True, text
    if _plain(params, 0):  # clean, though its text has escapes (not ASCII): dumped once here
        return params, True, dump_json(params)
    safe: dict[str, Any] = _json_safe(params)
    return safe, False, None


def _plain(value: Any, depth: int) -> bool:
    """Whether `value` is JSON as it is (`json.dumps(value, allow_nan=False)` takes it: exact
    dict, list, tuple, str, int, bool, None, finite float; dict keys strings) with no string
    `check_json` refuses. False when unsure (subclasses, other keys, deep or circular)."""
    if depth > 64:
        return False
    cls = value.__class__
    if cls is dict:
        for key, item in value.items():
            if key.__class__ is not str or not _clean(key):
                return False
            if item.__class__ is str:
                if not _clean(item):
                    return False
            elif item.__class__ is int:
                if not _LOW < item < _HUGE:
                    return False
            elif item.__class__ not in _LEAVES and not _plain(item, depth + 1):
                return False
        return True
    if cls is list or cls is tuple:
        for item in value:
            if item.__class__ is str:
                if not _clean(item):
                    return False
            elif item.__class__ is int:
                if not _LOW < item < _HUGE:
                    return False
            elif item.__class__ not in _LEAVES and not _plain(item, depth + 1):
                return False
        return True
    if cls is str:
        return _clean(value)
    if cls is float:
        return math.isfinite(value)
    if cls is int:  # one too long for str() (sys.set_int_max_str_digits): params_of's error
        return bool(_LOW < value < _HUGE)
    return cls is bool or value is None


def _clean(text: str) -> bool:
    """No NUL byte and no lone surrogate (what `check_json` refuses in a string)."""
    if "\x00" in text:
        return False
    return text.isascii() or not has_surrogate(text)


_LEAVES = (bool, type(None))  # JSON leaves with nothing to check (floats: finite; ints: size)
_HUGE = 10**640  # an int shorter than this is written whatever the str() digit limit (>= 640)
_LOW = -_HUGE


def start_tracked_run(
    *,
    instance: Instance,
    key: str,
    kind: str,
    source_code: str | None,
    params: dict[str, Any] | None,
    reference: str | None = None,
    reference_type: str | None = None,
    parent: Run | None = None,
    capture_environment: bool = True,
) -> tuple[Transform, Run]:
    """Find or version the transform, then record a started run of it in `instance`."""
    from lakeline.lineage.environment import environment_artifact

    environment = environment_artifact(instance) if capture_environment else None
    process = _process_started_at()  # before the transaction: the first call imports psutil
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
        clean_params, checked = run_params(params)
        run = new_run(
            transform,
            params=clean_params,
            params_checked=checked,
            parent_id=None if parent is None else parent.id,
            environment=environment,
            created_by_id=instance.user.id,
        )
        run.pid, run.process_started_at = process
        session.add(run)
    fire("run_started", run=run)
    return transform, run


def finish_run(run: Run, status: str, *, error: str | None = None, **fields: Any) -> Run:
    """Record the end of `run` (completed, errored, aborted) in the instance it belongs to."""
    with run.instance.sessions.write() as session:
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

    The transform is keyed by the file (`<repository>/<path in it>` in a git repository, else
    its absolute path: see `script_key`); an unchanged file reuses its transform, an edited one
    makes a new version. One line on stderr says which transform and run are tracked.
    """
    global _hooks_installed
    with _lock:
        if context.process_run() is not None:
            raise LakelineError("track() was already called in this process; call finish() first")
        notebook = in_notebook()
        path = notebook_path() if notebook else _script_path()
        if key is None:
            if path is None:
                raise LakelineError(
                    "track() cannot find the script it runs in (interactive session?): pass key="
                )
            key = script_key(path)
        source: str | None = None
        if path is not None:
            try:
                source = code_of(path) if notebook else path.read_text()
            except OSError as exc:
                raise LakelineError(f"cannot read {path}: {exc}") from exc
        from lakeline.instance import current

        transform, run = start_tracked_run(
            instance=current(),
            key=key,
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
        _exit_request.clear()
        if notebook:
            _watch_notebook_errors()
        elif not _hooks_installed:
            sys.excepthook = _excepthook
            _watch_exits()
            atexit.register(_at_exit)
            _catch_exit_signals()
            _hooks_installed = True
        _announce(transform, run)
        return run


def _announce(transform: Transform, run: Run) -> None:
    """Say in one line (stderr) what is tracked: which transform version, which run."""
    from lakeline.ids import suffix_index

    number = suffix_index(transform.uid[-4:]) + 1
    sys.stderr.write(
        f"lakeline: tracking {transform.kind} {transform.key} (version {number}, "
        f"transform {transform.uid}) as run {run.uid}\n"
    )


_state: dict[str, Any] = {}


def _describe(transform: Transform, description: str) -> None:
    with transform.instance.sessions.write() as session:
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


def _exit(status: str | int | None = None, /) -> NoReturn:
    """`sys.exit` while a run is tracked: remembers the code the script exits with."""
    _note_exit(status)
    _real_exit(status)


def _note_exit(status: object) -> None:
    if threading.current_thread() is threading.main_thread():
        _exit_request[:] = [status]


class _Quitter:
    """The `exit()`/`quit()` builtins, remembering the code like `_exit`."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __repr__(self) -> str:
        return repr(self.original)

    def __call__(self, code: object = None) -> NoReturn:
        _note_exit(code)
        self.original(code)
        raise SystemExit(code)  # not reached: the original raises it


def _watch_exits() -> None:
    """Wrap `sys.exit` and the `exit`/`quit` builtins: an atexit handler cannot see the code
    the interpreter exits with. (`raise SystemExit(n)` written out is not seen.)"""
    import builtins

    sys.exit = _exit
    for name in ("exit", "quit"):
        original = getattr(builtins, name, None)
        if original is not None and not isinstance(original, _Quitter):
            setattr(builtins, name, _Quitter(original))


def _catch_exit_signals() -> None:
    """End the tracked run on SIGTERM/SIGHUP, unless the script handles them itself."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in EXIT_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_exit_signal)


def _on_exit_signal(signum: int, frame: FrameType | None) -> None:
    """Record the runs this process is in as aborted, then die of the signal as before."""
    name = signal.Signals(signum).name
    top = context.process_run()
    run = context.current_run()
    while run is not None and run.status == "started" and run.pid == os.getpid():
        try:
            finish_run(run, "aborted", error=f"terminated by {name}", exit_code=128 + signum)
        except Exception:
            log.exception("lakeline could not record the end of run %s", run.uid)
        run = None if run is top else (run.parent or top)
    context.set_process_run(None)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    run = _own_process_run()
    if run is not None:
        interrupted = issubclass(exc_type, KeyboardInterrupt)
        status = "aborted" if interrupted else "errored"
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            finish_run(run, status, error=text, exit_code=130 if interrupted else 1)
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


def _own_process_run() -> Run | None:
    """The tracked run, unless this process is a fork of the one that runs it."""
    run = context.process_run()
    return None if run is None or run.pid not in (None, os.getpid()) else run


def _at_exit() -> None:
    run = _own_process_run()
    if run is not None and os.environ.get("LAKELINE_NO_AUTOFINISH") != "1":
        status, code, error = exit_status(_exit_request[0] if _exit_request else None)
        try:
            finish_run(run, status, error=error, exit_code=code)
        except Exception:
            log.exception("lakeline could not finish run %s at exit", run.uid)
        context.set_process_run(None)
