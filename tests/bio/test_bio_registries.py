"""lakeline-bio's registries on an instance (SQLite and PostgreSQL): records from public
sources with their parents, bulk imports, genes per organism, releases side by side."""

from __future__ import annotations

from pathlib import Path

import lakeline_bio as bio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from lakeline.db.migrate import include_object_for
from lakeline.instance import Instance
from lakeline.modules import Base, installed, mounted
from lakeline_bio.models import CellType, DevelopmentalStage, Gene, Source, Tissue
from lakeline_bio.plugin import BIO


def test_module_is_mounted_and_its_migration_matches_the_models(bio_instance: Instance) -> None:
    assert installed()["bio"] == BIO and mounted() == {"bio": "lakeline-bio"}
    with bio_instance.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object_for([BIO])}
        )
        assert list(compare_metadata(context, Base.metadata)) == []


def test_from_source_saves_a_term_with_its_ancestors(bio_instance: Instance) -> None:
    record = CellType.from_source(ontology_id="CL:0000236", version="v2026-03-26")
    assert record.id is None and record.name == "B cell"
    saved = record.save()
    assert saved.id is not None and saved.ontology_id == "CL:0000236"
    assert [p.ontology_id for p in saved.parents] == ["CL:0000945"]
    ancestors = {r.ontology_id for r in CellType.filter().all()}
    assert {"CL:0000542", "CL:0000000"} <= ancestors  # lymphocyte ... cell
    assert saved.created_by is not None
    source = Source.get(entity="CellType")
    assert (source.ontology, source.version, source.in_use) == ("CL", "v2026-03-26", True)
    assert source.file_hash and len(source.file_hash) == 64
    # the same term again is the same record
    assert (
        CellType.from_source(ontology_id="CL:0000236", version="v2026-03-26").save().id == saved.id
    )


def test_import_source_is_one_bulk_transaction_and_idempotent(bio_instance: Instance) -> None:
    created = CellType.import_source(version="v2026-03-26")
    frame = bio.public("CellType", version="v2026-03-26").frame
    assert created == len(frame) == CellType.filter().count()
    assert CellType.import_source(version="v2026-03-26") == 0
    t_cell = CellType.get(ontology_id="CL:0000084")
    assert t_cell.name == "T cell" and "T-cell" in (t_cell.synonyms or "")
    assert "CL:0000789" in {c.ontology_id for c in t_cell.children}  # alpha-beta T cell
    # registry validation through names and synonyms (core's CanValidate)
    assert CellType.validate(["T cell", "Tregs"], mute=True).tolist() == [True, False]
    assert CellType.standardize(["T-cell", "B lymphocyte"]) == ["T cell", "B cell"]


def test_records_label_artifacts(bio_instance: Instance, tmp_path: Path) -> None:
    import lakeline as ll

    tissue = Tissue.from_source(ontology_id="UBERON:0002048").save()  # lung
    path = tmp_path / "lung.txt"
    path.write_text("x")
    artifact = ll.Artifact(path, key="lung.txt").save()
    artifact.labels.add(tissue)
    assert [r.name for r in artifact.labels.get(registry=Tissue)] == ["lung"]


def test_unknown_and_deprecated_terms_are_refused(bio_instance: Instance) -> None:
    with pytest.raises(bio.UnknownTerm, match="'CL:9999999' is not in CL/"):
        CellType.from_source(ontology_id="CL:9999999")
    with pytest.raises(
        bio.DeprecatedTerm, match="deprecated in CL/v2026-03-26; replaced by CL:0000000"
    ):
        CellType.from_source(ontology_id="CL:0000003", version="v2026-03-26")
    assert CellType.filter().count() == 0 and Source.filter().count() == 0


def test_genes_per_organism_and_the_ambiguous_organism_less_lookup(bio_instance: Instance) -> None:
    with pytest.raises(bio.AmbiguousOrganism, match=r"'TP53' is a gene of .*human"):
        Gene.from_source(symbol="TP53")
    tp53 = Gene.from_source(ensembl_gene_id="ENSG00000141510").save()  # the id tells the organism
    assert (tp53.symbol, tp53.organism, tp53.ncbi_gene_id) == ("TP53", "human", "7157")
    mouse = Gene.from_source(symbol="Trp53", organism="mouse").save()
    assert mouse.ensembl_gene_id.startswith("ENSMUSG")
    with pytest.raises(bio.AmbiguousOrganism, match="human, mouse: pass organism="):
        Gene.validate(["TP53"])
    assert Gene.validate(["TP53", "Trp53"], organism="human", mute=True).tolist() == [True, False]
    assert Gene.validate(["ENSG00000141510"], field="ensembl_gene_id").tolist() == [True]
    assert Gene.standardize(["p53", "TP53"], organism="human") == ["TP53", "TP53"]


