"""`@tracked()`: every call of a function becomes a run of it, with its arguments as params."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from lakeline.lineage.context import current_run, run_context
from lakeline.lineage.track import (
    exit_status,
    finish_run,
    main_module_name,
    params_of,
    start_tracked_run,
)

if TYPE_CHECKING:
    from lakeline.instance import Instance

P = ParamSpec("P")
R = TypeVar("R")


def _source(fn: Callable[..., Any]) -> str | None:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None


def _bind(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {"args": list(args), **kwargs}
    bound.apply_defaults()
    return dict(bound.arguments)


def function_key(fn: Callable[..., Any]) -> str:
    """`module.qualname`; a function of the script run directly is `<script key>:qualname`
    (`python -m pkg.mod`: `pkg.mod.qualname`), not `__main__.qualname`."""
    if fn.__module__ != "__main__":
        return f"{fn.__module__}.{fn.__qualname__}"
    main = main_module_name()
    separator = "." if main == "__main__" or "/" not in main else ":"
    return f"{main}{separator}{fn.__qualname__}"


def tracked(key: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record every call of the decorated function (sync or async) as a run.

    The run's parent is the run current at the call (a tracked script, another tracked
    function); artifacts loaded or saved inside the call belong to this run, also when calls
    run concurrently in threads or asyncio tasks. An exception marks the run errored.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = key or function_key(fn)
        source = _source(fn)
        lock = threading.Lock()
        environment: dict[str, bool] = {"captured": False}

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            with lock:
                capture = not environment["captured"]
                environment["captured"] = True
            parent = current_run()
            _, run = start_tracked_run(
                instance=_instance_for(parent),
                key=name,
                kind="function",
                source_code=source,
                params=params_of(_bind(fn, args, kwargs)),
                reference=f"{fn.__module__}.{fn.__qualname__}",
                reference_type="python",
                parent=parent,
                capture_environment=capture,
            )
            return run

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                run = start(args, kwargs)
                with run_context(run):
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        _finish_failed(run, exc)
                        raise
                finish_run(run, "completed")
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            run = start(args, kwargs)
            with run_context(run):
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    _finish_failed(run, exc)
                    raise
            finish_run(run, "completed")
            return result

        return wrapper

    return decorate


def _instance_for(parent: Any) -> Instance:
    """Where a call's run goes: its parent run's instance, else the current one."""
    from lakeline.db.session import instance_of
    from lakeline.instance import current

    found = None if parent is None else instance_of(parent)
    return found if found is not None else current()


def _finish_failed(run: Any, exc: BaseException) -> None:
    """End the run of a call that raised: `sys.exit()` as the script would end (0: completed,
    else errored with the code), KeyboardInterrupt aborted, anything else errored."""
    if isinstance(exc, SystemExit):
        status, code, error = exit_status(exc.code)
        finish_run(run, status, error=error, exit_code=code)
    elif isinstance(exc, KeyboardInterrupt):
        finish_run(run, "aborted", error=repr(exc))
    else:
        finish_run(run, "errored", error=repr(exc))
