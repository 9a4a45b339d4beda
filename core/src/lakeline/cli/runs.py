"""`lakeline runs` and `lakeline transforms`: find runs (the uid `export --run` needs) and code."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from lakeline.cli.group import use_instance

if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy.orm import Session

    from lakeline.models import Run, Transform

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
limit_option = click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Show at most N (0: no limit).",
)


def status_text(run: Run, stale: bool) -> str:
    """The run's status, saying when a `started` run's process is gone."""
    return f"{run.status} (process gone)" if stale else run.status


def _duration(run: Run) -> str:
    if run.started_at is None or run.finished_at is None:
        return "-"
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _transform_ids(session: Session, ref: str) -> list[int]:
    """Transforms a `--transform` value names: a key (every version), a uid, or a stem."""
    from sqlalchemy import or_, select

    from lakeline.models import Transform

    found = session.scalars(
        select(Transform.id).where(
            or_(Transform.key == ref, Transform.uid == ref, Transform.stem == ref)
        )
    ).all()
    return list(found)


def _run_rows(
    statuses: tuple[str, ...],
    transform: str | None,
    engine: str | None,
    parent: str | None,
    top_level: bool,
    stale: bool,
    limit: int,
) -> tuple[list[tuple[Run, Transform, bool]], int]:
    """Matching runs, newest first, with their transform and whether they are stale; and how
    many started runs `--stale` could not check (recorded on another host)."""
    from sqlalchemy import select

    from lakeline.errors import DoesNotExist
    from lakeline.instance import current
    from lakeline.lineage.liveness import process_gone, this_host
    from lakeline.models import Run, Transform

    query = select(Run, Transform).join(Transform, Transform.id == Run.transform_id)
    unchecked = 0
    with current().sessions.read() as session:
        if transform is not None:
            ids = _transform_ids(session, transform)
            if not ids:
                raise DoesNotExist(
                    f"no transform with key, uid or stem {transform!r}: "
                    "list them with `lakeline transforms`"
                )
            query = query.where(Run.transform_id.in_(ids))
        if parent is not None:
            parent_id = session.scalar(select(Run.id).where(Run.uid == parent))
            if parent_id is None:
                raise DoesNotExist(f"no run with uid {parent!r}: list runs with `lakeline runs`")
            query = query.where(Run.parent_id == parent_id)
        if top_level:
            query = query.where(Run.parent_id.is_(None))
        if statuses:
            query = query.where(Run.status.in_(statuses))
        if engine is not None:
            query = query.where(Run.engine.is_(None) if engine == "none" else Run.engine == engine)
        if stale:  # the partial index over started runs; liveness is checked here, on this host
            query = query.where(Run.status == "started")
            unchecked = len(
                session.scalars(
                    query.with_only_columns(Run.id).where(
                        (Run.host != this_host()) | Run.host.is_(None) | Run.pid.is_(None)
                    )
                ).all()
            )
            query = query.where(Run.host == this_host(), Run.pid.is_not(None))
        query = query.order_by(Run.started_at.desc().nulls_last(), Run.id.desc())
        if limit and not stale:
            query = query.limit(limit)
        rows = [(run, t, run.status == "started" and process_gone(run) is True) for run, t in
                session.execute(query).tuples()]  # fmt: skip
    if stale:
        rows = [row for row in rows if row[2]]
        rows = rows[:limit] if limit else rows
    return rows, unchecked


def _run_dict(run: Run, transform: Transform, stale: bool) -> dict[str, Any]:
    return {
        "uid": run.uid,
        "status": run.status,
        "stale": stale,
        "transform": transform.key,
        "transform_uid": transform.uid,
        "transform_version": transform.version_number,
        "kind": transform.kind,
        "engine": run.engine,
        "engine_ref": run.engine_ref,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "exit_code": run.exit_code,
        "host": run.host,
        "pid": run.pid,
    }


def _runs_table(rows: list[tuple[Run, Transform, bool]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    from lakeline.cli.output import human_time, printable

    table = Table(header_style="bold")
    table.add_column("uid", no_wrap=True, style="cyan")
    table.add_column("transform", overflow="fold", min_width=16)
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("exit", justify="right", no_wrap=True)
    table.add_column("engine", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("host", no_wrap=True)
    for run, transform, stale in rows:
        cells = [
            run.uid,
            transform.key,
            str(transform.version_number),
            status_text(run, stale),
            "-" if run.exit_code is None else str(run.exit_code),
            run.engine or "-",
            human_time(run.started_at),
            _duration(run),
            run.host or "-",
        ]
        table.add_row(*(Text(printable(cell)) for cell in cells))
    return table


@click.command("runs")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["scheduled", "started", "completed", "errored", "aborted", "cached"]),
    help="Only runs with this status (repeat for several).",
)
@click.option(
    "--transform", metavar="KEY|UID", help="Only runs of this transform (a key: every version)."
)
@click.option(
    "--engine", metavar="NAME", help="Only runs of this engine (snakemake, ...; `none`: scripts)."
)
@click.option("--parent", metavar="UID", help="Only the runs inside run UID (its steps).")
@click.option("--top-level", is_flag=True, help="Only runs that ran inside no other run.")
@click.option(
    "--stale",
    is_flag=True,
    help="Only runs left `started` by a process that is gone (runs recorded on this host).",
)
@limit_option
@json_option
def runs(
    statuses: tuple[str, ...],
    transform: str | None,
    engine: str | None,
    parent: str | None,
    top_level: bool,
    stale: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first: their uid (for `lakeline export --run`), transform, status.

    A `started` run whose process has ended without recording its end (killed) shows as
    `started (process gone)`; that is known for runs of this host that recorded their process.
    """
    from lakeline.cli.output import console, echo_json_lines

    use_instance()
    rows, unchecked = _run_rows(statuses, transform, engine, parent, top_level, stale, limit)
    if as_json:
        echo_json_lines(_run_dict(*row) for row in rows)
    elif not rows:
        click.echo("no stale runs" if stale else "no runs")
    else:
        console().print(_runs_table(rows))
        if limit and len(rows) == limit:
            click.echo(f"showing the newest {limit} runs: use --limit to see more", err=True)
    if unchecked:
        click.echo(
            f"{unchecked} started runs recorded on other hosts (or without their process) "
            "cannot be checked from here",
            err=True,
        )


