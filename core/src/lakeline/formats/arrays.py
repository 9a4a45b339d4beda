"""Annotated arrays: AnnData as h5ad (HDF5) or zarr (a folder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakeline.formats.registry import Format
from lakeline.hookspecs import hookimpl

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

ANNDATA = ("anndata.AnnData",)


def _describe(adata: Any) -> dict[str, Any]:
    return {"otype": "AnnData", "n_observations": int(adata.n_obs)}


def _save_h5ad(adata: Any, path: str) -> None:
    adata.write_h5ad(path)


def _load_h5ad(path: str) -> Any:
    import anndata

    return anndata.read_h5ad(path)


def _open_h5ad(path: str, fs: AbstractFileSystem) -> Any:
    """AnnData in backed mode: X stays on disk until sliced."""
    import anndata

    return anndata.read_h5ad(path, backed="r")


def _save_zarr(adata: Any, path: str) -> None:
    adata.write_zarr(path)


def _load_zarr(path: str) -> Any:
    import anndata

    return anndata.read_zarr(path)


def _open_zarr(path: str, fs: AbstractFileSystem) -> Any:
    """The zarr group, read lazily chunk by chunk (from any fsspec filesystem)."""
    import zarr
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        return zarr.open_group(path, mode="r")
    return zarr.open_group(fs.get_mapper(path), mode="r")


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            name="h5ad",
            suffixes=(".h5ad",),
            types=ANNDATA,
            save=_save_h5ad,
            load=_load_h5ad,
            open=_open_h5ad,
            describe=_describe,
            open_needs_local=True,
            priority=10,
        )
    )
    register(
        Format(
            name="zarr",
            suffixes=(".zarr", ".anndata.zarr"),
            types=ANNDATA,
            save=_save_zarr,
            load=_load_zarr,
            open=_open_zarr,
            describe=_describe,
            is_folder=True,
        )
    )
