"""The hooks lakeline exposes to plugins (entry-point group `lakeline`).

Lineage hooks (`run_started`, `run_finished`, `artifact_used`, `register_exporters`) arrive
with the lineage layer; `register_schemas` with the first schema module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from lakeline.formats.registry import Format
    from lakeline.models import Artifact

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
