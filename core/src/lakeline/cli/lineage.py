"""The `lineage` command: the graph around an artifact or run, as SVG, Mermaid or JSON."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lakeline.cli.group import use_instance

if TYPE_CHECKING:
    from lakeline.models import Artifact, Run

_RUN_UID = re.compile(r"^[0-9A-Za-z]{16}$")
_SUFFIXES = {".svg": "svg", ".mmd": "mermaid", ".mermaid": "mermaid", ".json": "json"}


def resolve_node(ref: str, version: str | None) -> Artifact | Run:
    """The artifact (uid, stem or key) or run (uid) that `ref` names."""
    from lakeline.cli.resolve import resolve_artifact
    from lakeline.errors import DoesNotExist
    from lakeline.models import Artifact, Run

    if _RUN_UID.match(ref) and version is None and Artifact.filter(uid=ref).first() is None:
        run = Run.filter(uid=ref).first()
        if run is not None:
            return run
    try:
        return resolve_artifact(ref, version)
    except DoesNotExist as exc:
        if version is not None:
            raise
        raise DoesNotExist(
            f"no artifact or run with uid or key {ref!r}: list artifacts with `lakeline ls`"
        ) from exc


@click.command("lineage")
@click.argument("ref", metavar="KEY_OR_UID")
@click.option(
    "--direction",
    type=click.Choice(["upstream", "downstream", "both"]),
    default="upstream",
    show_default=True,
    help="Where it came from, what came of it, or both.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    metavar="N",
    help="At most N steps (runs) away; 1 = the producing run and its inputs. Default: no limit.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["svg", "mermaid", "json"]),
    help="Output format (default: from the -o suffix, else svg).",
)
@click.option("-o", "--output", "output", metavar="FILE", help="Write to FILE instead of stdout.")
@click.option(
    "--version", "version", metavar="N|LABEL", help="A version of the artifact (1 = first)."
)
@click.option("--parents", "include_parents", is_flag=True, help="Add parent (workflow) runs.")
@click.option(
    "--collapse", "collapse", is_flag=True, help="Show each workflow's task runs as one run."
)
def lineage(
    ref: str,
    direction: str,
    depth: int | None,
    fmt: str | None,
    output: str | None,
    version: str | None,
    include_parents: bool,
    collapse: bool,
) -> None:
    """Show the lineage graph of an artifact or a run.

    KEY_OR_UID is an artifact key (its latest version), an artifact uid or stem, or a run
    uid. SVG for a terminal is written to ./lineage-<uid>.svg instead of the screen.
    """
    from lakeline.lineage.graph import lineage as build

    use_instance()
    node = resolve_node(ref, version)
    if fmt is None:
        fmt = _SUFFIXES.get(Path(output).suffix.lower(), "svg") if output else "svg"
    graph = build(
        node,
        direction,
        depth,
        include_parents=include_parents,
        collapse_workflows=collapse,
    )
    if output is None and fmt == "svg" and sys.stdout.isatty():
        output = f"lineage-{graph.root}.svg"
    if output is None:
        click.echo(graph.render(fmt), nl=False)
        return
    path = graph.write(output, fmt)
    click.echo(
        f"wrote {path}: {len(graph.artifacts)} artifacts, {len(graph.runs)} runs, "
        f"{len(graph.edges)} edges",
        err=True,
    )


COMMANDS = (lineage,)
