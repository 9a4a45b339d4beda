"""The entry point (group `lakeline`): registers the `bio` schema module and the `lakeline bio`
commands. Kept light: nothing heavy is imported until a hook runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lakeline.hookspecs import hookimpl
from lakeline.modules import SchemaModule

if TYPE_CHECKING:
    import click

BIO = SchemaModule(
    name="bio",
    distribution="lakeline-bio",
    prefix="bio_",
    models="lakeline_bio.models",
    migrations=Path(__file__).parent / "migrations",
    head="bio_0001",
)


@hookimpl
def register_modules(register: Callable[[SchemaModule], None]) -> None:
    """Register lakeline-bio's registries."""
    register(BIO)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add `lakeline bio` (click and the sources load only here)."""
    from lakeline_bio.cli import bio

    cli.add_command(bio)
