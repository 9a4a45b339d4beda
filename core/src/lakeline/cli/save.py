"""`lakeline save`: register files and folders, many at once in one transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import click

from lakeline.cli.group import use_instance

if TYPE_CHECKING:
    from lakeline.models import Artifact


def _name_of(path: str) -> str:
    """The file or folder name a path or URL ends in."""
    if "://" in path:
        return PurePosixPath(path.split("://", 1)[1].rstrip("/")).name
    return Path(path).expanduser().resolve().name


def _inside_storage(path: str) -> bool:
    """Whether `path` lies in a registered storage root (then it is registered in place)."""
    from lakeline.artifacts.locate import storage_containing
    from lakeline.cli.group import use_instance
    from lakeline.errors import LakelineError
    from lakeline.storage.roots import normalize_root

    try:
        return storage_containing(normalize_root(path), use_instance()) is not None
    except LakelineError:
        return False


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix.rstrip("/") else name


def plan_keys(paths: Sequence[str], key: str | None, prefix: str | None) -> list[str | None]:
    """The key each path is saved under.

    `--key` names the one path; `--prefix` puts each path's name under a prefix; otherwise
    a path keeps its name, or (inside a storage root) the key of its place there.
    """
    if key is not None:
        if len(paths) > 1:
            raise click.UsageError("--key names one artifact: give --prefix for several paths")
        if prefix is not None:
            raise click.UsageError("give either --key or --prefix, not both")
        return [key]
    keys: list[str | None] = []
    for path in paths:
        if prefix is not None:
            keys.append(_join(prefix, _name_of(path)))
        elif _inside_storage(path):
            keys.append(None)  # lakeline uses the path inside the storage root
        else:
            keys.append(_name_of(path))
    repeated = sorted(k for k, n in Counter(k for k in keys if k is not None).items() if n > 1)
    if repeated:
        raise click.UsageError(
            f"several paths would be saved under the same key: {', '.join(repeated)}; "
            "save them separately with --key, or with different --prefix values"
        )
    return keys


@contextmanager
def _progress(total: int) -> Iterator[Callable[[str, int], None] | None]:
    """A progress bar on stderr for hashing and storing `total` artifacts (none for one)."""
    if total < 2:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lakeline.cli.output import console

    columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console(stderr=True)) as progress:
        tasks = {
            "hash": progress.add_task("hashing", total=total),
            "upload": progress.add_task("storing", total=total),
        }

        def advance(stage: str, n: int) -> None:
            if stage in tasks:
                progress.advance(tasks[stage], n)

        yield advance
        # Content already stored, or registered in place, needs no upload: the bar completes.
        for task in tasks.values():
            progress.update(task, completed=total)


def _status(artifact: Artifact) -> str:
    from lakeline.cli.output import version_number

    if not artifact.created:
        return "unchanged"
    return "new version" if version_number(artifact) > 1 else "new"


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--key", help="Key of the artifact (one PATH only), e.g. raw/reads.csv.")
@click.option("--prefix", help="Save each PATH under PREFIX/<its name>, e.g. --prefix raw/2024-06.")
@click.option("--description", "desc", help="Description of the artifact(s).")
def save(paths: tuple[str, ...], key: str | None, prefix: str | None, desc: str | None) -> None:
    """Save files or folders (a folder is one artifact) as artifacts.

    Several paths are saved together: all of them or none. Identical content under the same
    key is recognised and reported as unchanged; new content under an existing key becomes a
    new version.
    """
    from rich.table import Table
    from rich.text import Text

    import lakeline
    from lakeline.cli.output import console, printable, size_text, version_text

    use_instance()
    keys = plan_keys(paths, key, prefix)
    artifacts = [
        lakeline.Artifact(path, key=k, description=desc)
        for path, k in zip(paths, keys, strict=True)
    ]
    with _progress(len(artifacts)) as progress:
        saved = lakeline.save(artifacts, progress=progress)
    table = Table(header_style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("key", overflow="fold", min_width=16)
    for column in ("uid", "version", "size"):
        table.add_column(column, no_wrap=True)
    statuses = []
    for artifact in saved:
        status = _status(artifact)
        statuses.append(status)
        table.add_row(
            Text(status, style="dim" if status == "unchanged" else "green"),
            Text(printable(artifact.key or "-")),
            Text(artifact.uid, style="cyan"),
            Text(version_text(artifact)),
            Text(size_text(artifact)),
        )
    out = console()
    out.print(table)
    counts = Counter(statuses)
    summary = ", ".join(
        f"{counts[s]} {s}" for s in ("new", "new version", "unchanged") if counts[s]
    )
    noun = "artifact" if len(saved) == 1 else "artifacts"
    click.echo(f"saved {len(saved)} {noun} ({summary})")


COMMANDS = (save,)
