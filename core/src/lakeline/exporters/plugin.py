"""The default plugin of the exporters: registers `prov`, `rocrate` and `openlineage`, and the
OpenLineage emitter's `run_started`/`run_finished` hooks."""

from __future__ import annotations

from collections.abc import Callable

from lakeline.exporters.openlineage_emitter import run_finished, run_started
from lakeline.hookspecs import hookimpl
from lakeline.lineage.exporters import Exporter

__all__ = ["register_exporters", "run_finished", "run_started"]


@hookimpl
def register_exporters(register: Callable[[Exporter], None]) -> None:
    """Register the built-in exporters."""
    from lakeline.exporters import openlineage, prov, rocrate

    for module in (prov, rocrate, openlineage):
        register(module.EXPORTER)
