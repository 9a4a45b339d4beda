"""A run's Python environment: captured without a pip subprocess, stored once per distinct one."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakeline.models import Artifact


def _fingerprint() -> str:
    """Cheap identity of the installed packages: interpreter and package folders' mtimes."""
    parts = [sys.executable, sys.version]
    for entry in sys.path:
        try:
            parts.append(f"{entry}:{os.stat(entry).st_mtime_ns}")
        except OSError:
            continue
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def capture() -> dict[str, Any]:
    """Python, platform and installed distributions (from importlib.metadata)."""
    from importlib.metadata import distributions

    packages: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": dict(sorted(packages.items())),
    }


def cached_capture() -> dict[str, Any]:
    """`capture()`, reused across processes while no package folder changes."""
    from lakeline.config import cache_dir

    path = cache_dir() / "environments" / f"{_fingerprint()}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        pass
    data = capture()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass
    return data


def environment_artifact() -> Artifact:
    """The saved artifact describing this environment (the same record for the same one)."""
    from lakeline.models import Artifact

    data = cached_capture()
    return Artifact(data, description="Python environment", kind="__environment__").save()