def test_releases_side_by_side_diff_and_migrate(bio_instance: Instance) -> None:
    old, new = "v2025-02-13", "v2026-03-26"
    changes = CellType.diff_sources("2025-02-13", "2026-03-26")  # as the issue writes them
    a = bio.public("CellType", version=old).frame.set_index("ontology_id")
    b = bio.public("CellType", version=new).frame.set_index("ontology_id")
    assert set(changes.added.index) == set(b.index) - set(a.index) and len(changes.added) > 100
    for term, row in changes.renamed.iterrows():
        assert (a.at[term, "name"], b.at[term, "name"]) == (row["old_name"], row["name"])
    for term, replacement in changes.replaced.items():
        assert not a.at[term, "deprecated"] and b.at[term, "deprecated"]
        assert b.at[term, "replaced_by"] == replacement
    assert len(changes.renamed) > 0 and len(changes.replaced) > 0
    deprecated_id, replacement = next(iter(changes.replaced.items()))

    kept = CellType.from_source(ontology_id="CL:0000236", version=old).save()
    doomed = CellType.from_source(ontology_id=deprecated_id, version=old).save()
    orphan_id = next(t for t in changes.deprecated.index if t not in changes.replaced)
    orphan = CellType.from_source(ontology_id=orphan_id, version=old).save()
    assert Source.get(entity="CellType", version=old).in_use
    report = CellType.migrate_source(new)
    assert report.moved[deprecated_id] == replacement
    assert report.kept >= 1
    assert report.not_migrated[orphan_id] == f"deprecated in CL/{new}, no replacement"
    assert CellType.get(uid=orphan.uid).source_id == Source.get(version=old).id  # left alone
    moved = CellType.get(uid=doomed.uid)
    assert moved.ontology_id == replacement and not moved.deprecated
    assert CellType.get(uid=kept.uid).source_id == Source.get(version=new).id
    assert Source.get(version=new).in_use and not Source.get(version=old).in_use
    with pytest.raises(bio.UnknownSource, match="no records of release v1999"):
        CellType.migrate_source(new, old="v1999")


def test_a_users_own_obo_file_is_imported_like_a_release(bio_instance: Instance, tmp_path) -> None:
    obo = tmp_path / "lab.obo"
    obo.write_text(
        "format-version: 1.2\ndata-version: lab/2026-01\nontology: lab\n\n"
        '[Term]\nid: LAB:0001\nname: organoid\nsynonym: "mini organ" EXACT []\n\n'
        "[Term]\nid: LAB:0002\nname: brain organoid\nis_a: LAB:0001\n"
    )
    assert Tissue.import_file(obo) == 2
    source = Source.get(entity="Tissue")
    assert (source.ontology, source.version, source.origin) == (
        "LAB",
        "lab/2026-01",
        "file lab.obo",
    )
    brain = Tissue.get(ontology_id="LAB:0002")
    assert [p.name for p in brain.parents] == ["organoid"]
    assert Tissue.standardize(["mini organ"]) == ["organoid"]
    with pytest.raises(bio.UnknownSource, match="no ontology file at"):
        Tissue.import_file(tmp_path / "missing.obo")


def test_cli_imports_a_release_into_the_current_instance(bio_instance: Instance) -> None:
    from click.testing import CliRunner
    from lakeline.cli import cli

    result = CliRunner().invoke(cli, ["bio", "import", "DevelopmentalStage"])
    assert result.exit_code == 0, result.output
    assert "records created from HsapDv/v2025-01-23" in result.output
    assert DevelopmentalStage.filter(ontology_id="HsapDv:0000001").count() == 1
    result = CliRunner().invoke(cli, ["bio", "import", "Source"])
    assert result.exit_code == 1 and "no importable registry 'Source'" in result.output


def test_cell_markers_start_empty_and_records_can_be_made_by_hand(bio_instance: Instance) -> None:
    import lakeline as ll

    assert bio.CellMarker.filter().count() == 0
    ll.save([bio.CellMarker(name="CD8A", gene_symbol="CD8A", organism="human"),
             bio.CellMarker(name="CD14", gene_symbol="CD14", organism="human")])  # fmt: skip
    assert bio.CellMarker.validate(["CD8A", "CD3"], mute=True).tolist() == [True, False]
    own = CellType(name="lab's odd cell", synonyms="odd cell").save()  # no source, no id
    assert own.id is not None and own.ontology_id is None and own.deprecated is False
    assert CellType.standardize(["odd cell"]) == ["lab's odd cell"]
