"""lakeline-bio's registries on real single-cell data (../shared/data), SQLite and PostgreSQL:
pbmc68k's hand-written cell-type labels curated to Cell Ontology records, gene symbols
validated and outdated ones standardized against imported human genes."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import lakeline_bio as bio
import pytest
from bio_data import obs_column, shared, var_names
from lakeline.errors import AnnotationError, CurationError
from lakeline.instance import Instance
from lakeline_bio.models import CellType, Gene

pytest.importorskip("anndata")

# bulk_labels -> the Cell Ontology term a curator picks among inspect's suggestions
PICKED = {
    "CD14+ Monocyte": "CD14-positive monocyte",
    "Dendritic": "dendritic cell",
    "CD19+ B": "B cell, CD19-positive",
    "CD4+/CD25 T Reg": "CD4-positive, CD25-positive, alpha-beta regulatory T cell",
    "CD8+ Cytotoxic T": "CD8-positive, alpha-beta cytotoxic T cell",
    "CD4+/CD45RO+ Memory": "CD4-positive, alpha-beta memory T cell, CD45RO-positive",
}


def test_pbmc_bulk_labels_curated_to_cell_ontology_records(
    bio_instance: Instance, tmp_path: Path
) -> None:
    labels = obs_column("10x_pbmc68k_reduced.h5ad", "bulk_labels")
    public = CellType.public(version="v2026-03-26")
    suggestions = public.inspect(labels, mute=True).suggestions
    for label, term in PICKED.items():
        assert term in suggestions[label], label
    # the curator saves the picked terms (with their ancestors) and keeps the lab's label
    # as a synonym, so that the data's own values standardize to ontology names
    for label, term in PICKED.items():
        record = CellType.from_source(name=term, version="v2026-03-26").save()
        record.add_synonym(label)
    assert CellType.filter(name="leukocyte").count() == 1  # an ancestor, saved once
    report = CellType.inspect(labels, mute=True)
    assert report.synonyms_mapper == PICKED
    assert sorted(report.not_found) == sorted(set(labels) - set(PICKED))
    # close matches among the registry's own records read lab notation too
    naive = report.suggestions["CD8+/CD45RA+ Naive Cytotoxic"]
    assert naive[0] == "CD8-positive, alpha-beta cytotoxic T cell"
    fixed = CellType.standardize(labels)
    assert CellType.validate(fixed, mute=True).sum() == sum(v in PICKED for v in labels)

    # a cat[bio.CellType] feature takes the records by name
    ll.Feature(name="cell_type", dtype="cat[bio.CellType]").save()
    artifact = ll.Artifact(shared("10x_pbmc68k_reduced.h5ad"), key="pbmc68k.h5ad").save()
    artifact.features.add_values({"cell_type": ["dendritic cell", "B cell, CD19-positive"]})
    assert sorted(artifact.features.get_values()["cell_type"]) == [
        "B cell, CD19-positive",
        "dendritic cell",
    ]
    with pytest.raises(AnnotationError, match="'Dendritic' is not a CellType record"):
        artifact.features.add_values({"cell_type": "Dendritic"})


def test_gene_symbols_of_both_data_sets_against_imported_human_genes(
    bio_instance: Instance,
) -> None:
    created = Gene.import_source(organism="human")
    assert created == len(bio.Gene.public("human").frame) > 70_000
    pbmc = var_names("10x_pbmc68k_reduced.h5ad")
    report = Gene.inspect(pbmc, organism="human", mute=True)
    assert len(pbmc) == 765 and len(report.validated) > 690
    assert report.synonyms_mapper["IGJ"] == "JCHAIN"

    oligo = var_names("oligodendroglioma.h5ad")
    assert len(oligo) == 9450
    before = Gene.validate(oligo, organism="human", mute=True)
    mapper = Gene.standardize(oligo, organism="human", return_mapper=True)
    assert isinstance(mapper, dict)
    assert mapper["FAM213B"] == "PRXL2B" and mapper["KIAA0907"] == "KHDC4"
    after = Gene.validate(Gene.standardize(oligo, organism="human"), organism="human", mute=True)
    assert after.sum() == before.sum() + len(mapper) > 9300
    by_id = Gene.validate(["ENSG00000141510", "ENSG99999999999"], field="ensembl_gene_id")
    assert by_id.tolist() == [True, False]


def test_anndata_curator_with_bio_registries_on_both_data_sets(
    bio_instance: Instance, tmp_path: Path
) -> None:
    """An AnnDataCurator whose obs column takes Cell Ontology records and whose var index takes
    human gene symbols: pbmc68k's lab labels standardize through the synonyms the curator
    recorded, the lab's other types are added, outdated symbols of both files standardize to
    current ones, and the saved artifact links the cell types."""
    import anndata

    Gene.import_source(organism="human")
    for label, term in PICKED.items():
        CellType.from_source(name=term, version="v2026-03-26").save().add_synonym(label)
    ll.save([ll.Feature(name="cell_type", dtype="cat[bio.CellType]"),
             ll.Feature(name="gene_symbol", dtype="cat[bio.Gene.symbol]")])  # fmt: skip
    pbmc_schema = ll.Schema(
        name="pbmc-bio",
        otype="AnnData",
        slots={"obs": ["cell_type"], "var.index": ["gene_symbol"]},
    ).save()

    adata = anndata.read_h5ad(shared("10x_pbmc68k_reduced.h5ad"))
    adata.obs["cell_type"] = adata.obs["bulk_labels"].astype(str)
    curator = ll.curators.AnnDataCurator(adata, pbmc_schema)
    with pytest.raises(CurationError) as caught:
        curator.validate(show=False)
    assert {p.where for p in caught.value.problems} == {"obs column 'cell_type'", "var index"}
    assert curator.standardize("cell_type") == PICKED
    assert curator.standardize("index", slot="var")["IGJ"] == "JCHAIN"
    lab_types = curator.cat.add_new_from("cell_type")
    assert sorted(lab_types) == sorted(set(adata.obs["bulk_labels"].astype(str)) - set(PICKED))
    unknown = curator.cat.non_validated["var:index"]
    assert 0 < len(unknown) < 75  # symbols no current human gene has: dropped by the curator
    curator = ll.curators.AnnDataCurator(adata[:, ~adata.var_names.isin(unknown)], pbmc_schema)
    assert curator.validate(show=False)
    artifact = curator.save_artifact(key="pbmc68k-bio.h5ad")
    assert set(artifact.features.get_values()["cell_type"]) == set(PICKED.values()) | set(lab_types)
    assert [a.uid for a in CellType.get(name="dendritic cell").artifacts] == [artifact.uid]

    oligo_schema = ll.Schema(
        name="oligo-bio", otype="AnnData", slots={"var.index": ["gene_symbol"]}
    ).save()
    oligo = anndata.read_h5ad(shared("oligodendroglioma.h5ad"))
    curator = ll.curators.AnnDataCurator(oligo, oligo_schema)
    with pytest.raises(CurationError, match="synonym or case variant"):
        curator.validate(show=False)
    renamed = curator.standardize("index", slot="var")
    assert renamed["FAM213B"] == "PRXL2B" and renamed["KIAA0907"] == "KHDC4"
    assert "FAM213B" not in set(oligo.var_names) and "PRXL2B" in set(oligo.var_names)
