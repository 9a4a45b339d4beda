"""TileDB-SOMA stores as artifacts: a census-shaped experiment built from the real h5ad files,
saved, opened and queried by value filter; appending makes a new version."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import lakeline as ll
import pytest
from lakeline.errors import InvalidKey, UnreadableArtifact
from lakeline.instance import Instance
from shared_data import OLIGO, PBMC, shared

tiledbsoma = pytest.importorskip("tiledbsoma", reason="tiledbsoma is not installed")
import tiledbsoma.io as soma_io  # noqa: E402


def _slim(name: str, column: str) -> ad.AnnData:
    """X, a census-like `cell_type` obs column and the gene index of a real file."""
    adata = ad.read_h5ad(shared(name))
    obs = adata.obs[[column]].rename(columns={column: "cell_type"}).astype(str)
    obs.index.name = "obs_id"
    var = adata.var[[]].copy()
    var.index.name = "var_id"
    return ad.AnnData(X=adata.X, obs=obs, var=var)


def _append(uri: str, adata: ad.AnnData) -> None:
    mapping = soma_io.register_anndatas(
        uri, [adata], measurement_name="RNA", obs_field_name="obs_id", var_field_name="var_id"
    )
    mapping.prepare_experiment(uri)
    soma_io.from_anndata(uri, adata, measurement_name="RNA", registration_mapping=mapping)


@pytest.fixture
def store(tmp_path: Path) -> str:
    uri = str(tmp_path / "stores" / "atlas.tiledbsoma")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        soma_io.from_anndata(uri, _slim(PBMC, "bulk_labels"), measurement_name="RNA")
    return uri


def test_census_style_query_of_a_saved_store(any_instance: Instance, store: str) -> None:
    first = ll.Artifact.from_tiledbsoma(store, key="atlas.tiledbsoma").save()
    assert first.n_files and first.suffix == ".tiledbsoma"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _append(store, _slim(OLIGO, "cell_type"))
    with tiledbsoma.Experiment.open(store) as exp:
        second = ll.Artifact.from_tiledbsoma(exp, key="atlas.tiledbsoma").save()
    assert second.stem == first.stem and second.uid.endswith("0001")  # appending: a version

    exp = ll.Artifact.get(key="atlas.tiledbsoma").open()
    try:
        assert isinstance(exp, tiledbsoma.Experiment) and exp.obs.count == 700 + 184
        query = exp.axis_query(
            "RNA",
            obs_query=tiledbsoma.AxisQuery(value_filter="cell_type == 'Microglia/Macrophage'"),
        )
        adata = query.to_anndata("data")
    finally:
        exp.close()
    expected = (ad.read_h5ad(shared(OLIGO)).obs["cell_type"] == "Microglia/Macrophage").sum()
    assert adata.n_obs == expected > 0
    assert set(adata.obs["cell_type"]) == {"Microglia/Macrophage"}
    with ll.Artifact.get(uid=first.uid).open() as old:  # the first version is untouched
        assert old.obs.count == 700
    whole = ll.Artifact.get(uid=first.uid).load()
    assert whole.shape == (700, 765)


def test_soma_bad_input(instance: Instance, store: str, tmp_path: Path) -> None:
    art = ll.Artifact.from_tiledbsoma(store, key="atlas.tiledbsoma").save()
    with pytest.raises(UnreadableArtifact, match=r"no measurement 'ATAC' \(it has \['RNA'\]\)"):
        art.load(measurement="ATAC")
    with pytest.raises(UnreadableArtifact, match=r"no X layer 'counts' \(it has \['data'\]\)"):
        art.load(X="counts")
    empty = tmp_path / "empty.tiledbsoma"
    tiledbsoma.Experiment.create(str(empty)).close()
    bare = ll.Artifact.from_tiledbsoma(str(empty), key="empty.tiledbsoma").save()
    with pytest.raises(UnreadableArtifact, match=r"has measurements \[\]: name one"):
        bare.load()
    (tmp_path / "atlas").mkdir()
    with pytest.raises(InvalidKey, match="folder named"):
        ll.Artifact.from_tiledbsoma(str(tmp_path / "atlas"), key="atlas.tiledbsoma")
    not_soma = tmp_path / "plain.tiledbsoma"
    not_soma.mkdir()
    (not_soma / "readme.txt").write_text("not a store")
    art = ll.Artifact.from_tiledbsoma(str(not_soma), key="plain.tiledbsoma").save()
    with pytest.raises(UnreadableArtifact, match=r"cannot open artifact .* as tiledbsoma"):
        art.open()
