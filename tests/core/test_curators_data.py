"""Curators on the real single-cell files of ../shared/data (skipped with a reason outside
CI, failing in CI): pbmc68k's hand-written bulk labels and gene symbols, oligodendroglioma's
outdated symbols fixed through synonyms, wu2020's MuData curated per modality; and an
AnnData whose var index has duplicates."""

from __future__ import annotations

import warnings
from typing import Any

import lakeline as ll
import numpy as np
import pandas as pd
import pytest
from lakeline.errors import CurationError
from lakeline.instance import Instance
from shared_data import OLIGO, PBMC, WU2020, shared
from test_validation_data import RENAMES
from validation_registries import Gene, create_registries, fill

anndata = pytest.importorskip("anndata")


def _read(name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.endswith(".h5mu"):
            import mudata

            return mudata.read_h5mu(shared(name))
        return anndata.read_h5ad(shared(name))


def _labels(type_name: str, names: list[str]) -> None:
    kind = ll.ULabel(name=type_name, is_type=True).save()
    ll.save([ll.ULabel(name=n, type=kind) for n in names])


def _genes(instance: Instance, rows: list[dict[str, Any]]) -> None:
    create_registries(instance.engine)
    fill(instance.engine, Gene, rows)


def test_pbmc68k_bulk_labels_and_gene_symbols(instance: Instance) -> None:
    adata = _read(PBMC)
    labels = adata.obs["bulk_labels"].cat.categories.tolist()
    symbols = adata.var_names.tolist()
    _labels("CellTypeHandLabel", [n for n in labels if n != "Dendritic"])
    ll.ULabel.get(name="CD56+ NK").add_synonym("NK")
    _genes(instance, [{"symbol": s} for s in symbols[:-3]])  # three genes not registered yet
    ll.save([ll.Feature(name="bulk_labels", dtype="cat[ULabel[CellTypeHandLabel]]"),
             ll.Feature(name="n_genes", dtype=int), ll.Feature(name="percent_mito", dtype=float),
             ll.Feature(name="gene_symbol", dtype="cat[Gene.symbol]")])  # fmt: skip
    schema = ll.Schema(
        name="pbmc",
        otype="AnnData",
        slots={"obs": ["bulk_labels", "n_genes", "percent_mito"], "var.index": ["gene_symbol"]},
    ).save()
    curator = ll.curators.AnnDataCurator(adata, schema)
    with pytest.raises(CurationError) as caught:
        curator.validate()
    where = {p.where: p for p in caught.value.problems}
    assert set(where) == {"obs column 'bulk_labels'", "var index"}
    assert (
        "1 not in ULabel[CellTypeHandLabel].name: 'Dendritic'"
        in where["obs column 'bulk_labels'"].detail
    )
    assert where["var index"].values == symbols[-3:]
    assert curator.cat.non_validated == {
        "obs:bulk_labels": ["Dendritic"],
        "var:index": symbols[-3:],
    }
    assert curator.cat.add_new_from("bulk_labels") == ["Dendritic"]
    assert curator.cat.add_new_from("index", slot="var") == symbols[-3:]
    assert curator.validate()
    artifact = curator.save_artifact(key="pbmc68k.h5ad")
    assert artifact.otype == "AnnData" and artifact.n_observations == 700
    assert sorted(artifact.features.get_values()["bulk_labels"]) == sorted(labels)
    assert ll.Artifact.filter(bulk_labels="CD56+ NK").count() == 1
    assert ll.Artifact.filter(ulabels__name="Dendritic").count() == 1


def test_oligodendroglioma_outdated_symbols_fixed_through_synonyms(instance: Instance) -> None:
    adata = _read(OLIGO)
    symbols = adata.var_names.tolist()
    _genes(instance, [{"symbol": RENAMES[s], "synonyms": s} if s in RENAMES else {"symbol": s}
                      for s in symbols])  # fmt: skip
    ll.Feature(name="gene_symbol", dtype="cat[Gene.symbol]").save()
    schema = ll.Schema(name="oligo", otype="AnnData", slots={"var.index": ["gene_symbol"]}).save()
    curator = ll.curators.AnnDataCurator(adata, schema)
    with pytest.raises(CurationError, match="10 synonym or case variant of a name") as caught:
        curator.validate()
    assert "curator.standardize('index')" in caught.value.problems[0].fix
    assert curator.standardize("index", slot="var") == {old: RENAMES[old] for old in symbols
                                                         if old in RENAMES}  # fmt: skip
    assert not set(RENAMES) & set(adata.var_names) and set(RENAMES.values()) <= set(adata.var_names)
    assert curator.validate()
    assert adata.var_names[symbols.index("FAM213B")] == "PRXL2B"


def test_wu2020_mudata_is_curated_per_modality(instance: Instance) -> None:
    mdata = _read(WU2020)
    gex, airr = mdata.mod["gex"], mdata.mod["airr"]
    _labels("Patient", gex.obs["patient"].cat.categories.tolist())
    _labels("TissueSource", [s for s in gex.obs["source"].cat.categories if s != "NAT"])
    _genes(instance, [{"symbol": s} for s in gex.var_names])
    ll.save([ll.Feature(name="patient", dtype="cat[ULabel[Patient]]"),
             ll.Feature(name="source", dtype="cat[ULabel[TissueSource]]"),
             ll.Feature(name="gene_symbol", dtype="cat[Gene.symbol]"),
             ll.Feature(name="high_confidence", dtype=bool),
             ll.Feature(name="clonotype_orig", dtype=str)])  # fmt: skip
    schema = ll.Schema(
        name="wu2020",
        otype="MuData",
        slots={
            "gex:obs": ["patient", "source"],
            "gex:var.index": ["gene_symbol"],
            "airr:obs": ["high_confidence", "clonotype_orig"],
        },
    ).save()
    curator = ll.curators.MuDataCurator(mdata, schema)
    assert set(curator.slots) == {"gex:obs", "gex:var", "airr:obs", "airr:var"}
    with pytest.raises(CurationError) as caught:
        curator.validate()
    assert [p.where for p in caught.value.problems] == ["gex:obs column 'source'"]
    assert "'NAT'" in caught.value.problems[0].detail
    curator.cat.add_new_from("source", slot="gex:obs")
    assert curator.validate()
    artifact = curator.save_artifact(key="wu2020.h5mu")
    values = artifact.features.get_values()
    assert sorted(values["source"]) == sorted(gex.obs["source"].cat.categories)
    assert sorted(values["patient"]) == sorted(gex.obs["patient"].cat.categories)
    assert ll.Artifact.filter(source="NAT").count() == 1
    assert airr.n_obs == 150 and artifact.otype == "MuData"
    from click.testing import CliRunner
    from lakeline.cli import cli

    result = CliRunner().invoke(cli, ["validate", str(artifact.cache()), "--schema", "wu2020"])
    assert result.exit_code == 0 and "fits schema 'wu2020'" in result.stdout
    with pytest.raises(CurationError, match=r"names modality 'rna', which the MuData lacks"):
        ll.curators.MuDataCurator(
            mdata, ll.Schema(name="rna", otype="MuData", slots={"rna:obs": ["patient"]}).save()
        )


def test_var_index_with_duplicates_is_named(instance: Instance) -> None:
    _genes(instance, [{"symbol": s} for s in ("CD3E", "MS4A1")])
    ll.Feature(name="gene_symbol", dtype="cat[Gene.symbol]").save()
    schema = ll.Schema(name="genes", otype="AnnData", slots={"var.index": ["gene_symbol"]}).save()
    adata = anndata.AnnData(
        np.zeros((2, 3), dtype=np.float32),
        var=pd.DataFrame(index=["CD3E", "MS4A1", "CD3E"]),
    )
    curator = ll.curators.AnnDataCurator(adata, schema)
    with pytest.raises(CurationError) as caught:
        curator.validate()
    (problem,) = caught.value.problems
    assert problem.where == "var index" and problem.values == ["CD3E"]
    assert "adata.var_names_make_unique()" in problem.fix
    assert str(caught.value) == (
        "AnnData does not fit schema 'genes': var index: duplicate names: 1 names occur more "
        "than once: 'CD3E'; make them unique (adata.var_names_make_unique())"
    )
    # without an index member, duplicate var names are still refused
    plain = ll.Schema(name="plain", otype="AnnData", slots={"obs": []}).save()
    with pytest.raises(CurationError, match="duplicate names"):
        ll.curators.AnnDataCurator(adata, plain).validate()


def test_cli_validates_an_h5ad(instance: Instance, tmp_path: Any) -> None:
    from click.testing import CliRunner
    from lakeline.cli import cli

    path = tmp_path / "pbmc.h5ad"
    _read(PBMC).write_h5ad(path)
    _labels("CellTypeHandLabel", ["CD19+ B"])
    ll.Feature(name="bulk_labels", dtype="cat[ULabel[CellTypeHandLabel]]").save()
    ll.Schema(name="sc-obs", otype="AnnData", slots={"obs": ["bulk_labels"]}).save()
    result = CliRunner(env={"COLUMNS": "400"}).invoke(
        cli, ["validate", str(path), "--schema", "sc-obs"]
    )
    assert result.exit_code == 1
    assert "9 not in ULabel[CellTypeHandLabel].name" in result.stdout
    assert "error: pbmc.h5ad does not fit schema 'sc-obs': 1 problem (table above)" in result.stderr
    ll.save([ll.ULabel(name=n, type=ll.ULabel.get(name="CellTypeHandLabel"))
             for n in _read(PBMC).obs["bulk_labels"].cat.categories if n != "CD19+ B"])  # fmt: skip
    result = CliRunner().invoke(cli, ["validate", str(path), "--schema", "sc-obs"])
    assert result.exit_code == 0 and "fits schema 'sc-obs'" in result.stdout
