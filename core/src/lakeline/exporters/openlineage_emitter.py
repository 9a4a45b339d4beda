"""Stream OpenLineage events as runs start and finish (the `run_started`/`run_finished` hooks).

Destinations, both optional (set neither and the hooks return at once, at no cost):

- `LAKELINE_OPENLINEAGE_FILE`: append one JSON event per line to this file;
- `LAKELINE_OPENLINEAGE_URL`: POST each event to `<url>/api/v1/lineage` (Marquez and other
  OpenLineage backends), with `LAKELINE_OPENLINEAGE_API_KEY` as a bearer token when set and
  `LAKELINE_OPENLINEAGE_TIMEOUT` seconds (default 2) per request.

Emitting never breaks the user's run: a failure is logged once per destination (until it
works again), and after an HTTP failure the endpoint is left alone for `RETRY_AFTER` seconds
so an unreachable server does not slow every step down.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from lakeline.hookspecs import hookimpl

if TYPE_CHECKING:
    from lakeline.models import Run

logger = logging.getLogger(__name__)

FILE_ENV = "LAKELINE_OPENLINEAGE_FILE"
URL_ENV = "LAKELINE_OPENLINEAGE_URL"
API_KEY_ENV = "LAKELINE_OPENLINEAGE_API_KEY"
TIMEOUT_ENV = "LAKELINE_OPENLINEAGE_TIMEOUT"
RETRY_AFTER = 30.0

_lock = threading.Lock()
_failing: set[str] = set()  # destinations whose failure was already logged
_paused_until: dict[str, float] = {}


def _destinations() -> tuple[str | None, str | None]:
    return os.environ.get(FILE_ENV) or None, os.environ.get(URL_ENV) or None


def active() -> bool:
    """Whether an emitting destination is configured."""
    path, url = _destinations()
    return bool(path or url)


def _failed(destination: str, exc: BaseException) -> None:
    with _lock:
        first = destination not in _failing
        _failing.add(destination)
    if first:
        logger.warning(
            "lakeline: cannot send OpenLineage events to %s (%s: %s); "
            "the run goes on, further failures are not reported",
            destination,
            type(exc).__name__,
            exc,
        )


def _recovered(destination: str) -> None:
    with _lock:
        _failing.discard(destination)
        _paused_until.pop(destination, None)


def _write_line(path: str, payload: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, payload + b"\n")  # one write per event: lines never interleave
    finally:
        os.close(fd)


def _post(url: str, payload: bytes) -> None:
    import urllib.request

    endpoint = url.rstrip("/") + "/api/v1/lineage"
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(API_KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        timeout = float(os.environ.get(TIMEOUT_ENV, "2"))
    except ValueError:
        timeout = 2.0
    request = urllib.request.Request(endpoint, data=payload, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def send(event: dict[str, Any]) -> None:
    """Send one event to the configured destinations; failures are logged, never raised."""
    path, url = _destinations()
    payload = json.dumps(event, ensure_ascii=False).encode()
    if path:
        try:
            _write_line(path, payload)
            _recovered(path)
        except Exception as exc:
            _failed(path, exc)
    if url:
        with _lock:
            paused = _paused_until.get(url, 0.0) > time.monotonic()
        if paused:
            return
        try:
            _post(url, payload)
            _recovered(url)
        except Exception as exc:
            with _lock:
                _paused_until[url] = time.monotonic() + RETRY_AFTER
            _failed(url, exc)


def _emit(run: Run, final: bool) -> None:
    try:
        from lakeline.exporters.openlineage import event, final_event_type
        from lakeline.exporters.tree import load_tree

        event_type = final_event_type(run) if final else "START"
        if event_type is None:
            return
        tree = load_tree(run, descendants=False)
        send(event(tree, tree.root, event_type))
    except Exception as exc:  # building the event must not break the run either
        _failed("openlineage-emitter", exc)


@hookimpl
def run_started(run: Run) -> None:
    """Emit the run's START event (when a destination is configured)."""
    if active():
        _emit(run, final=False)


@hookimpl
def run_finished(run: Run) -> None:
    """Emit the run's COMPLETE, FAIL or ABORT event (when a destination is configured)."""
    if active():
        _emit(run, final=True)


def reset() -> None:
    """Forget logged failures and pauses (for tests and long-lived processes)."""
    with _lock:
        _failing.clear()
        _paused_until.clear()
