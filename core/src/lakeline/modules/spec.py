"""Schema modules: what distributions register through `register_modules`, collected and
checked once per process (until `lakeline.plugins.reset()`)."""

from __future__ import annotations

import importlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from lakeline.errors import ModuleConflict, UnknownModule

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,15}_")
# names of core tables that no model maps (alembic's, SQLite's full-text index)
_UNMAPPED_CORE = ("alembic_version", "artifacts_fts")


@dataclass(frozen=True)
class SchemaModule:
    """A schema module, as its distribution registers it (see docs/modules.md)."""

    name: str  # the mount name, and the registries' namespace in dtypes: cat[lab.Biosample]
    distribution: str  # what to install ("pip install <distribution>")
    prefix: str  # every table and every revision id of the module starts with it
    models: str  # the module holding the models, imported when the module is first used
    migrations: str | os.PathLike[str]  # the folder of the module's alembic revisions
    head: str  # the newest revision id in `migrations`

    @property
    def location(self) -> str:
        """The migrations folder as an absolute path, symlinks resolved (an alembic version
        location)."""
        return os.path.realpath(self.migrations)

    def owns_revision(self, revision: str) -> bool:
        """Whether an `alembic_version` row belongs to this module's branch."""
        return revision.startswith(self.prefix)


_lock = threading.RLock()
_installed: dict[str, SchemaModule] | None = None
_registries: dict[str, dict[str, type[Any]]] = {}  # module name -> class name -> model


def _check(module: Any) -> SchemaModule:
    if not isinstance(module, SchemaModule):
        raise ModuleConflict(f"register_modules takes SchemaModule objects, got {module!r}")
    if not _NAME.fullmatch(module.name):
        raise ModuleConflict(
            f"schema module name {module.name!r} ({module.distribution}) must be a lowercase "
            "identifier (letters, digits, _; at most 32 characters)"
        )
    if not _PREFIX.fullmatch(module.prefix):
        raise ModuleConflict(
            f"schema module {module.name!r} ({module.distribution}): table prefix "
            f"{module.prefix!r} must be lowercase letters and digits ending in '_', e.g. 'bio_'"
        )
    if not module.head.startswith(module.prefix):
        raise ModuleConflict(
            f"schema module {module.name!r}: revision ids start with its prefix "
            f"{module.prefix!r}, its head is {module.head!r}"
        )
    return module


def _core_tables() -> set[str]:
    from lakeline.models import Base, load_all

    load_all()
    mapped = {
        mapper.class_.__table__.name
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith("lakeline.models")
    }
    return mapped | set(_UNMAPPED_CORE)


def collect(modules: list[Any]) -> dict[str, SchemaModule]:
    """Check registered modules against each other and the core; by name."""
    by_name: dict[str, SchemaModule] = {}
    core = _core_tables()
    for module in sorted(map(_check, modules), key=lambda m: (m.name, m.distribution)):
        for other in by_name.values():
            if other.name == module.name:
                raise ModuleConflict(
                    f"two schema modules are named {module.name!r}: from {other.distribution} "
                    f"and {module.distribution}; uninstall one"
                )
            if other.prefix.startswith(module.prefix) or module.prefix.startswith(other.prefix):
                raise ModuleConflict(
                    f"schema modules {other.name!r} ({other.distribution}) and {module.name!r} "
                    f"({module.distribution}) claim one table prefix "
                    f"({other.prefix!r}, {module.prefix!r}); uninstall one"
                )
        taken = sorted(t for t in core if t.startswith(module.prefix))
        if taken:
            raise ModuleConflict(
                f"schema module {module.name!r} ({module.distribution}): table prefix "
                f"{module.prefix!r} is taken by the core's table {taken[0]!r}"
            )
        by_name[module.name] = module
    return by_name


def installed() -> dict[str, SchemaModule]:
    """The schema modules installed here, by name (the `register_modules` hook, checked)."""
    global _installed
    with _lock:
        if _installed is None:
            from lakeline.plugins import get_plugin_manager

            found: list[Any] = []
            get_plugin_manager().hook.register_modules(register=found.append)
            _installed = collect(found)
        return _installed


def get(name: str) -> SchemaModule:
    """The installed module `name`; UnknownModule lists the installed ones."""
    modules = installed()
    if name not in modules:
        known = ", ".join(sorted(modules)) or "none"
        raise UnknownModule(f"no installed schema module is named {name!r} (installed: {known})")
    return modules[name]


def load_models(module: SchemaModule) -> dict[str, type[Any]]:
    """Import the module's models (once) and check their tables; class name -> model."""
    with _lock:
        if module.name in _registries:
            return _registries[module.name]
        from lakeline.models import Base, load_all

        load_all()  # its tables may reference any core table
        try:
            importlib.import_module(module.models)
        except Exception as exc:
            raise ModuleConflict(
                f"schema module {module.name!r} ({module.distribution}): its models "
                f"{module.models} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        found: dict[str, type[Any]] = {}
        for mapper in Base.registry.mappers:
            cls = mapper.class_
            home = cls.__module__
            if home != module.models and not home.startswith(module.models + "."):
                continue
            table = cls.__table__.name
            if not table.startswith(module.prefix):
                raise ModuleConflict(
                    f"schema module {module.name!r} ({module.distribution}): table {table!r} of "
                    f"{cls.__name__} does not start with the module's prefix {module.prefix!r}"
                )
            found[cls.__name__] = cls
            cls._lakeline_module = module.name  # mounting.check_mounted
        for table in Base.metadata.tables.values():  # Core tables too (e.g. edges)
            if table.name.startswith(module.prefix):
                table.info["lakeline_module"] = True  # db.migrate.include_object_for
        _registries[module.name] = found
        return found


def registry(name: str) -> type[Any]:
    """The model `<module>.<Registry>` (as in dtype `cat[lab.Biosample]`)."""
    module_name, _, class_name = name.partition(".")
    models = load_models(get(module_name))
    if class_name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise UnknownModule(
            f"schema module {module_name!r} has no registry {class_name!r} (it has: {known})"
        )
    return models[class_name]


def module_of(model: type[Any]) -> SchemaModule | None:
    """The installed module whose prefix the model's table has (None: a core model)."""
    table = model.__table__.name
    for module in installed().values():
        if table.startswith(module.prefix):
            return module
    return None


def models_loaded() -> bool:
    """Whether any module's models were loaded in this process."""
    return bool(_registries)


def reset() -> None:
    """Forget collected modules (imported models stay mapped: Python keeps the classes)."""
    global _installed
    with _lock:
        _installed = None
