"""`lakeline modules`: list schema modules (installed, mounted) and mount more."""

from __future__ import annotations

import click

from lakeline.cli.group import State


def split_names(
    _ctx: click.Context | None, _param: click.Parameter | None, values: tuple[str, ...]
) -> list[str]:
    """`--modules a,b --modules c` -> [a, b, c]."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _instance_name() -> str | None:
    from lakeline.config import current_name

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(State) if ctx is not None else None
    return (state.instance if state else None) or current_name()


def module_rows(name: str | None) -> tuple[dict[str, str], list[str]]:
    """({mounted module: distribution}, alembic_version rows) of instance `name`, read
    without connecting (which refuses an instance whose modules are not installed)."""
    if not name:
        return {}, []
    from lakeline.config import load_config
    from lakeline.db.engine import make_engine
    from lakeline.db.migrate import revisions
    from lakeline.errors import LakelineError
    from lakeline.modules.mounting import read_mounted

    try:
        config = load_config(name)
        engine = make_engine(config.db, create=False)
        try:
            with engine.connect() as conn:
                return read_mounted(conn), revisions(conn) or []
        finally:
            engine.dispose()
    except LakelineError:
        return {}, []  # no database yet (migrate makes it), or unreachable: commands say so


def echo_module_changes(before: list[str], after: list[str]) -> None:
    """One line per module branch a migration moved."""
    old = {row.split("_")[0]: row for row in before if "_" in row}
    for row in after:
        if "_" in row and old.get(row.split("_")[0]) != row:
            click.echo(f"module branch {row.split('_')[0]}: {old.get(row.split('_')[0])} -> {row}")


@click.group(invoke_without_command=True)
@click.pass_context
def modules(ctx: click.Context) -> None:
    """Schema modules: installed here, mounted by the instance (`modules add NAME`)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table
    from rich.text import Text

    from lakeline.cli.output import console
    from lakeline.modules.spec import installed

    found = installed()
    name = _instance_name()
    mounted, rows = module_rows(name)
    table = Table(box=None, header_style="bold")
    for column in ("module", "distribution", "prefix", "installed", "mounted", "revision"):
        table.add_column(column)
    for module_name in sorted(set(found) | set(mounted)):
        module = found.get(module_name)
        at = "" if module is None else next((r for r in rows if module.owns_revision(r)), "")
        head = "" if module is None else module.head
        revision = "" if module_name not in mounted else f"{at or 'none'} (head {head})"
        if module is None:
            revision = "? (not installed: its revisions are unknown here)"
        table.add_row(
            Text(module_name),
            Text(module.distribution if module else mounted[module_name]),
            Text(module.prefix if module else ""),
            Text("yes" if module else "NO"),
            Text("yes" if module_name in mounted else "no"),
            Text(revision),
        )
    if not table.row_count:
        click.echo("no schema modules installed")
        return
    console().print(table)


@modules.command("add")
@click.argument("names", nargs=-1, required=True)
def add(names: tuple[str, ...]) -> None:
    """Mount installed schema modules on the instance (migrates their tables)."""
    from lakeline.cli.group import use_instance
    from lakeline.modules.mounting import add as add_modules

    instance = use_instance()
    listed = split_names(None, None, names)
    added = add_modules(listed, instance)
    for module in listed:
        verb = "mounted" if module in added else "already mounted"
        click.echo(f"{instance.name}: {verb} schema module {module}")


COMMANDS = (modules,)
