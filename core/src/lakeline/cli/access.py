"""`lakeline access` (PostgreSQL roles), `lakeline space` and `lakeline audit`."""

from __future__ import annotations

from datetime import datetime

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

    engine = use_instance().engine
    table = Table("role", "level", "spaces", box=None)
    for item in roles.grants(engine):
        table.add_row(item.role, item.level, ", ".join(item.spaces) or "(all)")
    console().print(table)
    warning = roles.creators_warning(engine)
    if warning:
        click.echo(warning, err=True)


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


@click.group()
def audit() -> None:
    """The audit log: who changed what, when; a hash chain `verify` checks."""


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is no date: write e.g. 2026-12-01 or 2026-12-01T08:30", param_hint="--since"
        ) from None


@audit.command("log")
@click.argument("key", required=False)
@click.option("--user", default=None, metavar="ROLE", help="Only what ROLE did.")
@click.option("--since", default=None, metavar="DATE", help="Only entries at or after DATE.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N entries.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, with the changed fields.")
def audit_log(
    key: str | None, user: str | None, since: str | None, limit: int | None, as_json: bool
) -> None:
    """Who did what, when: every entry, or those of artifact KEY (every version)."""
    import json

    from lakeline.access.audit import entries
    from lakeline.cli.output import console

    found = entries(use_instance(), key=key, user=user, since=_since(since), limit=limit)
    if as_json:
        for entry in found:
            click.echo(
                json.dumps(
                    {
                        "seq": entry.seq,
                        "at": entry.at.isoformat(),
                        "actor": entry.actor,
                        "table": entry.table,
                        "uid": entry.uid,
                        "action": entry.action,
                        "changes": entry.changes,
                    },
                    default=str,
                )
            )
        return
    out = console()
    for entry in found:
        fields = ", ".join(sorted(entry.changes)) if entry.action == "update" else ""
        out.print(f"{entry}  {fields}".rstrip(), markup=False, highlight=False)


@audit.command("verify")
@click.option("--anchor", "anchor_value", default=None, metavar="SEQ:HASH", help="Check this head.")
def audit_verify(anchor_value: str | None) -> None:
    """Check the hash chain: intact, or the first entry where it breaks (exit code 1)."""
    from lakeline.access.audit import verify
    from lakeline.cli.group import CommandError
    from lakeline.cli.output import console

    verdict = verify(use_instance(), anchor_value)
    if not verdict.ok:
        raise CommandError(str(verdict))
    console().print(str(verdict), markup=False, highlight=False)


@audit.command("anchor")
def audit_anchor() -> None:
    """Print the chain head (SEQ:HASH): keep it elsewhere, check it with verify --anchor."""
    from lakeline.access.audit import anchor

    click.echo(anchor(use_instance()))


COMMANDS = [access, space, audit]
