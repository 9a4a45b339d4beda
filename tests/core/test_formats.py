"""Default format plugins: DataFrames (parquet, csv, tsv), AnnData (h5ad, zarr), JSON, text."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import lakeline as ll
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest
from lakeline.errors import InvalidKey, UnsupportedObject
from lakeline.instance import Instance


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"gene": [f"g{i}" for i in range(50)], "count": rng.integers(0, 100, 50)}
    ).set_index("gene")


@pytest.fixture
def adata() -> ad.AnnData:
    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"cell_type": ["T", "B"] * 15}, index=[f"c{i}" for i in range(30)])
    return ad.AnnData(X=rng.random((30, 8)).astype("float32"), obs=obs)


def test_dataframe_parquet_roundtrip_and_lazy_open(
    any_instance: Instance, df: pd.DataFrame
) -> None:
    art = ll.Artifact.from_dataframe(df, key="tables/counts.parquet").save()
    assert (art.suffix, art.otype, art.n_observations) == (".parquet", "DataFrame", 50)
    pd.testing.assert_frame_equal(art.load(), df)
    dataset = art.open()
    assert isinstance(dataset, pads.Dataset)
    assert dataset.count_rows() == 50
    assert dataset.to_table(columns=["count"]).num_rows == 50
    # the same frame again is the same artifact; a changed one a new version
    assert ll.Artifact.from_dataframe(df, key="tables/counts.parquet").save().uid == art.uid
    changed = ll.Artifact.from_dataframe(df.assign(count=0), key="tables/counts.parquet").save()
    assert changed.uid.endswith("0001")


def test_dataframe_csv_and_tsv(instance: Instance, df: pd.DataFrame) -> None:
    csv = ll.Artifact.from_dataframe(df, key="tables/counts.csv").save()
    assert csv.suffix == ".csv"
    loaded = csv.load()
    assert list(loaded.columns) == ["gene", "count"] and len(loaded) == 50
    assert csv.open().count_rows() == 50
    tsv = ll.Artifact(df, key="tables/counts.tsv", format="tsv").save()
    assert tsv.load()["count"].sum() == df["count"].sum()


def test_anndata_h5ad_backed_open(any_instance: Instance, adata: ad.AnnData) -> None:
    art = ll.Artifact.from_anndata(adata, key="sc/pbmc.h5ad").save()
    assert (art.suffix, art.otype, art.n_observations) == (".h5ad", "AnnData", 30)
    loaded = art.load()
    np.testing.assert_array_equal(loaded.X, adata.X)
    assert list(loaded.obs["cell_type"]) == list(adata.obs["cell_type"])
    backed = art.open()
    try:
        assert backed.isbacked and backed.shape == (30, 8)
        np.testing.assert_array_equal(backed[:5].X, adata.X[:5])
    finally:
        backed.file.close()


def test_anndata_zarr_folder(any_instance: Instance, adata: ad.AnnData) -> None:
    art = ll.Artifact.from_anndata(adata, key="sc/pbmc.zarr").save()
    assert art.suffix == ".zarr" and (art.n_files or 0) > 1
    np.testing.assert_array_equal(art.load().X, adata.X)
    group = art.open()
    assert group["X"].shape == (30, 8)


def test_json_and_text(instance: Instance, tmp_path: Path) -> None:
    art = ll.Artifact({"min_count": 5, "genes": ["a", "b"]}, key="params/run.json").save()
    assert art.load() == {"min_count": 5, "genes": ["a", "b"]}
    note = tmp_path / "note.txt"
    note.write_text("hello")
    text = ll.Artifact(note, key="notes/note.txt").save()
    assert text.load() == "hello"
    with text.open() as handle:
        assert handle.read() == b"hello"


def test_unknown_suffix_loads_clearly(instance: Instance, tmp_path: Path) -> None:
    blob = tmp_path / "x.weird"
    blob.write_bytes(b"\x00\x01")
    art = ll.Artifact(blob, key="blobs/x.weird").save()
    with pytest.raises(UnsupportedObject, match=r"no format loads '\.weird' files"):
        art.load()
    with art.open() as handle:  # any file still opens as bytes
        assert handle.read() == b"\x00\x01"


def test_format_and_key_must_agree(instance: Instance, df: pd.DataFrame) -> None:
    with pytest.raises(InvalidKey, match="same suffix"):
        ll.Artifact.from_dataframe(df, key="tables/counts.h5ad")
    with pytest.raises(TypeError, match="format= applies to objects"):
        ll.Artifact("x.csv", key="x.csv", format="csv")
