"""`lakeline validate FILE --schema NAME`: a csv/tsv/parquet/h5ad/h5mu file against a saved
schema; exit 0 when it fits, exit 1 with a table of every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lakeline.cli.group import CommandError, use_instance

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
           ".h5ad": "h5ad", ".h5mu": "h5mu"}  # fmt: skip


def read(path: Path) -> Any:
    """The file as a DataFrame, AnnData or MuData (by suffix)."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise CommandError(
            f"cannot validate {path.name}: lakeline validate reads "
            f"{', '.join(sorted(READERS))} files"
        )
    if not path.is_file():
        raise CommandError(f"{path} does not exist: check the path")
    if kind in ("csv", "tsv"):
        import pandas as pd

        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    if kind == "parquet":
        import pandas as pd

        return pd.read_parquet(path)
    from lakeline.formats.registry import require

    if kind == "h5ad":
        return require("anndata", "anndata").read_h5ad(path)
    return require("mudata", "mudata").read_h5mu(path)


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--schema", "schema_name", required=True, metavar="NAME", help="A saved schema.")
def validate(path: Path, schema_name: str) -> None:
    """Check FILE (csv, tsv, parquet, h5ad, h5mu) against the schema NAME.

    Exit 0 when it fits; exit 1 with a table of every problem (missing or unexpected
    columns, values that do not fit a dtype, values not in their registry, with
    suggestions). Nothing is written.
    """
    from lakeline import curators
    from lakeline.cli.output import console
    from lakeline.errors import CurationError
    from lakeline.models import Schema

    use_instance()
    schema = Schema.filter(name=schema_name).first()
    if schema is None:
        names = [s.name for s in Schema.filter().order_by("name").limit(10)]
        known = ", ".join(map(repr, names)) if names else "none saved"
        raise CommandError(f"no schema named {schema_name!r} (schemas: {known})")
    data = read(path)
    kind = type(data).__name__
    curator_class = {
        "DataFrame": curators.DataFrameCurator,
        "AnnData": curators.AnnDataCurator,
        "MuData": curators.MuDataCurator,
    }[kind]
    try:
        curator = curator_class(data, schema)
        curator.validate(show=False)
    except CurationError as error:
        if not error.problems:
            raise CommandError(str(error)) from None
        console().print(curator.problems_table())
        count = len(error.problems)
        raise CommandError(
            f"{path.name} does not fit schema {schema.name!r}: {count} problem"
            + ("s" if count != 1 else "")
            + " (table above)"
        ) from None
    console().print(f"{path.name} fits schema {schema.name!r}")


COMMANDS = (validate,)
