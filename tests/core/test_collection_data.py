"""Collections as data: load (concatenate with join rules), cache, open, mapped()."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import anndata as ad
import lakeline as ll
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lakeline.config import cache_dir
from lakeline.errors import IncompatibleMembers, InvalidValue
from lakeline.instance import Instance
from lakeline.testing import unavailable
from shared_data import OLIGO, PBMC, shared


def _adata(
    genes: list[str], cells: list[str], types: list[str], sparse: bool = False
) -> ad.AnnData:
    rng = np.random.default_rng(len(cells))
    x = rng.integers(0, 5, (len(cells), len(genes))).astype("float32")
    return ad.AnnData(
        X=sp.csr_matrix(x) if sparse else x,
        obs=pd.DataFrame({"cell_type": pd.Categorical(types)}, index=cells),
        var=pd.DataFrame(index=genes),
    )


@pytest.fixture
def two() -> list[ad.AnnData]:
    a = _adata(["g1", "g2", "g3"], ["a1", "a2", "a3"], ["T", "B", "T"])
    b = _adata(["g3", "g4", "g2"], ["b1", "b2"], ["NK", "T"], sparse=True)
    return [a, b]


def _collection(adatas: list[ad.AnnData], name: str = "atlas") -> ll.Collection:
    arts = [
        ll.Artifact.from_anndata(a, key=f"sc/{name}{i}.h5ad").save() for i, a in enumerate(adatas)
    ]
    return ll.Collection(arts, key=name).save()


def test_load_concatenates_with_join_rules(any_instance: Instance, two: list[ad.AnnData]) -> None:
    c = _collection(two)
    outer = c.load(join="outer")
    assert outer.shape == (5, 4)
    assert list(outer.obs["artifact_key"]) == ["sc/atlas0.h5ad"] * 3 + ["sc/atlas1.h5ad"] * 2
    inner = ll.Collection.get(key="atlas").load(join="inner")
    assert inner.shape == (5, 2) and sorted(inner.var_names) == ["g2", "g3"]
    np.testing.assert_array_equal(
        inner[inner.obs_names == "b1", ["g2", "g3"]].X.toarray(),
        two[1][["b1"], ["g2", "g3"]].X.toarray(),
    )


def test_load_refuses_duplicate_obs_names(instance: Instance, two: list[ad.AnnData]) -> None:
    two[1].obs_names = ["a1", "b2"]  # a1 is in both members
    c = _collection(two)
    with pytest.raises(IncompatibleMembers, match=r"'a1' is in members sc/atlas0.h5ad and sc/a"):
        c.load()
    assert c.load(index_unique="-").obs_names[0] == "a1-sc/atlas0.h5ad"


def test_load_dataframes_and_open(any_instance: Instance) -> None:
    arts = [
        ll.Artifact.from_dataframe(pd.DataFrame({"s": [i] * 2, "v": [i, 1]}), key=f"t/{i}.parquet")
        for i in range(3)
    ]
    c = ll.Collection(ll.save(arts), key="tables").save()
    df = c.load()
    assert len(df) == 6 and set(df["artifact_key"]) == {"t/0.parquet", "t/1.parquet", "t/2.parquet"}
    assert c.open().count_rows() == 6


def test_mixed_members_cannot_load(instance: Instance, two: list[ad.AnnData]) -> None:
    a = ll.Artifact.from_anndata(two[0], key="sc/a.h5ad").save()
    t = ll.Artifact.from_dataframe(pd.DataFrame({"x": [1]}), key="t/x.parquet").save()
    c = ll.Collection([a, t], key="mixed").save()
    with pytest.raises(IncompatibleMembers, match=r"mixes AnnData \(sc/a.h5ad\), DataFrame"):
        c.load()
    with pytest.raises(InvalidValue, match="join must be"):
        c.load(join="left")


def test_mixed_members_on_s3_are_refused_before_any_download(
    s3_instance: Instance, two: list[ad.AnnData]
) -> None:
    a = ll.Artifact.from_anndata(two[0], key="sc/a.h5ad").save()
    t = ll.Artifact.from_dataframe(pd.DataFrame({"x": [1]}), key="t/x.parquet").save()
    c = ll.Collection([a, t], key="mixed").save()
    with pytest.raises(IncompatibleMembers, match="mixes AnnData"):
        c.load()
    assert not [p for p in cache_dir().rglob("*") if p.is_file()]


def test_collection_of_a_query(instance: Instance, two: list[ad.AnnData]) -> None:
    _collection(two)
    c = ll.Collection(ll.Artifact.filter(key__startswith="sc/", suffix=".h5ad"), key="q").save()
    assert c.load(join="inner").n_obs == 5


def test_cache_is_parallel_and_complete(any_instance: Instance, two: list[ad.AnnData]) -> None:
    c = _collection(two * 3, name="many")
    paths = c.cache()
    assert len(paths) == 6 and all(Path(p).is_file() for p in paths)
    assert ad.read_h5ad(paths[4]).n_obs == 3


def test_cache_and_load_are_inputs_of_the_run(instance: Instance, two: list[ad.AnnData]) -> None:
    c = _collection(two)
    run = ll.track(key="collection-reader")
    try:
        c.cache(progress=False)
    finally:
        ll.finish()
    assert {a.key for a in run.inputs} == {"sc/atlas0.h5ad", "sc/atlas1.h5ad"}


def test_mapped_reads_rows_with_joined_vars_and_labels(
    any_instance: Instance, two: list[ad.AnnData]
) -> None:
    ds = _collection(two).mapped(obs_keys=["cell_type"], join="inner")
    assert len(ds) == 5 and ds.var_names == ["g2", "g3"]
    assert ds.encoders == {"cell_type": {"B": 0, "NK": 1, "T": 2}}
    first = ds[0]
    np.testing.assert_array_equal(first["X"], two[0].X[0, [1, 2]])
    assert first["cell_type"] == 2
    last = ds[-1]  # b2, sparse member, columns reordered
    np.testing.assert_array_equal(last["X"], two[1][["b2"], ["g2", "g3"]].X.toarray()[0])
    assert last["cell_type"] == 2
    outer = ll.Collection.get(key="atlas").mapped(obs_keys="cell_type", join="outer")
    assert outer.var_names == ["g1", "g2", "g3", "g4"]
    b1 = two[1][["b1"], ["g2", "g3", "g4"]].X.toarray()[0]
    np.testing.assert_array_equal(outer[3]["X"], np.concatenate([[0], b1]))  # no g1 in b
    raw = ll.Collection.get(key="atlas").mapped(obs_keys=["cell_type"], encode_labels=False)
    assert raw[3]["cell_type"] == "NK"
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned worker receives
    np.testing.assert_array_equal(clone[4]["X"], ds[4]["X"])
    with pytest.raises(IndexError):
        ds[5]


def test_mapped_bad_input(instance: Instance, two: list[ad.AnnData]) -> None:
    disjoint = _adata(["x1", "x2"], ["d1"], ["T"])
    c = _collection([two[0], disjoint], name="disjoint")
    with pytest.raises(IncompatibleMembers, match="no variable is shared by all 2 members"):
        c.mapped(join="inner")
    with pytest.raises(IncompatibleMembers, match="join='inner' leaves none"):
        c.load(join="inner")
    with pytest.raises(IncompatibleMembers, match=r"sc/disjoint0.h5ad has no obs column 'donor'"):
        c.mapped(obs_keys=["donor"], join="outer")


def test_mapped_over_real_files(instance: Instance) -> None:
    arts = [ll.Artifact(str(shared(name)), key=f"real/{name}").save() for name in (PBMC, OLIGO)]
    c = ll.Collection(arts, key="real").save()
    with pytest.raises(IncompatibleMembers, match=rf"real/{PBMC} has no obs column 'cell_type'"):
        c.mapped(obs_keys=["cell_type"])
    ds = c.mapped(join="inner")
    pbmc, oligo = ad.read_h5ad(shared(PBMC)), ad.read_h5ad(shared(OLIGO))
    shared_genes = [g for g in pbmc.var_names if g in set(oligo.var_names)]
    assert ds.shape == (700 + 184, len(shared_genes)) and len(shared_genes) > 0
    np.testing.assert_allclose(ds[701]["X"], oligo[1, shared_genes].X.toarray()[0])
    np.testing.assert_allclose(ds[3]["X"], pbmc[3, shared_genes].X[0])


def _torch() -> Any:
    """torch, which scripts/test installs with pip from the machine's local wheel (not in
    uv.lock); without it the DataLoader tests skip locally and fail when CI=true."""
    try:
        import torch
    except ImportError:
        unavailable("torch is not installed (scripts/test installs torch==2.13.0 with pip)")
    return torch


def test_mapped_feeds_a_torch_dataloader_with_workers(instance: Instance) -> None:
    torch = _torch()
    pbmc = ll.Artifact(str(shared(PBMC)), key=f"real/{PBMC}").save()
    ds = ll.Collection([pbmc], key="pbmc").mapped(obs_keys=["bulk_labels"])
    loader = torch.utils.data.DataLoader(ds, batch_size=256, num_workers=2, shuffle=True)
    seen, labels = 0, set()
    for batch in loader:
        assert batch["X"].shape[1] == 765 and batch["X"].dtype == torch.float32
        seen += batch["X"].shape[0]
        labels.update(batch["bulk_labels"].tolist())
    assert seen == 700 and labels == set(range(len(ds.encoders["bulk_labels"])))


def test_dataloader_spawned_workers_read_every_row_once(
    instance: Instance, two: list[ad.AnnData]
) -> None:
    """Spawned workers get the dataset pickled (no handles) and open their own: a zarr and a
    sparse h5ad member, outer join, shuffled; the rows that come out are exactly ds's rows."""
    torch = _torch()
    arts = [
        ll.Artifact.from_anndata(two[0], key="sc/w.zarr").save(),
        ll.Artifact.from_anndata(two[1], key="sc/w.h5ad").save(),
    ]
    ds = ll.Collection(arts, key="workers").save().mapped(obs_keys=["cell_type"], join="outer")
    ds[0]  # the parent's own handles must not reach the workers
    loader = torch.utils.data.DataLoader(
        ds, batch_size=2, num_workers=2, shuffle=True, multiprocessing_context="spawn"
    )
    rows = [
        (tuple(x.tolist()), int(label))
        for batch in loader
        for x, label in zip(batch["X"], batch["cell_type"], strict=True)
    ]
    expected = [(tuple(ds[i]["X"].tolist()), int(ds[i]["cell_type"])) for i in range(len(ds))]
    assert sorted(rows) == sorted(expected) and len(rows) == 5


def test_mapped_over_zarr_and_h5ad_members(any_instance: Instance, two: list[ad.AnnData]) -> None:
    arts = [
        ll.Artifact.from_anndata(two[0], key="sc/a.zarr").save(),
        ll.Artifact.from_anndata(two[1], key="sc/b.h5ad").save(),
    ]
    ds = ll.Collection(arts, key="mixed-stores").save().mapped(obs_keys=["cell_type"])
    assert len(ds) == 5 and ds.var_names == ["g2", "g3"]
    np.testing.assert_array_equal(ds[1]["X"], two[0].X[1, [1, 2]])
    assert [ds[i]["cell_type"] for i in range(5)] == [2, 0, 2, 1, 2]
