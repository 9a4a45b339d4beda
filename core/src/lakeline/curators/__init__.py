"""Curators: check a DataFrame, an AnnData or a MuData against a schema, fix what can be
fixed (coercion, synonyms, new records), and save data and annotations in one transaction.

`core` holds the curators, `table` the checks of one table, `coerce` dtypes, `categorical`
values against registries, `features` artifact-level values, `saving` the one transaction,
`problems` the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakeline.curators.core import AnnDataCurator, Curator, DataFrameCurator, MuDataCurator

__all__ = ["AnnDataCurator", "Curator", "DataFrameCurator", "MuDataCurator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lakeline.curators import core

        return getattr(core, name)
    raise AttributeError(f"module 'lakeline.curators' has no attribute {name!r}")
