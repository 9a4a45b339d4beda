"""lakeline_prefect: Prefect flows and tasks recorded as lakeline lineage.

    from lakeline_prefect import flow, task      # drop-ins for prefect's decorators
    from lakeline_prefect import materialize     # and for prefect.assets.materialize

or keep Prefect's own decorators and call `lakeline_prefect.instrument()` once, before the
flows and tasks are defined (or pass existing ones to it). Settings: `configure()`.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

import prefect
import prefect.assets
from prefect import Flow, Task

from lakeline_prefect.hooks import (
    ENGINE,
    RecordingFailed,
    flow_finished,
    flow_running,
    task_finished,
    task_running,
)
from lakeline_prefect.settings import Settings, configure, current_settings

__all__ = [
    "ENGINE",
    "RecordingFailed",
    "Settings",
    "add_hooks",
    "configure",
    "current_settings",
    "flow",
    "instrument",
    "materialize",
    "task",
    "uninstrument",
]

T = TypeVar("T")


def _append(hooks: list[Any], hook: Any) -> None:
    if hook not in hooks:
        hooks.append(hook)


def add_hooks(obj: T) -> T:
    """Add lakeline's state hooks to a Prefect flow or task (once); returns it."""
    if isinstance(obj, Task):
        _append(obj.on_running_hooks, task_running)
        _append(obj.on_completion_hooks, task_finished)
        _append(obj.on_failure_hooks, task_finished)
    elif isinstance(obj, Flow):
        _append(obj.on_running_hooks, flow_running)
        for hooks in (
            obj.on_completion_hooks,
            obj.on_failure_hooks,
            obj.on_crashed_hooks,
            obj.on_cancellation_hooks,
        ):
            _append(hooks, flow_finished)
    else:
        raise TypeError(f"expected a Prefect flow or task, got {type(obj).__name__}")
    return obj


def _drop_in(decorator: T) -> T:
    """`decorator` (prefect.flow or prefect.task) with lakeline's hooks added to what it makes.

    The function itself is not wrapped: names, signatures and `task_key` stay Prefect's.
    """

    @functools.wraps(cast(Any, decorator))
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        made = cast(Any, decorator)(*args, **kwargs)
        if isinstance(made, Task | Flow):
            return add_hooks(made)

        @functools.wraps(made)
        def apply(fn: Any) -> Any:
            return add_hooks(made(fn))

        return apply

    return cast(T, wrapper)


task = _drop_in(prefect.task)
flow = _drop_in(prefect.flow)
materialize = _drop_in(prefect.assets.materialize)

_originals: dict[type, Any] = {}


def instrument(*existing: Any) -> None:
    """Add lakeline's hooks to every flow and task created from now on with Prefect's own
    decorators (and to the `existing` flows and tasks given)."""
    for cls in (Task, Flow):
        if cls in _originals:
            continue
        original = cls.__init__
        _originals[cls] = original

        def init(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            add_hooks(self)

        functools.update_wrapper(init, original)
        cls.__init__ = init  # type: ignore[method-assign]
    for obj in existing:
        add_hooks(obj)


def uninstrument() -> None:
    """Undo `instrument()` for flows and tasks created from now on."""
    for cls, original in list(_originals.items()):
        cls.__init__ = original  # type: ignore[misc]
        del _originals[cls]
