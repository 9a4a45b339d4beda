"""The `lakeline` command line.

Commands live in small modules (`instances`, `artifacts`, `save`); plugins add their own
through the `register_commands(cli)` hook, called the first time the group resolves a command.
Importing this package stays light: rich, SQLAlchemy and the models load inside commands.
"""

from __future__ import annotations

from typing import Any

import click

from lakeline.cli.group import CommandError, LakelineGroup, State, use_instance

__all__ = ["CommandError", "LakelineGroup", "State", "build_cli", "cli", "main", "use_instance"]


def build_cli() -> LakelineGroup:
    """A new `lakeline` group with the built-in commands (plugins add theirs on first use)."""
    from lakeline import __version__
    from lakeline.cli import (
        access,
        artifacts,
        describe,
        export,
        instances,
        integrity,
        lineage,
        modules,
        runs,
        save,
        ui,
        validate,
    )

    @click.group(
        cls=LakelineGroup,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.option(
        "-i",
        "--instance",
        metavar="NAME",
        help="Work on instance NAME instead of the current one ($LAKELINE_INSTANCE).",
    )
    @click.version_option(__version__, "-V", "--version", prog_name="lakeline")
    @click.pass_context
    def lakeline(ctx: click.Context, instance: str | None) -> None:
        """lakeline: a lineage-aware catalog of files, tables and arrays.

        Start with `lakeline init --storage ./data`, then `lakeline save FILE --key KEY`.
        Set LAKELINE_DEBUG=1 to see tracebacks instead of one-line errors.
        """
        ctx.obj = State(instance=instance)

    for command in (
        *instances.COMMANDS,
        *artifacts.COMMANDS,
        *describe.COMMANDS,
        *save.COMMANDS,
        *lineage.COMMANDS,
        *export.COMMANDS,
        *runs.COMMANDS,
        *integrity.COMMANDS,
        *ui.COMMANDS,
        *validate.COMMANDS,
        *modules.COMMANDS,
        *access.COMMANDS,
    ):
        lakeline.add_command(command)
    assert isinstance(lakeline, LakelineGroup)
    return lakeline


cli = build_cli()


def main(args: list[str] | None = None, **kwargs: Any) -> Any:
    """Entry point of the `lakeline` console script."""
    return cli.main(args=args, prog_name="lakeline", **kwargs)
