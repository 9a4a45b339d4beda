"""Instance commands: init, connect, disconnect, instances, info, migrate, transfer."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click

from lakeline.cli.group import State, use_instance
from lakeline.cli.modules import echo_module_changes, module_rows, split_names

if TYPE_CHECKING:
    from lakeline.instance import Instance


def parse_storage_options(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Any]:
    """`KEY=VALUE` pairs -> dict; values are JSON when they parse as JSON, else strings."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(
                f"{item!r} is not KEY=VALUE (e.g. anon=true or "
                'client_kwargs={"endpoint_url": "http://127.0.0.1:9000"})'
            )
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def _summary(instance: Instance) -> list[tuple[str, str]]:
    from lakeline.db.engine import redact

    storage = instance.storage
    return [
        ("instance", f"{instance.name} (uid {instance.uid})"),
        ("database", f"{redact(instance.config.db)} ({instance.dialect})"),
        ("storage", f"{storage.root} ({storage.type})"),
        ("user", instance.user.handle),
    ]


@click.command()
@click.option(
    "--storage",
    required=True,
    metavar="PATH_OR_URL",
    help="Default storage: a local folder or a URL such as s3://bucket/prefix.",
)
@click.option("--name", help="Instance name (default: the storage folder's name).")
@click.option(
    "--db",
    metavar="URL",
    help="Database URL, e.g. postgresql://user:pw@host/db (default: SQLite inside the storage).",
)
@click.option(
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_storage_options,
    help="fsspec option for the storage; VALUE is parsed as JSON when it can be. Repeatable.",
)
@click.option(
    "--modules",
    multiple=True,
    metavar="NAME[,NAME]",
    callback=split_names,
    help="Schema modules to mount (installed distributions; see `lakeline modules`).",
)
def init(
    storage: str,
    name: str | None,
    db: str | None,
    storage_options: dict[str, Any],
    modules: list[str],
) -> None:
    """Create an instance (or join the one the database holds) and make it current."""
    from lakeline.cli.output import echo_fields
    from lakeline.instance import init as init_instance

    instance = init_instance(
        storage, db=db, name=name, storage_options=storage_options or None, modules=modules
    )
    verb = "created" if instance.created else "joined existing"
    click.echo(f"{verb} instance {instance.name}; it is now current")
    echo_fields(_summary(instance))
    _warn_creators(instance.name)  # as `migrate` does: PostgreSQL < 15 lets PUBLIC CREATE


@click.command()
@click.argument("name")
def connect(name: str) -> None:
    """Make instance NAME the current one (checks that it can be reached)."""
    from lakeline.cli.output import echo_fields
    from lakeline.config import set_current
    from lakeline.instance import connect as connect_instance

    instance = connect_instance(name)
    set_current(instance.name)
    click.echo(f"connected to {instance.name}")
    echo_fields(_summary(instance))
    env = os.environ.get("LAKELINE_INSTANCE")
    if env and env != instance.name:
        click.secho(f"note: $LAKELINE_INSTANCE={env} still takes precedence", err=True)


