"""A run's Python environment: captured without a pip subprocess, stored once per distinct one."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakeline.instance import Instance
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


def _name_version(dist: Any) -> tuple[str, str] | None:
    """A distribution's name and version, from its `name-version.dist-info` folder when it
    has one (no metadata parsing), else from its metadata."""
    folder = getattr(dist, "_path", None)
    stem = folder.name[: -len(".dist-info")] if folder is not None else ""
    if folder is not None and folder.name.endswith(".dist-info") and stem.count("-") == 1:
        name, version = stem.split("-")
        return name.lower().replace("_", "-"), version
    name = dist.metadata["Name"]
    return (name.lower().replace("_", "-"), dist.version) if name else None


def capture() -> dict[str, Any]:
    """Python, platform and installed distributions (from importlib.metadata)."""
    from importlib.metadata import distributions

    packages: dict[str, str] = {}
    for dist in distributions():
        found = _name_version(dist)
        if found:
            packages.setdefault(*found)
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


def environment_artifact(instance: Instance) -> Artifact:
    """The saved artifact of `instance` describing this environment (the same record for the
    same one).

    The record is found by the hash of the JSON the json format would write, so a known
    environment costs one indexed query and writes nothing.
    """
    from sqlalchemy import select

    from lakeline.formats.files import json_bytes
    from lakeline.models import Artifact

    data = cached_capture()
    digest = hashlib.sha256(json_bytes(data)).hexdigest()
    with instance.sessions.read() as session:
        known = session.scalars(
            select(Artifact).where(
                Artifact.hash == digest, Artifact.key.is_(None), Artifact.kind == "__environment__"
            )
        ).first()
    if known is not None:
        return known
    from lakeline.artifacts.save import save_artifacts

    # the run's environment, not an output of whichever run is current when it is first seen
    environment = Artifact(data, description="Python environment", kind="__environment__")
    return save_artifacts([environment], instance, producer_from_context=False)[0]
