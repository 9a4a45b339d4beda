"""Tables: pandas DataFrames as parquet (pyarrow) or csv/tsv."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakeline.formats.registry import Format
from lakeline.hookspecs import hookimpl

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

DATAFRAME = ("pandas.DataFrame",)


def _describe(df: Any) -> dict[str, Any]:
    return {"otype": "DataFrame", "n_observations": len(df)}


def _save_parquet(df: Any, path: str) -> None:
    df.to_parquet(path, engine="pyarrow")


def _load_parquet(path: str) -> Any:
    import pandas as pd

    return pd.read_parquet(path, engine="pyarrow")


def _open_parquet(path: str, fs: AbstractFileSystem) -> Any:
    """A lazy pyarrow dataset; nothing is read until it is scanned."""
    import pyarrow.dataset as ds

    return ds.dataset(path, format="parquet", filesystem=fs)


def _keeps_index(df: Any) -> bool:
    import pandas as pd

    return not (isinstance(df.index, pd.RangeIndex) and df.index.name is None)


def _save_csv(df: Any, path: str) -> None:
    df.to_csv(path, index=_keeps_index(df))


def _save_tsv(df: Any, path: str) -> None:
    df.to_csv(path, sep="\t", index=_keeps_index(df))


def _load_csv(path: str) -> Any:
    import pandas as pd

    return pd.read_csv(path)


def _load_tsv(path: str) -> Any:
    import pandas as pd

    return pd.read_csv(path, sep="\t")


def _open_csv(path: str, fs: AbstractFileSystem) -> Any:
    """A lazy pyarrow dataset over the csv file."""
    import pyarrow.dataset as ds

    return ds.dataset(path, format="csv", filesystem=fs)


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            name="parquet",
            suffixes=(".parquet", ".pq"),
            types=DATAFRAME,
            save=_save_parquet,
            load=_load_parquet,
            open=_open_parquet,
            describe=_describe,
            priority=10,
        )
    )
    register(
        Format(
            name="csv",
            suffixes=(".csv", ".csv.gz"),
            types=DATAFRAME,
            save=_save_csv,
            load=_load_csv,
            open=_open_csv,
            describe=_describe,
        )
    )
    register(
        Format(
            name="tsv",
            suffixes=(".tsv", ".tsv.gz"),
            types=DATAFRAME,
            save=_save_tsv,
            load=_load_tsv,
            describe=_describe,
        )
    )
