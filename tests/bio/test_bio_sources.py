"""lakeline-bio's public sources: found offline in installed packages and package data."""

from __future__ import annotations

import json

import lakeline_bio as bio
import pytest
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline_bio.catalog import find_source


def test_at_least_twenty_sources_with_versions_are_listed_by_the_cli(bio_plugin: None) -> None:
    result = CliRunner().invoke(cli, ["bio", "sources", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    distinct = {(r["ontology"], r["organism"]) for r in rows}
    assert len(distinct) >= 20
    assert all(r["version"] and r["origin"] and r["license"] for r in rows)
    ontologies = {r["ontology"] for r in rows}
    wanted = {"CL", "UBERON", "MONDO", "EFO", "PATO", "HANCESTRO", "HsapDv", "MmusDv", "HPO"}
    assert wanted | {"GO", "GENCODE", "Ensembl", "NCBITaxon", "CVCL", "UniProt"} <= ontologies
    human = [r for r in rows if r["entity"] == "Gene" and r["organism"] == "human"]
    assert {"48", "100"} <= {r["version"] for r in human}


def test_every_registry_has_a_default_source_that_reads() -> None:
    for entity in ("CellType", "Tissue", "Disease", "Phenotype", "ExperimentalFactor"):
        source = find_source(entity)
        frame = source.read()
        assert len(frame) > 1000, source.key
        assert {"ontology_id", "name", "synonyms", "parents", "deprecated"} <= set(frame)
    for entity in ("DevelopmentalStage", "Ethnicity", "Organism", "Pathway"):
        assert len(find_source(entity).read()) > 10


def test_cell_ontology_terms_carry_synonyms_parents_and_replacements() -> None:
    frame = find_source("CellType", version="v2026-03-26").read().set_index("ontology_id")
    b_cell = frame.loc["CL:0000236"]
    assert b_cell["name"] == "B cell"
    assert "B lymphocyte" in b_cell["synonyms"]
    assert b_cell["parents"] == ["CL:0000945"]  # lymphocyte of B lineage
    obsolete = frame.loc["CL:0000003"]
    assert obsolete["deprecated"] and obsolete["replaced_by"] == "CL:0000000"


def test_current_human_genes_take_hgnc_synonyms_from_older_releases() -> None:
    genes = find_source("Gene", organism="human").read()
    assert find_source("Gene").key == "GENCODE/48/human"
    assert 70_000 < len(genes) < 90_000
    resf1 = genes[genes["symbol"] == "RESF1"].iloc[0]
    assert resf1["ensembl_gene_id"] == "ENSG00000174718"
    assert "KIAA1551" in resf1["synonyms"]  # Ensembl 100's symbol of the same gene
    tp53 = genes[genes["symbol"] == "TP53"].iloc[0]
    assert tp53["ncbi_gene_id"] == "7157" and "p53" in tp53["synonyms"]


def test_gene_ontology_comes_with_typed_relations() -> None:
    go = find_source("Pathway").read().set_index("ontology_id")
    assert find_source("Pathway").version == "2022-07-01"
    assert go.loc["GO:0000001", "name"] == "mitochondrion inheritance"
    assert any(r.startswith("part_of ") for r in go["relations"].iloc[:5000].sum())
    assert go["deprecated"].sum() > 1000


def test_users_own_obo_file_reads_through_pronto(tmp_path) -> None:
    from lakeline_bio._read import read_obo

    obo = tmp_path / "lab.obo"
    obo.write_text(
        "format-version: 1.2\nontology: lab\n\n"
        '[Term]\nid: LAB:0001\nname: organoid\nsynonym: "mini organ" EXACT []\n\n'
        "[Term]\nid: LAB:0002\nname: brain organoid\nis_a: LAB:0001\n\n"
        "[Term]\nid: LAB:0003\nname: old organoid\nis_obsolete: true\nreplaced_by: LAB:0001\n"
    )
    frame = read_obo(obo).set_index("ontology_id")
    assert frame.loc["LAB:0001", "synonyms"] == ["mini organ"]
    assert frame.loc["LAB:0002", "parents"] == ["LAB:0001"]
    assert frame.loc["LAB:0003", "deprecated"]
    assert frame.loc["LAB:0003", "replaced_by"] == "LAB:0001"


def test_a_release_is_named_with_or_without_its_v() -> None:
    assert find_source("CellType", version="2025-02-13").key == "CL/v2025-02-13"
    assert find_source("CellType", version="v2025-02-13").key == "CL/v2025-02-13"
    assert find_source("Tissue", ontology="zfa", version="2025-09-05").key == "ZFA/v2025-09-05"


def test_unknown_registry_or_release_is_a_one_line_error(bio_plugin: None) -> None:
    with pytest.raises(bio.UnknownSource, match="no registry 'Cell'"):
        bio.sources("Cell")
    with pytest.raises(bio.UnknownSource, match="no public source CL/v1999"):
        find_source("CellType", version="v1999")
    result = CliRunner().invoke(cli, ["bio", "sources", "--entity", "Cell"])
    assert result.exit_code != 0 and "no registry 'Cell'" in result.output


def test_organisms_are_named_as_genes_name_them() -> None:
    organisms = find_source("Organism").read().set_index("name")
    assert organisms.loc["human", "ontology_id"] == "NCBITaxon:9606"
    assert "Drosophila melanogaster" in organisms.loc["fruit_fly", "synonyms"]
    genes = {s.organism for s in bio.sources("Gene")}
    assert genes == set(organisms.index)


def test_cli_searches_a_public_ontology(bio_plugin: None) -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["bio", "search", "CellType", "Tregs"])
    assert result.exit_code == 0, result.output
    assert "CL:0000815" in result.output and "regulatory T cell" in result.output
    result = CliRunner().invoke(cli, ["bio", "search", "Cell", "T cell"])
    assert result.exit_code != 0 and "no registry 'Cell'" in result.output
