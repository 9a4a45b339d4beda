"""The entry point (group `lakeline`): registers the `lab` schema module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lakeline.hookspecs import hookimpl
from lakeline.modules import SchemaModule

HERE = Path(__file__).parent
LAB = SchemaModule(
    name="lab",
    distribution="lakeline-lab",
    prefix="lab_",
    models="lakeline_lab.models",
    migrations=HERE / "migrations",
    head="lab_0002",
)


@hookimpl
def register_modules(register: Callable[[SchemaModule], None]) -> None:
    register(LAB)


# Modules the tests register by hand (never through the entry point): bad input.
BROKEN = SchemaModule(  # its second migration fails half-way
    name="labbad",
    distribution="lakeline-lab",
    prefix="labbad_",
    models="lakeline_lab.broken",
    migrations=HERE / "broken_migrations",
    head="labbad_0002",
)
CLASH = SchemaModule(  # claims the lab module's prefix
    name="lab2",
    distribution="lakeline-lab2",
    prefix="lab_",
    models="lakeline_lab.models",
    migrations=HERE / "migrations",
    head="lab_0002",
)
STRAY = SchemaModule(  # its model's table leaves the prefix
    name="stray",
    distribution="lakeline-lab",
    prefix="stray_",
    models="lakeline_lab.stray",
    migrations=HERE / "broken_migrations",
    head="stray_0001",
)
