"""Array stores: HDF5 files (`.h5`, `.hdf5`) and TileDB-SOMA experiments (`.tiledbsoma`).

Both open lazily: an HDF5 file as a read-only `h5py.File` (on remote storage through a file
object that fetches only the blocks read), a SOMA store as a `tiledbsoma.Experiment`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakeline.errors import UnreadableArtifact
from lakeline.formats.registry import Format, is_local, open_remote_for_h5py, require
from lakeline.hookspecs import hookimpl

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


def _open_hdf5(path: str, fs: AbstractFileSystem) -> Any:
    """A read-only h5py.File; datasets are read when sliced."""
    h5py = require("h5py", "hdf5")
    return h5py.File(path if is_local(fs) else open_remote_for_h5py(fs, path), "r")


def _soma() -> Any:
    return require("tiledbsoma", "tiledbsoma")


def _open_soma(path: str, fs: AbstractFileSystem) -> Any:
    """The SOMA Experiment, opened for reading (nothing is read until queried)."""
    return _soma().Experiment.open(path, mode="r")


def _load_soma(path: str, measurement: str | None = None, X: str | None = None) -> Any:
    """The whole experiment as AnnData: the only measurement (or `measurement`), X layer `X`
    (default: the only layer, else "data")."""
    soma = _soma()
    with soma.Experiment.open(path, mode="r") as exp:
        names = sorted(exp.ms.keys()) if "ms" in exp else []
        if measurement is None:
            if len(names) != 1:
                raise UnreadableArtifact(
                    f"the SOMA experiment has measurements {names}: name one with "
                    "load(measurement=...)"
                )
            measurement = names[0]
        if measurement not in names:
            raise UnreadableArtifact(
                f"the SOMA experiment has no measurement {measurement!r} (it has {names})"
            )
        layers = sorted(exp.ms[measurement].X.keys())
        if X is None:
            X = layers[0] if len(layers) == 1 else "data"
        if X not in layers:
            raise UnreadableArtifact(
                f"measurement {measurement!r} has no X layer {X!r} (it has {layers})"
            )
        return soma.io.to_anndata(exp, measurement_name=measurement, X_layer_name=X)


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(Format(name="hdf5", suffixes=(".h5", ".hdf5"), open=_open_hdf5))
    # tiledb reads its own URIs (not fsspec), and its S3 client timed out reading from the
    # test's moto server, so a SOMA store on remote storage opens from the verified cache
    register(
        Format(
            name="tiledbsoma",
            suffixes=(".tiledbsoma",),
            load=_load_soma,
            open=_open_soma,
            is_folder=True,
            open_needs_local=True,
        )
    )
