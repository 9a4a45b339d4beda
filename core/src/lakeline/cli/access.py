"""`lakeline access` (PostgreSQL roles), `lakeline space` and `lakeline audit`."""

from __future__ import annotations

import click

from lakeline.cli.group import use_instance


@click.group()
def access() -> None:
    """Who may read, write or administer this instance (PostgreSQL roles)."""


@access.command("grant")
@click.argument("role")
@click.argument("level", type=click.Choice(["read", "write", "admin"]))
def grant_command(role: str, level: str) -> None:
    """Give login ROLE the access LEVEL (replacing its previous level)."""
    from lakeline.access import roles
    from lakeline.cli.output import console

    instance = use_instance()
    roles.grant(instance.engine, role, level)
    console().print(f"{role}: {level}", markup=False, highlight=False)


@access.command("revoke")
@click.argument("role")
def revoke_command(role: str) -> None:
    """Take every lakeline level and space membership from ROLE."""
    from lakeline.access import roles
    from lakeline.cli.output import console

    instance = use_instance()
    roles.revoke(instance.engine, role)
    console().print(f"{role}: no access", markup=False, highlight=False)


@access.command("list")
def list_command() -> None:
    """Every login role with a lakeline level, and the spaces it is held to."""
    from rich.table import Table

    from lakeline.access import roles
    from lakeline.cli.output import console

    table = Table("role", "level", "spaces", box=None)
    for item in roles.grants(use_instance().engine):
        table.add_row(item.role, item.level, ", ".join(item.spaces) or "(all)")
    console().print(table)


COMMANDS = [access]
