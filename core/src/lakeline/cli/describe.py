"""`lakeline describe KEY`: an artifact with its features, labels, schemas and lineage."""

from __future__ import annotations

import click

from lakeline.cli.artifacts import version_option
from lakeline.cli.group import use_instance


@click.command()
@click.argument("ref", metavar="KEY_OR_UID")
@version_option
def describe(ref: str, version: str | None) -> None:
    """Show an artifact as a tree: key, version, storage, run and transform, feature values,
    labels and schemas.

    KEY_OR_UID is a key (its latest version), a 16-character uid, or a 12-character uid
    stem (the latest version).
    """
    from lakeline.annotations.describe import describe_tree
    from lakeline.cli.output import console
    from lakeline.cli.resolve import resolve_artifact

    instance = use_instance()
    console().print(describe_tree(resolve_artifact(ref, version), instance))


COMMANDS = (describe,)
