"""The `lakeline snakemake ...` commands (entry point `snakemake` of group `lakeline`)."""

from __future__ import annotations

import click
from lakeline.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the `snakemake` command group."""

    @cli.group("snakemake")
    def snakemake() -> None:
        """Snakemake workflows: lineage of past runs."""

    @snakemake.command("import")
    @click.argument("path", type=click.Path(exists=True, file_okay=False))
    @click.option(
        "--upload/--no-upload",
        default=False,
        help="Upload files outside the workflow folder (default: register them in place).",
    )
    @click.option("--pipeline", metavar="KEY", help="Pipeline transform key (default: folder).")
    def import_(path: str, upload: bool, pipeline: str | None) -> None:
        """Record the runs of the workflow folder PATH from what they left on disk.

        Replays the journals the logger plugin wrote (filling in what it could not record)
        and imports jobs known only from .snakemake/metadata. Importing again changes nothing.
        """
        import lakeline as ll
        from lakeline.cli import use_instance

        from snakemake_logger_plugin_lakeline.importer import import_workflow

        instance = use_instance()
        runs_before = ll.Run.filter(engine="snakemake").count()
        artifacts_before = ll.Artifact.filter(is_latest=None).count()
        result = import_workflow(
            path,
            instance=instance,
            upload=upload,
            pipeline=pipeline,
            report=lambda line: click.echo(line, err=True),
        )
        runs = ll.Run.filter(engine="snakemake").count() - runs_before
        artifacts = ll.Artifact.filter(is_latest=None).count() - artifacts_before
        click.echo(
            f"imported {path}: {result.journal_jobs} jobs from {result.journals} journal(s), "
            f"{result.metadata_jobs} from metadata; {runs} new runs, {artifacts} new artifacts"
        )
        for line in result.problems:
            click.echo(line, err=True)
        if result.left_out:  # partial: the rest recorded, these not (import again once fixed)
            from lakeline.errors import StepsNotRecorded

            raise StepsNotRecorded(
                f"{result.left_out} job(s) not recorded: the database refused their steps "
                "(listed above, with why); the rest was imported. Import again once the cause "
                "is fixed: what was recorded stays as it is"
            )
