"""`lakeline verify` (hash stored bytes again) and `lakeline gc` (remove bytes no record uses)."""

from __future__ import annotations

import re

import click

from lakeline.cli.group import use_instance

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `90`, `30s`, `15m`, `1h`, `2d` (UsageError otherwise)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise click.BadParameter(f"{text!r} is no duration: write e.g. 30m, 1h, 2d or 0")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@click.command()
@click.argument("keys", nargs=-1, metavar="[KEY]...")
@click.option("--all", "every", is_flag=True, help="Every artifact with stored bytes.")
def verify(keys: tuple[str, ...], every: bool) -> None:
    """Hash the stored bytes of KEYs (every version) or of --all artifacts again and report
    each one whose bytes are missing or differ from its record. Exit code 1 on any."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from lakeline.artifacts.access import stored_problem
    from lakeline.cli.output import console, human_size
    from lakeline.models import Artifact

    if bool(keys) == every:
        raise click.UsageError("give KEYs to verify, or --all (not both)")
    instance = use_instance()
    query = Artifact.filter(is_latest=None, available=True)
    if keys:
        query = query.filter(key__in=list(keys))
    records = query.order_by("key", "uid").all()
    if keys:
        unknown = sorted(set(keys) - {a.key for a in records})
        if unknown:
            raise click.UsageError(f"no artifact with stored bytes has key {', '.join(unknown)}")
    total = sum(a.size or 0 for a in records)
    problems: list[str] = []
    columns = (
        TextColumn("verifying"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("verify", total=total)
        for artifact in records:
            problem = stored_problem(artifact, instance, full=True)
            if problem is not None:
                problems.append(problem)
                progress.console.print(f"[red]mismatch[/red] {problem}", soft_wrap=True)
            progress.advance(task, artifact.size or 0)
    summary = f"verified {len(records)} artifacts ({human_size(total)})"
    if problems:
        click.secho(f"{summary}: {len(problems)} with bytes that do not match", fg="red")
        raise SystemExit(1)
    click.echo(f"{summary}: all match their records")


@click.command()
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="Leave what is younger than this (a save may be using it): e.g. 30m, 2h, 1d, 0.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def gc(grace: str, dry_run: bool, yes: bool) -> None:
    """Remove bytes no record references: objects in .lakeline/objects/ left by saves that
    were killed or lost their database, and .partial copies of interrupted saves."""
    from lakeline.artifacts.sweep import find_garbage, remove_garbage
    from lakeline.cli.output import human_size

    instance = use_instance()
    garbage = find_garbage(instance, grace_s=parse_duration(grace))
    size = human_size(sum(g.size for g in garbage))
    for item in garbage:
        click.echo(f"{item.kind:<12} {human_size(item.size):>9}  {item.location}")
    if not garbage:
        click.echo(f"nothing to remove (older than {grace})")
        return
    if dry_run:
        click.echo(f"would remove {len(garbage)} items ({size})")
        return
    if not yes:
        click.confirm(f"remove {len(garbage)} items ({size})?", abort=True)
    removed = remove_garbage(instance, garbage)
    kept = len(garbage) - len(removed)
    note = f"; {kept} kept (a record uses them now)" if kept else ""
    click.echo(f"removed {len(removed)} items ({human_size(sum(g.size for g in removed))}){note}")


COMMANDS = [verify, gc]
