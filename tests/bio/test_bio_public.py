"""`bio.public(...)` (and `Registry.public()`): the ontologies themselves, without records, on
real single-cell data."""

from __future__ import annotations

import lakeline_bio as bio
import pytest
from bio_data import obs_column, var_names

pytest.importorskip("anndata")


def test_search_ranks_the_exact_term_first_then_terms_holding_every_word() -> None:
    hits = bio.CellType.public().search("T cell", limit=5)
    assert hits.iloc[0]["ontology_id"] == "CL:0000084" and hits.iloc[0]["score"] == 100
    assert all("T cell" in name for name in hits["name"])
    treg = bio.public("CellType").search("Tregs", limit=3)
    assert treg.iloc[0]["name"] == "regulatory T cell"  # through its synonym "Treg"
    assert bio.Gene.public("human").search("TP53", limit=1).iloc[0]["symbol"] == "TP53"


def test_lookups_by_id_parents_and_ancestors() -> None:
    cl = bio.public("CellType", version="v2026-03-26")
    assert cl.get("CL:0000236")["name"] == "B cell"
    assert cl.parents("CL:0000236") == ["CL:0000945"]
    assert {"CL:0000542", "CL:0000000"} <= set(cl.ancestors("CL:0000236"))  # lymphocyte, cell


def test_unknown_and_deprecated_ids_are_one_line_errors() -> None:
    cl = bio.public("CellType", version="v2026-03-26")
    with pytest.raises(bio.UnknownTerm, match="'CL:9999999' is not in CL/v2026-03-26"):
        cl.get("CL:9999999")
    with pytest.raises(bio.UnknownTerm, match="its ids look like 'CL:"):
        cl.get("UBERON:0002048")
    with pytest.raises(bio.DeprecatedTerm, match=r"CL:0000003 .* replaced by CL:0000000"):
        cl.current("CL:0000003")


def test_pbmc_bulk_labels_get_cell_ontology_suggestions() -> None:
    labels = obs_column("10x_pbmc68k_reduced.h5ad", "bulk_labels")
    cl = bio.public("CellType", version="v2026-03-26")
    report = cl.inspect(labels, mute=True)
    assert report.validated == [] and len(report.non_validated) == 10
    close = report.suggestions
    assert close["CD14+ Monocyte"][0] == "CD14-positive monocyte"
    assert close["Dendritic"][0] == "dendritic cell"
    assert "CD4-positive, CD25-positive, alpha-beta regulatory T cell" in close["CD4+/CD25 T Reg"]
    assert close["CD19+ B"][0] == "B cell, CD19-positive"
    # synonyms and case variants of the same labels standardize to names
    assert cl.standardize(["T-cell", "B lymphocyte", "Dendritic Cell"]) == [
        "T cell",
        "B cell",
        "dendritic cell",
    ]


def test_pbmc_gene_symbols_validate_against_human_genes_with_renames() -> None:
    symbols = var_names("10x_pbmc68k_reduced.h5ad")
    genes = bio.public("Gene", organism="human")
    report = genes.inspect(symbols, mute=True)
    assert len(symbols) == 765 and len(report.validated) > 690
    assert report.synonyms_mapper["IGJ"] == "JCHAIN"  # HGNC previous symbol
    assert report.synonyms_mapper["SEPT7"] == "SEPTIN7"
    assert all(s.startswith(("RP", "C9orf", "AL", "CTD", "TMBIM")) for s in report.not_found)


def test_oligodendroglioma_outdated_symbols_are_standardized() -> None:
    symbols = var_names("oligodendroglioma.h5ad")
    genes = bio.public("Gene")
    assert len(symbols) == 9450
    valid = genes.validate(symbols, mute=True)
    mapper = genes.standardize(symbols, return_mapper=True)
    assert isinstance(mapper, dict)
    assert mapper["FAM213B"] == "PRXL2B" and mapper["KIAA0907"] == "KHDC4"
    fixed = genes.standardize(symbols)
    assert genes.validate(fixed, mute=True).sum() == valid.sum() + len(mapper)
    by_id = genes.validate(["ENSG00000141510", "ENSG00000000000"], field="ensembl_gene_id")
    assert by_id.tolist() == [True, False]
