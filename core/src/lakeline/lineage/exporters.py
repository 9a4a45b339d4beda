"""The exporter registry: lineage exports (PROV, RO-Crate, OpenLineage) are plugins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lakeline.errors import LakelineError

if TYPE_CHECKING:
    from lakeline.models import Run


@dataclass(frozen=True)
class Exporter:
    """Writes the lineage of a run (and what it contains) in one standard format.

    `export(run, out_dir)` writes its files into `out_dir` and returns their paths.
    """

    name: str
    description: str
    export: Callable[[Run, Path], list[Path]]


_exporters: dict[str, Exporter] | None = None
_lock = threading.Lock()


def exporters() -> dict[str, Exporter]:
    """Every registered exporter by name."""
    global _exporters
    with _lock:
        if _exporters is None:
            from lakeline.plugins import get_plugin_manager

            found: dict[str, Exporter] = {}

            def register(exporter: Exporter) -> None:
                if not isinstance(exporter, Exporter):
                    raise TypeError(f"register_exporters expects Exporter objects: {exporter!r}")
                found[exporter.name] = exporter

            get_plugin_manager().hook.register_exporters(register=register)
            _exporters = found
        return _exporters


def get_exporter(name: str) -> Exporter:
    """The exporter called `name`; a clear error lists the known ones."""
    found = exporters()
    if name not in found:
        raise LakelineError(
            f"no exporter named {name!r}; available: {', '.join(sorted(found)) or 'none'}"
        )
    return found[name]


def reset() -> None:
    """Forget collected exporters (after plugins change)."""
    global _exporters
    with _lock:
        _exporters = None
