"""Annotated arrays: AnnData as h5ad (HDF5) or zarr (a folder), MuData as h5mu.

`open()` never reads the whole object: h5ad opens backed (X stays on disk; on remote storage
through a file object that fetches only the blocks read), zarr opens as a lazy group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakeline.formats.registry import Format, is_local, open_remote_for_h5py, require
from lakeline.hookspecs import hookimpl

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

ANNDATA = ("anndata.AnnData",)
MUDATA = ("mudata.MuData",)


def _anndata() -> Any:
    return require("anndata", "anndata")


def _describe(adata: Any) -> dict[str, Any]:
    return {"otype": "AnnData", "n_observations": int(adata.n_obs)}


def _save_h5ad(adata: Any, path: str) -> None:
    adata.write_h5ad(path)


def _load_h5ad(path: str) -> Any:
    return _anndata().read_h5ad(path)


def _open_h5ad(path: str, fs: AbstractFileSystem) -> Any:
    """AnnData in backed mode: X stays on disk (or in the bucket) until sliced."""
    anndata = _anndata()
    if is_local(fs):
        return anndata.read_h5ad(path, backed="r")
    return anndata.read_h5ad(open_remote_for_h5py(fs, path), backed="r")


def _save_zarr(adata: Any, path: str) -> None:
    adata.write_zarr(path)


def _load_zarr(path: str) -> Any:
    return _anndata().read_zarr(path)


def _open_zarr(path: str, fs: AbstractFileSystem) -> Any:
    """The zarr group, read lazily chunk by chunk (from any fsspec filesystem)."""
    zarr = require("zarr", "anndata")
    if is_local(fs):
        return zarr.open_group(path, mode="r")
    from zarr.storage import FsspecStore

    store = FsspecStore(_async(fs), path=path, read_only=True)
    return zarr.open_group(store, mode="r")


def _async(fs: AbstractFileSystem) -> AbstractFileSystem:
    """zarr 3 reads through fsspec's async interface: the same filesystem, made async."""
    if getattr(fs, "async_impl", False):
        from fsspec.asyn import AsyncFileSystem

        if isinstance(fs, AsyncFileSystem):
            return type(fs)(**{**fs.storage_options, "asynchronous": True})
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

    return AsyncFileSystemWrapper(fs)


def _describe_mudata(mdata: Any) -> dict[str, Any]:
    return {"otype": "MuData", "n_observations": int(mdata.n_obs)}


def _save_h5mu(mdata: Any, path: str) -> None:
    mdata.write_h5mu(path)


def _load_h5mu(path: str) -> Any:
    return require("mudata", "mudata").read_h5mu(path)


def _open_h5mu(path: str, fs: AbstractFileSystem) -> Any:
    """MuData in backed mode: each modality's X stays on disk until sliced."""
    return require("mudata", "mudata").read_h5mu(path, backed="r")


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
    # mudata's backed mode needs a file name: on remote storage, open() reads the cached copy
    register(
        Format(
            name="h5mu",
            suffixes=(".h5mu",),
            types=MUDATA,
            save=_save_h5mu,
            load=_load_h5mu,
            open=_open_h5mu,
            describe=_describe_mudata,
            open_needs_local=True,
            priority=10,
        )
    )
