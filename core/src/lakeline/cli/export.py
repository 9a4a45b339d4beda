"""`lakeline export`: write the lineage of a run in a standard format (PROV, RO-Crate, ...)."""

from __future__ import annotations

from pathlib import Path

import click

from lakeline.cli.group import use_instance


@click.command()
@click.argument("format_name", metavar="FORMAT")
@click.option("--run", "run_uid", required=True, metavar="UID", help="The run to export.")
@click.option(
    "-o",
    "--output",
    "out_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into (default: ./lakeline-export-<uid>).",
)
def export(format_name: str, run_uid: str, out_dir: Path | None) -> None:
    """Export run UID and everything inside it (child runs, inputs, outputs) as FORMAT.

    FORMAT is `prov` (W3C PROV-JSON), `rocrate` (RO-Crate Workflow Run Crate) or
    `openlineage` (OpenLineage run events, JSON lines), or one a plugin adds.
    """
    from lakeline.errors import LakelineError
    from lakeline.lineage.exporters import get_exporter
    from lakeline.models import Run

    exporter = get_exporter(format_name)  # an unknown format fails before touching the database
    instance = use_instance()
    run = Run.filter(uid=run_uid).first()
    if run is None:
        raise LakelineError(f"no run with uid {run_uid!r} in instance {instance.name!r}")
    target = out_dir if out_dir is not None else Path(f"lakeline-export-{run.uid}")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LakelineError(f"cannot create the output folder {target}: {exc}") from exc
    written = exporter.export(run, target)
    click.echo(f"exported run {run.uid} as {exporter.name} into {target}:")
    for path in written:
        click.echo(f"  {path}")


COMMANDS = (export,)
