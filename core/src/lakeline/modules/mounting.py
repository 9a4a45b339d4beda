"""Which schema modules an instance mounts (the `settings` row `modules`), and mounting more."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from lakeline.errors import LakelineError, ModuleNotInstalled

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.modules.spec import SchemaModule

SETTING = "modules"


def read_mounted(conn: Connection) -> dict[str, str]:
    """{module name: distribution} the instance mounts ({} without a schema or modules)."""
    try:
        value = conn.execute(
            text("SELECT value FROM settings WHERE key = :key"), {"key": SETTING}
        ).scalar()
    except (OperationalError, ProgrammingError):
        conn.rollback()
        return {}
    if not value:
        return {}
    try:
        mounted = json.loads(value)
        if not isinstance(mounted, dict):
            raise ValueError(value)
    except ValueError:
        raise LakelineError(
            f"the instance's settings row {SETTING!r} is malformed ({value[:60]!r}): it holds "
            'a JSON object {"module": "distribution"}'
        ) from None
    return {str(k): str(v) for k, v in mounted.items()}


def _write_mounted(conn: Connection, mounted: dict[str, str]) -> None:
    value = json.dumps(dict(sorted(mounted.items())))
    params = {"key": SETTING, "value": value}
    done = conn.execute(text("UPDATE settings SET value = :value WHERE key = :key"), params)
    if not done.rowcount:
        conn.execute(text("INSERT INTO settings (key, value) VALUES (:key, :value)"), params)


def required(
    engine: Engine, instance: str, mounted: dict[str, str] | None = None
) -> list[SchemaModule]:
    """The installed modules the instance mounts (`mounted`: as `read_mounted` read them
    already); ModuleNotInstalled names the distribution of one that is not installed here.
    Loads their models."""
    if mounted is None:
        with engine.connect() as conn:
            mounted = read_mounted(conn)
    if not mounted:
        return []
    from lakeline.modules.spec import installed, load_models

    found = installed()
    modules = []
    for name, distribution in sorted(mounted.items()):
        module = found.get(name)
        if module is None:
            narrowed = os.environ.get("LAKELINE_LOAD_PLUGINS")
            hint = "" if narrowed is None else " (or allow it in $LAKELINE_LOAD_PLUGINS)"
            raise ModuleNotInstalled(
                f"instance {instance!r} mounts schema module {name!r}, which is not installed "
                f"here: install the distribution {distribution} (pip install {distribution})" + hint
            )
        load_models(module)
        modules.append(module)
    return modules


def mount(engine: Engine, instance: str, names: Sequence[str]) -> list[str]:
    """Mount the installed modules `names` on the instance at `engine`: their branches are
    migrated and the setting written in one transaction. Returns the names newly mounted."""
    from lakeline.modules.spec import get, load_models

    wanted = [get(name) for name in dict.fromkeys(names)]  # UnknownModule before anything
    current = required(engine, instance)
    have = {m.name for m in current}
    new = [m for m in wanted if m.name not in have]
    if not new:
        return []
    for module in new:
        load_models(module)
    modules = [*current, *new]

    def record(conn: Connection) -> None:
        _write_mounted(conn, {m.name: m.distribution for m in modules})

    from lakeline.db.migrate import upgrade

    upgrade(engine, modules=modules, then=record)
    return [m.name for m in new]


def add(names: str | Sequence[str], instance: Instance) -> list[str]:
    """Mount schema modules on `instance` (migrating their tables); returns the names newly
    mounted."""
    listed = [names] if isinstance(names, str) else list(names)
    try:
        return mount(instance.engine, instance.name, listed)
    finally:
        instance._modules = None  # read again


def check_mounted(model: type[Any], instance: Instance) -> None:
    """ModuleNotMounted unless `instance` mounts the module `model` belongs to."""
    from lakeline.errors import ModuleNotMounted
    from lakeline.modules.spec import module_of

    name = model.__dict__.get("_lakeline_module")
    if name is None:
        module = module_of(model)
        if module is None:
            return
        name = module.name
        model._lakeline_module = name
    if name not in instance.modules:
        raise ModuleNotMounted(
            f"{model.__name__} is a registry of schema module {name!r}, which instance "
            f"{instance.name!r} does not mount: `lakeline modules add {name}`"
        )
