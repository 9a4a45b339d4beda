"""The plugin manager: default plugins plus entry points of group `lakeline`.

`LAKELINE_LOAD_PLUGINS` narrows which entry-point plugins load: unset loads all, a
comma-separated list loads those names, an empty value loads none. Defaults always load.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from importlib.metadata import entry_points

import pluggy

from lakeline import hookspecs

DEFAULT_PLUGINS = (
    "lakeline.formats.files",
    "lakeline.formats.tabular",
    "lakeline.formats.arrays",
    "lakeline.exporters.plugin",
)

_pm: pluggy.PluginManager | None = None
_lock = threading.Lock()


def _allowed() -> set[str] | None:
    value = os.environ.get("LAKELINE_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _create() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("lakeline")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    allowed = _allowed()
    for ep in entry_points(group="lakeline"):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is None:
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken plugin must not break lakeline itself
                warnings.warn(
                    f"lakeline plugin {ep.name!r} ({ep.value}) failed to load and is skipped: "
                    f"{type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
    pm.check_pending()
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created (and plugins loaded) on first use."""
    global _pm
    with _lock:
        if _pm is None:
            _pm = _create()
        return _pm


def reset() -> None:
    """Forget loaded plugins; the next use reloads them (for tests and long-lived shells)."""
    global _pm
    with _lock:
        _pm = None
    from lakeline.formats import registry
    from lakeline.lineage import exporters

    registry.reset()
    exporters.reset()
