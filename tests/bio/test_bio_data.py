"""lakeline-bio's registries on real single-cell data (../shared/data), SQLite and PostgreSQL:
pbmc68k's hand-written cell-type labels curated to Cell Ontology records, gene symbols
validated and outdated ones standardized against imported human genes."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import lakeline_bio as bio
import pytest
from bio_data import obs_column, shared, var_names
from lakeline.errors import AnnotationError
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
