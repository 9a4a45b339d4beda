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
@click.option(
    "--space", "spaces", multiple=True, metavar="SPACE", help="Hold ROLE to SPACE (repeatable)."
)
def grant_command(role: str, level: str, spaces: tuple[str, ...]) -> None:
    """Give login ROLE the access LEVEL (replacing its previous level)."""
    from lakeline.access import roles
    from lakeline.cli.output import console

    instance = use_instance()
    from lakeline.access import spaces as space_ops

    if spaces:  # checked before anything is granted: nothing half-done
        if level == "admin":
            raise click.UsageError("admin is instance-wide: grant it without --space")
        space_ops.check_spaces(instance.engine, list(spaces))
    roles.grant(instance.engine, role, level)
    if instance.dialect == "postgresql":
        space_ops.set_membership(instance.engine, role, list(spaces))
    where = f" in space {', '.join(spaces)}" if spaces else " (every space)"
    console().print(f"{role}: {level}{where}", markup=False, highlight=False)


@access.command("revoke")
@click.argument("role")
def revoke_command(role: str) -> None:
    """Take every lakeline level and space membership from ROLE."""
    from lakeline.access import roles
    from lakeline.cli.output import console

    instance = use_instance()
    roles.revoke(instance.engine, role)
    from lakeline.access import spaces as space_ops

    space_ops.set_membership(instance.engine, role, [])
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


@click.group()
def space() -> None:
    """Spaces: groups of artifacts, runs and labels; on PostgreSQL a role held to spaces sees
    and writes only theirs."""


@space.command("create")
@click.argument("name")
@click.option("--description", default=None, help="What the space holds.")
def space_create(name: str, description: str | None) -> None:
    """Create space NAME."""
    from lakeline.access import spaces as space_ops
    from lakeline.cli.output import console

    space_ops.create(use_instance(), name, description)
    console().print(f"space {name} created", markup=False, highlight=False)


@space.command("add")
@click.argument("keys", nargs=-1, metavar="[KEY|UID]...")
@click.option("--to", "target", required=True, metavar="SPACE", help="The space.")
@click.option("--run", "runs", multiple=True, metavar="UID", help="A run (repeatable).")
@click.option("--label", "labels", multiple=True, metavar="NAME", help="A label (repeatable).")
def space_add(
    keys: tuple[str, ...], target: str, runs: tuple[str, ...], labels: tuple[str, ...]
) -> None:
    """Put artifacts (every version of KEY or UID), runs and labels into SPACE."""
    from lakeline.access import spaces as space_ops
    from lakeline.cli.output import console

    if not (keys or runs or labels):
        raise click.UsageError("name artifacts (KEY or UID), --run UID or --label NAME to add")
    moved = space_ops.move(use_instance(), target, keys=keys, runs=runs, labels=labels)
    console().print(f"{moved} records now in space {target}", markup=False, highlight=False)


@space.command("list")
def space_list() -> None:
    """Every space, what you see of it, and the roles held to it."""
    from rich.table import Table

    from lakeline.access import spaces as space_ops
    from lakeline.cli.output import console

    table = Table("space", "artifacts", "runs", "labels", "members", box=None)
    for info in space_ops.listing(use_instance()):
        table.add_row(
            info.name,
            str(info.artifacts),
            str(info.runs),
            str(info.labels),
            ", ".join(info.members) or "",
        )
    console().print(table)


COMMANDS = [access, space]
