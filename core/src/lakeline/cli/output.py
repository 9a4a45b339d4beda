"""Console output: rich consoles, human-readable sizes and times, artifact tables and JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from lakeline.models import Artifact

# Width used when output goes to a pipe or file and $COLUMNS is not set (rich would use 80).
PIPE_WIDTH = 160
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); wide enough not to truncate tables in pipes."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return Console(file=stream, stderr=stderr, width=width, highlight=False)


def printable(text: str) -> str:
    """`text` with every control character escaped (`\\x1b`, `\\n`, `\\u202e`): records
    written before keys were checked must not move the cursor, colour or split rows."""
    from lakeline.storage.keys import CONTROL

    return CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def human_size(size: int | None) -> str:
    """`1234567` -> `1.2 MB` (decimal units, like `ls -h --si`)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_time(moment: datetime | None) -> str:
    """A timestamp in local time, to the minute."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def version_number(artifact: Artifact) -> int:
    """1 for the first version, 2 for the second, ... (the uid suffix counts from 0)."""
    return artifact.version_number


def version_text(artifact: Artifact) -> str:
    """The version number, with its label when one was given (`2 (v2.0)`)."""
    number = str(version_number(artifact))
    return f"{number} ({artifact.version})" if artifact.version else number


def size_text(artifact: Artifact) -> str:
    """Size, plus the file count of folders; references say so."""
    size = human_size(artifact.size)
    if artifact.available is False:
        return f"{size} (reference)"
    if artifact.n_files is not None:
        return f"{size} ({artifact.n_files} files)"
    return size


def artifact_dict(artifact: Artifact) -> dict[str, Any]:
    """An artifact as a JSON-ready dict."""
    return {
        "uid": artifact.uid,
        "key": artifact.key,
        "version": version_number(artifact),
        "version_label": artifact.version,
        "is_latest": artifact.is_latest,
        "size": artifact.size,
        "n_files": artifact.n_files,
        "suffix": artifact.suffix,
        "kind": artifact.kind,
        "otype": artifact.otype,
        "n_observations": artifact.n_observations,
        "hash": artifact.hash,
        "hash_type": artifact.hash_type,
        "description": artifact.description,
        "path": artifact.location if artifact.available is not False else None,
        "location": artifact.location,
        "available": artifact.available is not False,
        "in_place": artifact.in_place,
        "through_link": artifact.through_link,  # None: recorded before it was asked (0028)
        "created_at": artifact.created_at.isoformat() if artifact.created_at else None,
    }


def echo_json_lines(records: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line on stdout."""
    for record in records:
        click.echo(json.dumps(record, default=str))


def artifacts_table(
    artifacts: Iterable[Artifact], *, description: bool = False, title: str | None = None
) -> Table:
    """A table of artifacts: key, uid, size, version, latest, created."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("key", overflow="fold", min_width=16)
    table.add_column("uid", no_wrap=True, style="cyan")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("latest", justify="center", no_wrap=True)
    if description:
        table.add_column("description", overflow="fold")
    table.add_column("created", no_wrap=True)
    for artifact in artifacts:
        row = [
            artifact.key or "-",
            artifact.uid,
            size_text(artifact),
            version_text(artifact),
            "yes" if artifact.is_latest else "",
        ]
        if description:
            row.append(artifact.description or "")
        row.append(human_time(artifact.created_at))
        table.add_row(*(Text(printable(cell)) for cell in row))
    return table


def echo_fields(rows: Iterable[tuple[str, str]]) -> None:
    """Print `name  value` lines, names aligned; values never wrap (paths stay copyable)."""
    rows = list(rows)
    width = max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        click.echo(click.style(name.ljust(width), bold=True) + "  " + printable(value))