@click.command("transforms")
@click.argument("prefix", required=False, default="")
@click.option("--kind", metavar="KIND", help="Only transforms of this kind (script, rule, ...).")
@click.option("--all-versions", is_flag=True, help="Show every version, not only the latest.")
@limit_option
@json_option
def transforms(
    prefix: str, kind: str | None, all_versions: bool, limit: int, as_json: bool
) -> None:
    """List transforms (scripts, notebooks, functions, workflows and their steps) whose key
    starts with PREFIX, with their number of runs and last run."""
    from sqlalchemy import func, select

    from lakeline.cli.output import console, echo_json_lines, human_time, printable
    from lakeline.models import Run, Transform

    instance = use_instance()
    counts = (
        select(
            Run.transform_id,
            func.count().label("n"),
            func.max(Run.id).label("last"),
        )
        .group_by(Run.transform_id)
        .subquery()
    )
    query = select(Transform, counts.c.n, counts.c.last).outerjoin(
        counts, counts.c.transform_id == Transform.id
    )
    if prefix:
        query = query.where(Transform.key.startswith(prefix, autoescape=True))
    if kind:
        query = query.where(Transform.kind == kind)
    if not all_versions:
        query = query.where(Transform.is_latest)
    query = query.order_by(Transform.key, Transform.uid)
    if limit:
        query = query.limit(limit)
    with instance.sessions.read() as session:
        rows = session.execute(query).tuples().all()
        last_ids = [last for _, _, last in rows if last is not None]
        last = {r.id: r for r in session.scalars(select(Run).where(Run.id.in_(last_ids)))}
    records = [
        {
            "uid": t.uid,
            "key": t.key,
            "kind": t.kind,
            "version": t.version_number,
            "is_latest": t.is_latest,
            "runs": n or 0,
            "last_run": None if lid is None else last[lid].uid,
            "last_status": None if lid is None else last[lid].status,
            "last_started_at": None if lid is None else _iso(last[lid].started_at),
        }
        for t, n, lid in rows
    ]
    if as_json:
        echo_json_lines(records)
        return
    if not records:
        click.echo("no transforms" + (f" under {prefix!r}" if prefix else ""))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for name, options in (
        ("key", {"overflow": "fold", "min_width": 16}),
        ("uid", {"no_wrap": True, "style": "cyan"}),
        ("kind", {"no_wrap": True}),
        ("version", {"justify": "right", "no_wrap": True}),
        ("runs", {"justify": "right", "no_wrap": True}),
        ("last run", {"no_wrap": True}),
        ("last status", {"no_wrap": True}),
        ("last started", {"no_wrap": True}),
    ):
        table.add_column(name, **options)
    for (t, _, lid), record in zip(rows, records, strict=True):
        run = None if lid is None else last[lid]
        cells = [
            t.key,
            t.uid,
            t.kind,
            str(record["version"]),
            str(record["runs"]),
            record["last_run"] or "-",
            record["last_status"] or "-",
            human_time(None if run is None else run.started_at),
        ]
        table.add_row(*(Text(printable(cell)) for cell in cells))
    console().print(table)
    if limit and len(records) == limit:
        click.echo(f"showing {limit} transforms: use --limit to see more", err=True)


COMMANDS = (runs, transforms)
