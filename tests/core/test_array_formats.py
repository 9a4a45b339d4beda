"""Array formats: MuData (h5mu), HDF5, zarr groups, backed AnnData on S3, bad bytes."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import anndata as ad
import h5py
import lakeline as ll
import numpy as np
import pandas as pd
import pytest
from lakeline.config import cache_dir
from lakeline.errors import MissingDependency, UnreadableArtifact
from lakeline.instance import Instance
from shared_data import PBMC, WU2020, shared


def test_mudata_roundtrip_and_backed_open(any_instance: Instance) -> None:
    import mudata

    mdata = mudata.read_h5mu(shared(WU2020))
    art = ll.Artifact.from_mudata(mdata, key="sc/wu2020.h5mu").save()
    assert (art.suffix, art.otype, art.n_observations) == (".h5mu", "MuData", mdata.n_obs)
    loaded = art.load()
    assert set(loaded.mod) == {"gex", "airr"}
    assert loaded.mod["gex"].shape == mdata.mod["gex"].shape
    backed = art.open()
    try:
        gex = backed.mod["gex"]
        assert gex.isbacked
        rows = gex[:4].X
        expected = mdata.mod["gex"].X[:4]
        np.testing.assert_array_equal(_dense(rows), _dense(expected))
    finally:
        backed.file.close()


def test_saved_h5mu_file_is_the_same_format(instance: Instance) -> None:
    art = ll.Artifact(str(shared(WU2020)), key="sc/wu.h5mu").save()
    assert art.load().mod["gex"].n_obs == 150


def _dense(matrix: object) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix)


def _write_h5(path: Path, n: int = 2000) -> np.ndarray:
    data = np.arange(n * 64, dtype="float32").reshape(n, 64)
    with h5py.File(path, "w") as f:
        f.create_dataset("plate/images", data=data, chunks=(16, 64))
        f["plate"].attrs["wells"] = 96
    return data


@pytest.mark.parametrize("suffix", [".h5", ".hdf5"])
def test_hdf5_opens_read_only(any_instance: Instance, tmp_path: Path, suffix: str) -> None:
    data = _write_h5(tmp_path / f"plate1{suffix}")
    art = ll.Artifact(str(tmp_path / f"plate1{suffix}"), key=f"img/plate1{suffix}").save()
    with art.open() as f:
        assert isinstance(f, h5py.File) and f.mode == "r"
        assert f["plate"].attrs["wells"] == 96
        np.testing.assert_array_equal(f["plate/images"][100:103], data[100:103])
        with pytest.raises((OSError, ValueError)):
            f.create_dataset("new", data=[1])  # read-only
    with pytest.raises(ll.errors.UnsupportedObject, match=rf"no format loads '\{suffix}'"):
        ll.Artifact.get(key=f"img/plate1{suffix}").load()


def test_zarr_group_opens_lazily(any_instance: Instance, tmp_path: Path) -> None:
    import zarr

    root = zarr.open_group(str(tmp_path / "plate.zarr"), mode="w")
    arr = root.create_array("images", shape=(40, 8), chunks=(10, 8), dtype="int32")
    arr[:] = np.arange(320, dtype="int32").reshape(40, 8)
    root.attrs["plate"] = "p1"
    art = ll.Artifact(str(tmp_path / "plate.zarr"), key="img/plate.zarr").save()
    group = art.open()
    assert isinstance(group, zarr.Group)
    assert group.attrs["plate"] == "p1"
    np.testing.assert_array_equal(group["images"][5], np.arange(40, 48))


def test_backed_anndata_on_s3_reads_a_fraction(s3_instance: Instance, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n_obs, n_vars = 8000, 1000  # 32 MB of float32
    adata = ad.AnnData(
        X=rng.random((n_obs, n_vars), dtype="float32"),
        obs=pd.DataFrame(
            {"cell_type": ["T", "B"] * (n_obs // 2)}, index=[str(i) for i in range(n_obs)]
        ),
    )
    art = ll.Artifact.from_anndata(adata, key="sc/big.h5ad").save()
    assert art.location.startswith("s3://")
    backed = art.open()
    try:
        assert backed.isbacked and backed.shape == (n_obs, n_vars)
        np.testing.assert_array_equal(backed[10:14].X, adata.X[10:14])
        assert list(backed.obs["cell_type"][:2]) == ["T", "B"]
        read = _bytes_fetched(art.location.removeprefix("s3://"))
    finally:
        backed.file.close()
    assert 0 < read < art.size / 10, f"open and a 4-row slice read {read} of {art.size} bytes"
    assert not any(p.suffix == ".h5ad" for p in cache_dir().rglob("*"))  # nothing downloaded


def _bytes_fetched(location: str) -> int:
    """What the open remote file behind a backed AnnData fetched from the bucket (h5py holds
    the fsspec file object; its block cache counts the bytes it requested)."""
    from fsspec.spec import AbstractBufferedFile

    files = [
        o
        for o in gc.get_objects()
        if isinstance(o, AbstractBufferedFile) and str(o.path) == location
    ]
    assert len(files) == 1
    return int(files[0].cache.total_requested_bytes)


@pytest.mark.parametrize("suffix", [".h5ad", ".h5mu", ".h5"])
def test_wrong_bytes_under_a_suffix_are_named(
    instance: Instance, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"fake{suffix}"
    path.write_text("sample,count\na,1\n")  # a csv under an HDF5 suffix
    art = ll.Artifact(str(path), key=f"bad/fake{suffix}").save()
    with pytest.raises(UnreadableArtifact, match=rf"cannot open artifact .*bad/fake\{suffix}"):
        art.open()
    if suffix != ".h5":
        with pytest.raises(UnreadableArtifact, match=r"cannot load artifact .* are not a readable"):
            art.load()


def test_corrupt_h5ad_is_named(instance: Instance, tmp_path: Path) -> None:
    data = shared(PBMC).read_bytes()
    path = tmp_path / "cut.h5ad"
    path.write_bytes(data[: len(data) // 2])  # truncated mid-file
    art = ll.Artifact(str(path), key="bad/cut.h5ad").save()
    with pytest.raises(UnreadableArtifact, match=r"as h5ad"):
        art.load()


@pytest.mark.parametrize("name", [PBMC, WU2020])
def test_truncated_h5ad_h5mu_on_s3_are_named_and_leave_no_partial_cache(
    s3_instance: Instance, tmp_path: Path, name: str
) -> None:
    data = shared(name).read_bytes()
    suffix = Path(name).suffix
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    art = ll.Artifact(str(path), key=f"bad/cut{suffix}").save()
    kind = suffix.lstrip(".")
    with pytest.raises(UnreadableArtifact, match=rf"cannot open artifact .*bad/cut\{suffix}"):
        art.open()
    with pytest.raises(UnreadableArtifact, match=rf"bad/cut\{suffix}.* as {kind}"):
        art.load()
    cached = [p for p in cache_dir().rglob("*") if p.is_file()]
    assert not [p for p in cached if p.name.endswith(".partial")]
    assert all(p.stat().st_size == art.size for p in cached if p.suffix == suffix)


@pytest.mark.parametrize(
    ("module", "suffix", "extra"),
    [("mudata", ".h5mu", "mudata"), ("h5py", ".h5", "hdf5"), ("tiledbsoma", ".tiledbsoma", "")],
)
def test_missing_library_names_the_extra(
    instance: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    suffix: str,
    extra: str,
) -> None:
    path = tmp_path / f"x{suffix}"
    if suffix == ".tiledbsoma":
        path.mkdir()
        (path / "__group").write_text("")
    else:
        path.write_bytes(b"\x89HDF\r\n\x1a\n")
    art = ll.Artifact(str(path), key=f"x/x{suffix}").save()
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(MissingDependency, match=rf"pip install 'lakeline\[{extra or module}\]'"):
        art.open()
