"""The plugin manager: default plugins plus entry points of groups `lakeline` and
`lakeline.commands`.

Entry points of group `lakeline` load with the manager, on the first hook call. A plugin that
only adds CLI commands (`register_commands`) declares its entry point in group
`lakeline.commands` instead: it is imported only when the CLI asks for commands
(`get_plugin_manager(commands=True)`), so observer hooks (`track()`, the Recorder) never pay
for importing click and an engine.

`LAKELINE_LOAD_PLUGINS` narrows which entry-point plugins load (in both groups): unset loads
all, a comma-separated list loads those names, an empty value loads none. Defaults always load.
A plugin that fails to load is skipped with a warning.

Finding entry points reads the metadata of every installed distribution (~30 ms for a few
hundred), so the result is cached in `<cache dir>/plugins/`. The cache is used only while every
`sys.path` entry holds the same metadata folders with the same `entry_points.txt` (mtime, size,
inode): installing, upgrading, removing or editing a distribution's entry points changes that
and triggers a new scan, so a stale cache never hides (or invents) a plugin. A folder on
`sys.path` that holds no metadata (the script's or working folder `python -m` puts first) adds
nothing to a scan, so it neither names the cache file nor changes the fingerprint: a workflow
run from a new folder each time still finds the cache.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import tempfile
import threading
import warnings
from importlib.metadata import EntryPoint
from pathlib import Path

import pluggy

from lakeline import hookspecs

DEFAULT_PLUGINS = (
    "lakeline.formats.files",
    "lakeline.formats.tabular",
    "lakeline.formats.arrays",
    "lakeline.formats.stores",
    "lakeline.exporters.plugin",
)
GROUP = "lakeline"
COMMANDS_GROUP = "lakeline.commands"
_GROUPS = (GROUP, COMMANDS_GROUP)
_CACHE_VERSION = 1

_pm: pluggy.PluginManager | None = None
_commands_loaded = False
_found: list[EntryPoint] | None = None  # this process's discovery, until reset()
_lock = threading.Lock()
_generation = 0  # how many times reset() ran: whoever loaded from plugins reloads after one


def _allowed() -> set[str] | None:
    value = os.environ.get("LAKELINE_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


# -- discovery ---------------------------------------------------------------------------------


def _scan() -> list[tuple[str, str, str]]:
    """(group, name, value) of every entry point in our groups, as importlib.metadata sees them."""
    from importlib.metadata import entry_points

    found = entry_points()
    return [(ep.group, ep.name, ep.value) for group in _GROUPS for ep in found.select(group=group)]


def _fingerprint() -> tuple[str, list[str]]:
    """What a scan reads, cheaply: per `sys.path` entry that holds metadata folders, those and
    the stat of their `entry_points.txt` (a zip or other file: its own stat); and those
    entries. A missing entry or a folder without metadata folders adds nothing to a scan, so
    nothing here: metadata appearing in one later changes the fingerprint."""
    digest = hashlib.sha256()
    holding = []
    for entry in sys.path:
        root = entry or "."
        try:
            names = os.listdir(root)
        except OSError:
            try:
                st = os.stat(root)
            except OSError:
                continue
            digest.update(f"{entry}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_ino}\n".encode())
            holding.append(os.path.abspath(root))
            continue
        is_egg = root.lower().endswith(".egg")
        found = []
        for name in sorted(names):
            low = name.lower()
            if not (low.endswith((".dist-info", ".egg-info")) or (is_egg and low == "egg-info")):
                continue
            try:
                st = os.stat(os.path.join(root, name, "entry_points.txt"))
            except OSError:
                found.append(f"{name}\0-\n")
            else:
                found.append(f"{name}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_ino}\n")
        if found:
            digest.update(f"{entry}\0dir\n{''.join(found)}".encode())
            holding.append(os.path.abspath(root))
    return digest.hexdigest(), holding


def _cache_file(holding: list[str] | None = None) -> Path:
    """One file per interpreter and the `sys.path` entries holding metadata (`holding`, from
    `_fingerprint`; read when not given)."""
    from lakeline.config import cache_dir

    paths = _fingerprint()[1] if holding is None else holding
    key = hashlib.sha256(json.dumps([sys.executable, sys.version, paths]).encode()).hexdigest()
    return cache_dir() / "plugins" / f"entry-points-{key[:24]}.json"


# finders that read the same dist-info folders on sys.path as PathFinder (the fingerprint's)
_PATH_BASED = {("importlib_metadata", "MetadataPathFinder")}


def _cacheable() -> bool:
    """Only plain path-based metadata is fingerprinted: another finder that can supply
    distributions (a custom import hook) means scanning every time. The `importlib_metadata`
    backport's finder, which many libraries install, reads the same folders."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is PathFinder or not hasattr(finder, "find_distributions"):
            continue
        cls = finder if isinstance(finder, type) else type(finder)
        if (cls.__module__.split(".")[0], cls.__name__) not in _PATH_BASED:
            return False
    return True


def _read_cache(path: Path, fingerprint: str) -> list[tuple[str, str, str]] | None:
    try:
        data = json.loads(path.read_text())
        if data["version"] != _CACHE_VERSION or data["fingerprint"] != fingerprint:
            return None
        return [(str(g), str(n), str(v)) for g, n, v in data["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, fingerprint: str, found: list[tuple[str, str, str]]) -> None:
    data = {"version": _CACHE_VERSION, "fingerprint": fingerprint, "entry_points": found}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".entry-points-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # an unwritable cache only costs the next process a scan


def discover() -> list[EntryPoint]:
    """The entry points of groups `lakeline` and `lakeline.commands` (cached, see above)."""
    if not _cacheable():
        found = _scan()
    else:
        # before scanning: a change during the scan invalidates
        fingerprint, holding = _fingerprint()
        path = _cache_file(holding)
        cached = _read_cache(path, fingerprint)
        if cached is None:
            found = _scan()
            _write_cache(path, fingerprint, found)
        else:
            found = cached
    return [EntryPoint(name=name, value=value, group=group) for group, name, value in found]


# -- the manager -------------------------------------------------------------------------------


def _load(pm: pluggy.PluginManager, group: str) -> None:
    global _found
    allowed = _allowed()
    if allowed is not None and not allowed:
        return  # none allowed: no need to look
    if _found is None:
        _found = discover()
    for ep in _found:
        if ep.group != group or (allowed is not None and ep.name not in allowed):
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


def _create() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("lakeline")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    _load(pm, GROUP)
    return pm


def get_plugin_manager(*, commands: bool = False) -> pluggy.PluginManager:
    """The process-wide plugin manager, created (and plugins loaded) on first use.

    `commands=True` also loads the plugins of group `lakeline.commands` (once): what the CLI
    asks for before calling `register_commands`.
    """
    global _pm, _commands_loaded
    pm = _pm
    if pm is not None and (_commands_loaded or not commands):  # loaded: no lock (hot path)
        return pm
    with _lock:
        if _pm is None:
            _pm = _create()
        if commands and not _commands_loaded:
            _load(_pm, COMMANDS_GROUP)
            _commands_loaded = True
        return _pm


def generation() -> int:
    """A number that changes whenever `reset()` forgets the loaded plugins."""
    return _generation


def reset() -> None:
    """Forget loaded plugins; the next use reloads them (for tests and long-lived shells)."""
    global _pm, _commands_loaded, _found, _generation
    with _lock:
        _pm = None
        _commands_loaded = False
        _found = None
        _generation += 1
    from lakeline.formats import registry
    from lakeline.lineage import exporters
    from lakeline.modules import spec

    registry.reset()
    exporters.reset()
    spec.reset()
