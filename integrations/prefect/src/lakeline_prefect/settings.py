"""Settings of the integration: arguments of `configure()`, else environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """How flows and tasks are recorded.

    - `strict` (`LAKELINE_PREFECT_STRICT`): fail the flow when lakeline cannot record;
      otherwise the flow runs on and the problem is reported once per flow run.
    - `audit` (`LAKELINE_PREFECT_AUDIT`): also record files opened while a task runs
      (`sys.addaudithook`), limited to files inside `root`.
    - `root` (`LAKELINE_PREFECT_ROOT`): the workflow folder, registered as a storage root so
      its files are registered in place, keyed by their path in it (default: the working
      directory when the flow starts).
    - `upload` (`LAKELINE_PREFECT_UPLOAD`): copy files outside `root` into the default storage
      instead of registering them where they are.
    - `enabled` (`LAKELINE_PREFECT_ENABLED`, default on): record at all.
    """

    strict: bool = False
    audit: bool = False
    root: str | None = None
    upload: bool = False
    enabled: bool = True


_overrides: dict[str, Any] = {}


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or value == "" else value.strip().lower() in _TRUE


def configure(**changes: Any) -> Settings:
    """Set settings for this process (None restores the environment's value)."""
    known = {f.name for f in fields(Settings)}
    unknown = set(changes) - known
    if unknown:
        raise TypeError(f"unknown setting(s) {sorted(unknown)}; settings: {sorted(known)}")
    for name, value in changes.items():
        if value is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = value
    return current_settings()


def current_settings() -> Settings:
    """The settings in force: `configure()` arguments over environment variables."""
    from_env = Settings(
        strict=_flag("LAKELINE_PREFECT_STRICT", False),
        audit=_flag("LAKELINE_PREFECT_AUDIT", False),
        root=os.environ.get("LAKELINE_PREFECT_ROOT") or None,
        upload=_flag("LAKELINE_PREFECT_UPLOAD", False),
        enabled=_flag("LAKELINE_PREFECT_ENABLED", True),
    )
    return replace(from_env, **_overrides)
