"""The hooks lakeline exposes to plugins (entry-point group `lakeline`).

Registries are filled through callbacks (`register_*`); events are observed after they are
committed (`run_*`, `artifact_*`). Schema modules come through `register_modules`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from lakeline.formats.registry import Format
    from lakeline.lineage.exporters import Exporter
    from lakeline.models import Artifact, Run
    from lakeline.modules import SchemaModule

hookspec = pluggy.HookspecMarker("lakeline")
hookimpl = pluggy.HookimplMarker("lakeline")


@hookspec
def register_formats(register: Callable[[Format], None]) -> None:
    """Register artifact formats (suffixes, Python types, save/load/open) by calling `register`."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands or command groups to the `lakeline` CLI."""


@hookspec
def artifact_saved(artifact: Artifact) -> None:
    """Called after an artifact has been committed with its bytes."""


@hookspec
def artifact_used(artifact: Artifact, run: Run) -> None:
    """Called after `run` has been recorded as using `artifact`."""


@hookspec
def run_started(run: Run) -> None:
    """Called after a run has been recorded as started."""


@hookspec
def run_finished(run: Run) -> None:
    """Called after a run has been recorded as finished (completed, errored, aborted, cached)."""


@hookspec
def register_exporters(register: Callable[[Exporter], None]) -> None:
    """Register lineage exporters (PROV, RO-Crate, OpenLineage, ...) by calling `register`."""


@hookspec
def register_modules(register: Callable[[SchemaModule], None]) -> None:
    """Register schema modules (models, table prefix, alembic branch) by calling `register`."""
