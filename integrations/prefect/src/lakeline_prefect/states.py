"""What Prefect's states and parameters tell: times, outcomes, results, resolved values."""

from __future__ import annotations

import os
import time
import traceback
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

# loaded by `import prefect` (this package's __init__): imported here, not in each hook call,
# where an import statement costs ~2 µs
from prefect._internal.result_records import ResultRecord
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture
from prefect.utilities.collections import visit_collection


def at(state: Any) -> datetime | None:
    """The state's time as a plain UTC datetime (Prefect's may be a pendulum DateTime)."""
    when = getattr(state, "timestamp", None)
    if not isinstance(when, datetime):
        return None
    fields = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    plain = datetime(*fields, when.microsecond, tzinfo=UTC)
    offset = when.utcoffset()  # pendulum's astimezone() costs twice this
    return plain if offset is None else plain - offset


def began(when: datetime | None) -> float:
    """When a run began: its Running state's time `when` (the same in a replay of its hooks),
    or the clock now if that is earlier (an API server whose clock is ahead)."""
    now = time.time()
    return now if when is None else min(when.timestamp(), now)


def data(state: Any) -> Any:
    value = state.data
    return value.result if isinstance(value, ResultRecord) else value


def result(state: Any) -> Any:
    """A completed state's value, or None when it cannot be read back."""
    try:
        return data(state)
    except Exception:
        return None


def outcome(state: Any) -> tuple[str, str | None]:
    """The final lakeline status of a Prefect state, and its error text."""
    if state.is_completed():
        return ("cached" if state.name == "Cached" else "completed"), None
    status = "errored" if state.is_failed() else "aborted"
    error = state.message or state.name
    try:
        exc = data(state)
    except Exception:
        exc = None
    if isinstance(exc, BaseException):
        error = "".join(traceback.format_exception(exc)).strip()
    return status, error


_SCALARS = frozenset({str, int, float, bool})


def resolved(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters with futures and states replaced by their results."""

    def resolve(value: Any) -> Any:
        if isinstance(value, PrefectFuture):
            return value.result(raise_on_failure=False)
        if isinstance(value, State):
            value = data(value)
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    def plain(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    def one(value: Any) -> Any:
        if value is None or type(value) in _SCALARS:  # nothing to resolve (most parameters)
            return value
        if isinstance(value, PurePath):
            return os.fspath(value)
        return plain(visit_collection(value, resolve, return_data=True, remove_annotations=True))

    return {name: one(value) for name, value in parameters.items()}