@click.command()
def disconnect() -> None:
    """Forget the current instance (nothing is deleted)."""
    from lakeline.config import current_name, home, set_current
    from lakeline.instance import disconnect as disconnect_instance

    marker = home() / "current"
    previous = marker.read_text().strip() if marker.exists() else ""
    set_current(None)
    disconnect_instance()
    click.echo(f"disconnected from {previous}" if previous else "no instance was current")
    if current_name():
        click.secho(
            f"note: $LAKELINE_INSTANCE={current_name()} still selects an instance", err=True
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (name, current, ...).")
def instances(as_json: bool) -> None:
    """List the instances configured on this machine; * marks the current one."""
    from rich.table import Table
    from rich.text import Text

    from lakeline.cli.output import console, echo_json_lines
    from lakeline.config import current_name, list_instances, load_config
    from lakeline.db.engine import redact
    from lakeline.errors import LakelineError

    names = list_instances()
    if as_json:
        echo_json_lines(_described(name, current_name()) for name in names)
        return
    if not names:
        click.echo("no instances yet: create one with `lakeline init --storage ./data`")
        return
    current = current_name()
    table = Table(header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("database", overflow="fold")
    table.add_column("storage", overflow="fold")
    for name in names:
        mark = "*" if name == current else ""
        try:
            config = load_config(name)
        except LakelineError as exc:
            table.add_row(Text(mark), Text(name), Text(f"unreadable: {exc}"), Text(""))
            continue
        table.add_row(Text(mark), Text(name), Text(redact(config.db)), Text(config.storage))
    console().print(table)


def _described(name: str, current: str | None) -> dict[str, Any]:
    from lakeline.config import load_config
    from lakeline.db.engine import redact
    from lakeline.errors import LakelineError

    try:
        config = load_config(name)
    except LakelineError as exc:
        return {"name": name, "current": name == current, "error": str(exc)}
    fields = {"db": redact(config.db), "storage": config.storage, "uid": config.uid}
    return {"name": name, "current": name == current, **fields}


@click.command()
def info() -> None:
    """Show the current instance: database, schema, storage, user and record counts."""
    from lakeline.cli.output import echo_fields
    from lakeline.db.migrate import HEAD_REVISION, current_revision
    from lakeline.models import Artifact, Collection, Run, Transform
    from lakeline.modules import installed

    instance = use_instance()
    with instance.engine.connect() as conn:
        revision = current_revision(conn)
    rows = _summary(instance)
    rows.insert(2, ("schema", f"{revision} (this lakeline: {HEAD_REVISION})"))
    mounted, branches = module_rows(instance.name)
    if mounted:
        at = {row.split("_")[0]: row for row in branches if "_" in row}
        listed = [f"{name} ({at.get(installed()[name].prefix[:-1], 'none')})" for name in mounted]
        rows.insert(3, ("modules", ", ".join(listed)))
    default = instance.storage
    others = [s for s in instance.storages() if s.id != default.id]
    rows.extend(("", f"{s.root} ({s.type})") for s in others)
    versions = Artifact.filter(is_latest=None).count()
    plural = "" if versions == 1 else "s"
    rows.append(("artifacts", f"{Artifact.filter().count()} ({versions} version{plural})"))
    rows.append(("runs", str(Run.filter().count())))
    rows.append(("transforms", str(Transform.filter().count())))
    rows.append(("collections", str(Collection.filter().count())))
    echo_fields(rows)


@click.command()
@click.argument("name", required=False)
@click.pass_context
def migrate(ctx: click.Context, name: str | None) -> None:
    """Bring an instance's database schema up to date (default: the current instance).

    A SQLite database is backed up first. Stop other writers first: a long migration (SQLite,
    from before 0027: ~3 minutes a million artifacts) holds the write lock, and they give up
    after 60 s. Each table rebuilt is shown on stderr.
    """
    from lakeline.config import current_name
    from lakeline.instance import migrate as migrate_instance

    state = ctx.find_object(State)
    name = name or (state.instance if state else None) or current_name()
    _, rows = module_rows(name)
    before, after, backup = migrate_instance(name)
    echo_module_changes(rows, module_rows(name)[1])
    label = name or "instance"
    if before == after:
        click.echo(f"{label}: schema already at revision {after}")
    else:
        click.echo(f"{label}: migrated schema {before or '(empty)'} -> {after}")
    if backup:
        click.echo(f"backup of the previous database: {backup}")
    _warn_creators(name)


def _warn_creators(name: str | None) -> None:
    """PostgreSQL: say who besides the owner may CREATE in the catalog's schema."""
    from lakeline.access.roles import creators_warning
    from lakeline.config import load_config
    from lakeline.db.engine import make_engine

    if name is None:
        return
    config = load_config(name)
    if not config.db.startswith("postgresql"):
        return
    engine = make_engine(config.db, create=False, read_only=True)
    try:
        warning = creators_warning(engine)
    finally:
        engine.dispose()
    if warning:
        click.echo(warning, err=True)


@click.command()
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@click.option("--from", "source", required=True, metavar="NAME", help="Instance to read from.")
@click.option("--all-versions", is_flag=True, help="Every version of each KEY (default: latest).")
def transfer(keys: tuple[str, ...], source: str, all_versions: bool) -> None:
    """Copy the records of artifacts KEY... of instance NAME into this one (same uids); the
    bytes stay in NAME's storage, which is registered here. Again: nothing changes."""
    from lakeline.models import Artifact
    from lakeline.transfers import transfer as transfer_records

    target = use_instance()
    query = Artifact.using(source).filter(key__in=list(keys))
    records = (query.filter(is_latest=None) if all_versions else query).all()
    missing = sorted(set(keys) - {a.key for a in records})
    if missing:
        raise click.UsageError(f"instance {source!r} has no artifact with key {', '.join(missing)}")
    uids = [a.uid for a in records]
    here = Artifact.filter(uid__in=uids).count()
    transfer_records(records, target)
    roots = sorted({target.storage_by_id(a.storage_id).root for a in records})
    click.echo(
        f"transferred {len(records) - here} artifact(s) from {source} into {target.name} "
        f"({here} already here); the bytes stay in {', '.join(roots)}"
    )


COMMANDS = (init, connect, disconnect, instances, info, migrate, transfer)
