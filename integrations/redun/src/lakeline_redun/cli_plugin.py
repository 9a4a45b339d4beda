"""The `lakeline redun ...` commands (entry point `redun` of group `lakeline`)."""

from __future__ import annotations

import click
from lakeline.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the `redun` command group."""

    @cli.group("redun")
    def redun() -> None:
        """redun workflows: lineage of their executions."""

    @redun.command("import")
    @click.option(
        "--db",
        default=".redun/redun.db",
        show_default=True,
        help="redun database: a SQLite file or a postgresql:// URL.",
    )
    @click.option("--execution", metavar="ID", help="Only this execution (id or unique prefix).")
    @click.option(
        "--root",
        type=click.Path(file_okay=False),
        help="Folder redun ran in (default: the one holding .redun/, else the current one).",
    )
    @click.option("--pipeline", metavar="KEY", help="Pipeline transform key (default: root task).")
    @click.option(
        "--upload/--no-upload",
        default=False,
        help="Upload files outside the root (default: register them in place).",
    )
    def import_(
        db: str, execution: str | None, root: str | None, pipeline: str | None, upload: bool
    ) -> None:
        """Record redun executions (jobs, tasks, files) as lakeline lineage.

        Importing again changes nothing.
        """
        from lakeline.cli import use_instance

        from lakeline_redun.importer import import_redun

        instance = use_instance()
        result = import_redun(
            db, execution=execution, root=root, pipeline=pipeline, upload=upload, instance=instance
        )
        done = [e for e in result.executions if e not in result.left_out]  # (its run written)
        click.echo(f"imported {len(done)} execution(s), {result.jobs} job(s) from {db}")
        for path in result.missing:
            click.echo(f"warning: {path} no longer exists (recorded as missing)", err=True)
        if result.left_out:  # partial: say so, and exit 1
            from lakeline.errors import StepsNotRecorded

            left = list(result.left_out.items())
            for ref, why in left[:10]:
                click.echo(f"not recorded: {ref}: {why}", err=True)
            more = f" ({len(left) - 10} more not listed)" if len(left) > 10 else ""
            raise StepsNotRecorded(
                f"{len(left)} job(s) or execution(s) not recorded: the database refused them "
                f"(listed above{more}); the rest was imported. Import again once the cause is "
                "fixed: what was recorded stays as it is",
                result.left_out,
            )
