"""Artifact commands: ls, get, delete, search (save lives in `save.py`)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import click

from lakeline.cli.group import use_instance

if TYPE_CHECKING:
    from lakeline.models import Artifact

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
version_option = click.option(
    "--version",
    "version",
    metavar="N|LABEL",
    help="A version number (1 = first, as `ls --all-versions` shows) or a version label.",
)


@click.command("ls")
@click.argument("prefix", required=False, default="")
@click.option("--all-versions", is_flag=True, help="Show every version, not only the latest.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Show at most N artifacts (0: no limit).",
)
@json_option
def ls(prefix: str, all_versions: bool, limit: int, as_json: bool) -> None:
    """List artifacts whose key starts with PREFIX (default: all), ordered by key."""
    from lakeline.cli.output import artifact_dict, artifacts_table, console, echo_json_lines
    from lakeline.models import Artifact

    use_instance()
    query = Artifact.filter(key__startswith=prefix) if prefix else Artifact.filter()
    if all_versions:
        query = query.filter(is_latest=None)
    query = query.order_by("key", "uid")
    rows = (query.limit(limit) if limit else query).all()
    if as_json:
        echo_json_lines(artifact_dict(a) for a in rows)
        return
    if not rows:
        what = f" under {prefix!r}" if prefix else ""
        click.echo(f"no artifacts{what}")
        return
    console().print(artifacts_table(rows))
    if limit and len(rows) == limit:
        total = query.count()
        if total > limit:
            click.echo(f"showing {limit} of {total} artifacts: use --limit to see more", err=True)


def _local_name(artifact: Artifact) -> str:
    if artifact.key:
        return PurePosixPath(artifact.key).name
    return f"{artifact.uid}{artifact.suffix}"


def copy_out(source: str, dest: str, name: str, *, force: bool) -> Path:
    """Copy a local file or folder to `dest` (into it, when it is a folder), atomically.

    A `dest` ending in `/` is a folder, created if need be.
    """
    from lakeline.errors import LakelineError

    folder = Path(dest).expanduser()
    into = dest.endswith(("/", os.sep)) or folder.is_dir()
    target = folder / name if into else folder
    if target.exists() or target.is_symlink():
        if not force:
            raise LakelineError(f"{target} already exists: pass --force to overwrite it")
        if target.is_dir() and not target.is_symlink() and not os.path.isdir(source):
            raise LakelineError(f"{target} is a folder: give a file path to write the file to")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        if os.path.isdir(source):
            shutil.copytree(source, tmp)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
        else:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return target


def _details(artifact: Artifact) -> list[tuple[str, str]]:
    from lakeline.cli.output import human_time, size_text, version_text
    from lakeline.models import User

    rows = [
        ("key", artifact.key or "-"),
        ("uid", artifact.uid),
        ("version", version_text(artifact) + ("" if artifact.is_latest else " (not the latest)")),
        ("size", size_text(artifact)),
        ("hash", f"{artifact.hash_type}:{artifact.hash}" if artifact.hash else "-"),
    ]
    if artifact.description:
        rows.append(("description", artifact.description))
    if artifact.otype or artifact.kind:
        rows.append(("type", " / ".join(x for x in (artifact.kind, artifact.otype) if x)))
    if artifact.n_observations is not None:
        rows.append(("observations", str(artifact.n_observations)))
    user = None
    if artifact.created_by_id is not None:
        user = User.filter(id=artifact.created_by_id).first()
    created = human_time(artifact.created_at) + (f" by {user.handle}" if user else "")
    rows.append(("created", created))
    if artifact.run_id is not None:
        run = artifact.run
        if run is not None:
            rows.append(("run", run.uid))
    if artifact.available is False:
        rows.append(("reference to", f"{artifact.location} (lakeline holds no bytes)"))
    else:
        where = " (in place, through a link)" if artifact.through_link else " (in place)"
        rows.append(("stored at", artifact.path + (where if artifact.in_place else "")))
    return rows


@click.command()
@click.argument("ref", metavar="KEY_OR_UID")
@version_option
@click.option(
    "-o",
    "--output",
    "dest",
    metavar="DEST",
    help="Copy the bytes (file or folder) to DEST, or into DEST when it is a folder or ends in /.",
)
@click.option("--force", is_flag=True, help="With -o: overwrite an existing file or folder.")
@json_option
def get(ref: str, version: str | None, dest: str | None, force: bool, as_json: bool) -> None:
    """Show an artifact and a local path to its bytes (downloaded once for remote storage).

    A reference (data lakeline holds no bytes for) is shown with its location.

    KEY_OR_UID is a key (its latest version), a 16-character uid, or a 12-character uid
    stem (the latest version).
    """
    from lakeline.cli.output import artifact_dict, echo_fields, echo_json_lines
    from lakeline.cli.resolve import resolve_artifact

    use_instance()
    artifact = resolve_artifact(ref, version)
    if artifact.available is False and dest is None:  # a reference: show it, nothing to fetch
        if as_json:
            echo_json_lines([{**artifact_dict(artifact), "local_path": None, "copied_to": None}])
        else:
            echo_fields(_details(artifact))
        return
    local = artifact.cache()  # a reference with -o: ArtifactUnavailable says why
    copied = None
    if dest is not None:
        copied = copy_out(local, dest, _local_name(artifact), force=force)
    if as_json:
        record = artifact_dict(artifact)
        record["local_path"] = local
        record["copied_to"] = str(copied) if copied else None
        echo_json_lines([record])
        return
    rows = _details(artifact)
    rows.append(("local path", local))
    if copied is not None:
        rows.append(("copied to", str(copied)))
    echo_fields(rows)


@click.command()
@click.argument("ref", metavar="KEY_OR_UID")
@version_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(ref: str, version: str | None, yes: bool) -> None:
    """Delete one artifact version (given a key: its latest version).

    The previous version, if any, becomes the latest. Stored bytes go too unless another
    record uses them; files registered in place are never removed from disk.
    """
    from lakeline.cli.output import printable, version_number
    from lakeline.cli.resolve import resolve_artifact
    from lakeline.models import Artifact

    use_instance()
    artifact = resolve_artifact(ref, version)
    name = printable(artifact.key or "(no key)")
    label = f"{name} (uid {artifact.uid}, version {version_number(artifact)})"
    if not yes:
        click.confirm(f"delete artifact {label}?", abort=True)
    artifact.delete()
    click.echo(f"deleted {label}")
    latest = Artifact.filter(stem=artifact.stem, is_latest=True).first()
    if latest is not None:
        click.echo(f"the latest version is now {version_number(latest)} (uid {latest.uid})")


@click.command()
@click.argument("text")
@click.option(
    "--registry",
    default="artifact",
    show_default=True,
    metavar="NAME",
    help="What to search: artifact, run, transform, collection, feature, ulabel, schema, "
    "storage, user, or a registry a module adds.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Show at most N."
)
@click.option(
    "--exhaustive",
    is_flag=True,
    help="Rank every match (by default, when very many match, the newest are ranked).",
)
@json_option
def search(text: str, registry: str, limit: int, exhaustive: bool, as_json: bool) -> None:
    """Find records whose text fields (artifacts: key and description) match TEXT, best
    matches first."""
    from lakeline.cli.output import artifact_dict, artifacts_table, console, echo_json_lines
    from lakeline.models import Artifact

    use_instance()
    model = _searchable(registry)
    rows = model.search(text, limit=limit, exhaustive=exhaustive).all()
    if model is Artifact:
        if as_json:
            echo_json_lines(artifact_dict(a) for a in rows)
        elif rows:
            console().print(artifacts_table(rows, description=True))
    elif as_json:
        echo_json_lines(_record_dict(r) for r in rows)
    elif rows:
        console().print(_records_table(model, rows))
    if not rows and not as_json:
        what = "artifacts" if model is Artifact else f"{_registry_name(model)} records"
        click.echo(f"no {what} match {text!r}")


def _registry_name(model: type[Any]) -> str:
    return model.__name__.lower()


def _searchable(name: str) -> type[Any]:
    """The searchable registry called `name` (its class name, any case; a module's too)."""
    from lakeline.models import Base, load_all

    load_all()
    found = {
        _registry_name(m.class_): m.class_
        for m in Base.registry.mappers
        if getattr(m.class_, "search_fields", ())
    }
    model = found.get(name.lower())
    if model is None:
        raise click.BadParameter(
            f"{name!r} is not a searchable registry; choose from {', '.join(sorted(found))}",
            param_hint="--registry",
        )
    return model


def _record_dict(record: Any) -> dict[str, Any]:
    """A record's columns as JSON-ready values (times as ISO text)."""
    values = {c.name: getattr(record, c.name) for c in record.__table__.columns}
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}


def _records_table(model: type[Any], rows: list[Any]) -> Any:
    """uid and the fields the registry is searched by, one row per record."""
    from rich.table import Table

    from lakeline.cli.output import printable

    fields = ("uid", *model.search_fields)
    table = Table(*fields, title=f"{len(rows)} {_registry_name(model)} records")
    for row in rows:
        cells = []
        for field in fields:
            value = getattr(row, field)
            shown = "" if value is None else printable(str(value))
            cells.append(shown if len(shown) <= 80 else shown[:79] + "…")
        table.add_row(*cells)
    return table


COMMANDS = (ls, get, delete, search)
