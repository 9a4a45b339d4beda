"""Where lakeline keeps its settings on this machine: instance configs, current instance, cache."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lakeline.errors import InstanceNotFound, LakelineError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def home() -> Path:
    """lakeline's settings folder: $LAKELINE_HOME, else ~/.lakeline."""
    return Path(os.environ.get("LAKELINE_HOME") or Path.home() / ".lakeline")


def cache_dir() -> Path:
    """Local cache for remote artifacts: $LAKELINE_CACHE_DIR, else <home>/cache."""
    return Path(os.environ.get("LAKELINE_CACHE_DIR") or home() / "cache")


def validate_name(name: str) -> str:
    """Return `name` if it can name an instance; raise otherwise."""
    if not _NAME.match(name):
        raise LakelineError(
            f"instance name {name!r} is not valid: use letters, digits, '-', '_' or '.' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


@dataclass
class InstanceConfig:
    """How to reach one instance: its database and default storage."""

    name: str
    db: str
    storage: str
    uid: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return instance_file(self.name)

    def write(self) -> None:
        """Write this config atomically."""
        write_json_atomic(self.path, asdict(self))


def instance_file(name: str) -> Path:
    return home() / "instances" / f"{validate_name(name)}.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_config(name: str) -> InstanceConfig:
    """The config of instance `name`; InstanceNotFound lists the known ones."""
    path = instance_file(name)
    if not path.exists():
        known = ", ".join(list_instances()) or "none"
        raise InstanceNotFound(
            f"no instance named {name!r} on this machine (known: {known}); "
            "create one with `lakeline init` or check the name"
        )
    try:
        data = json.loads(path.read_text())
        config = InstanceConfig(**data)
    except (ValueError, TypeError) as exc:
        raise LakelineError(f"instance config {path} is malformed: {exc}") from exc
    for name, kind in _CONFIG_TYPES.items():
        value = getattr(config, name)
        if not isinstance(value, kind):
            raise LakelineError(
                f"instance config {path} is malformed: {name!r} must be a "
                f"{kind.__name__ if kind is not dict else 'JSON object'}, not "
                f"{type(value).__name__} {value!r}"
            )
    return config


_CONFIG_TYPES: dict[str, type] = {
    "name": str,
    "db": str,
    "storage": str,
    "uid": str,
    "storage_options": dict,
}


def list_instances() -> list[str]:
    """Names of the instances configured on this machine."""
    folder = home() / "instances"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []


def current_name() -> str | None:
    """The instance to use: $LAKELINE_INSTANCE, else the one set by `lakeline connect`."""
    env = os.environ.get("LAKELINE_INSTANCE")
    if env:
        return env
    marker = home() / "current"
    return marker.read_text().strip() or None if marker.exists() else None


def set_current(name: str | None) -> None:
    """Remember `name` as the instance `lakeline` commands and scripts use."""
    marker = home() / "current"
    if name is None:
        marker.unlink(missing_ok=True)
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(name + "\n")
    os.replace(tmp, marker)
