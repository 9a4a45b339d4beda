"""`lakeline nextflow import` and `lakeline nextflow serve` (plugin entry point `nextflow`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from lakeline.hookspecs import hookimpl

if TYPE_CHECKING:
    from lakeline_nextflow.model import Report


@click.group("nextflow")
def nextflow() -> None:
    """Nextflow runs as lineage: import what a run left behind, or receive its weblog."""


@nextflow.command("import")
@click.argument("launch_dir", default=".", type=click.Path(file_okay=False))
@click.option(
    "--trace",
    "traces",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="A trace file (-with-trace); default: found in the launch dir. Repeatable.",
)
@click.option(
    "--report",
    "reports",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="An execution report HTML (-with-report), for full hashes and times.",
)
@click.option(
    "--lineage-store",
    type=click.Path(file_okay=False, exists=True),
    help="Nextflow's lineage store (default: LAUNCH_DIR/.lineage).",
)
@click.option(
    "--rocrate",
    type=click.Path(dir_okay=False, exists=True),
    help="nf-prov's ro-crate-metadata.json (default: found in the launch dir).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, exists=True),
    help="The work dir, when it is not where the log says (-w, moved).",
)
@click.option(
    "--publish-dir",
    "publish",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Where published copies are (default: params.outdir, else results/).",
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="Zone of the log's and trace's wall-clock times (default: this machine's).",
)
@click.option("--dry-run", is_flag=True, help="Read and merge, report, record nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_command(
    launch_dir: str,
    traces: tuple[str, ...],
    reports: tuple[str, ...],
    lineage_store: str | None,
    rocrate: str | None,
    work_dir: str | None,
    publish: tuple[str, ...],
    timezone: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import the Nextflow run(s) launched in LAUNCH_DIR (default: here) as lineage.

    Reads .nextflow.log (and rotated .nextflow.log.N), .nextflow/history, trace files and
    execution reports, task work dirs, the lineage store and nf-prov's RO-Crate, whichever
    exist. Importing again changes nothing; launches of one session (-resume) merge.
    """
    from lakeline.cli.group import use_instance

    from lakeline_nextflow.importer import import_run

    instance = None if dry_run else use_instance()
    report = import_run(
        launch_dir,
        trace=traces,
        report_html=reports,
        lineage_store=lineage_store,
        rocrate=rocrate,
        work_dir=work_dir,
        publish=publish,
        timezone=timezone,
        dry_run=dry_run,
        instance=instance,
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        show(report)
    if report.left_out:  # partial: the rest recorded, these not
        from lakeline.errors import StepsNotRecorded

        raise StepsNotRecorded(
            f"{len(report.left_out)} task(s) or run(s) not recorded: the database refused them "
            "(listed above); the rest was imported. Import again once the cause is fixed: what "
            "was recorded stays as it is",
            report.left_out,
        )


def show(report: Report) -> None:
    """The report for people: what was recorded, what is unknown, what went wrong."""
    from lakeline.cli.output import console

    out = console()
    verb = "recorded" if report.recorded else "would record (dry run)"
    for wf in report.workflows:
        states = ", ".join(f"{n} {s}" for s, n in wf["by_status"].items()) or "no tasks"
        version = f" {wf['version']}" if wf.get("version") else ""
        out.print(
            f"[bold]{wf['pipeline']}{version}[/bold] session {wf['session']}: "
            f"{wf['status'] or 'unfinished'}; launches: {', '.join(map(str, wf['launches']))}",
            markup=True,
        )
        left = wf.get("left_out", 0)
        out.print(
            f"  {verb} {wf['tasks'] - left} tasks of "
            f"{wf['processes']} processes ({states}), {wf['cached']} cached"
            + (f"; {left} not recorded (left out: see below)" if left else ""),
            markup=False,
        )
    out.print(
        f"{len(report.producer_edges)} producer edges, {report.published} published copies",
        markup=False,
    )
    if report.missing:
        out.print(
            f"{len(report.missing)} files vanished while recording (not recorded):",
            markup=False,
        )
        for path in report.missing[:10]:
            out.print(f"  {path}", markup=False)
        if len(report.missing) > 10:
            out.print(f"  ... and {len(report.missing) - 10} more (--json lists all)", markup=False)
    if report.referenced:
        out.print(
            f"{len(report.referenced)} files no longer exist: "
            f"{'recorded' if report.recorded else 'would be recorded'} as references (by "
            "checksum where a source gave one, else by location; their edges are kept, their "
            "bytes cannot be read)",
            markup=False,
        )
    err = console(stderr=True)
    left = list(report.left_out.items())
    for ref, why in left[:10]:
        err.print(f"not recorded: {ref}: {why}", style="red", markup=False)
    if len(left) > 10:
        err.print(f"  ... and {len(left) - 10} more not recorded (--json lists all)", markup=False)
    for note in report.unknown:
        err.print(f"note: {note}", style="cyan", markup=False)
    for warning in report.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)


@nextflow.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (nextflow run ... -with-weblog http://HOST:PORT).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="A file holding a shared token: requests must send it (Authorization: Bearer TOKEN, "
    "or Nextflow's weblog.basicToken = 'nextflow:TOKEN').",
)
@click.option(
    "--max-runs",
    default=64,
    show_default=True,
    type=click.IntRange(1),
    help="Runs followed at once; events of further new runs are refused (503).",
)
@click.option(
    "--stale-after",
    default=48.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    metavar="HOURS",
    help="A run with no event for this long is ended as aborted.",
)
def serve(host: str, port: int, token_file: str | None, max_runs: int, stale_after: float) -> None:
    """Receive `-with-weblog` events and record runs live (Ctrl-C stops)."""
    import logging
    from datetime import timedelta

    from lakeline.cli.group import use_instance

    from lakeline_nextflow.server import WeblogServer, read_token
    from lakeline_nextflow.weblog import WeblogReceiver

    token = None if token_file is None else read_token(token_file)
    instance = use_instance()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    receiver = WeblogReceiver(instance, max_runs=max_runs, stale_after=timedelta(hours=stale_after))
    server = WeblogServer(host, port, receiver, token=token)
    click.echo(f"listening on {server.url}: nextflow run ... -with-weblog {server.url}", err=True)
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {host} without --token-file: anyone who can "
            "reach it can record runs",
            err=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the `nextflow` command group."""
    cli.add_command(nextflow)
