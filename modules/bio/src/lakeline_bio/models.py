"""lakeline-bio's registries (tables `bio_*`, alembic branch `bio`; see docs/bio.md).

Ontology registries share one layout (`OntologyColumns`): ontology id, name, synonyms
("|"-separated), definition, deprecated / replaced by, and the `Source` release the record
came from; parents (a DAG) are rows of `<table>_parents`. A term is one record per source
release: (source, ontology id) is unique, so a newer release can be imported next to an older
one. Genes: Ensembl id, symbol, biotype, synonyms, NCBI id, organism. Every registry but
`Source` labels artifacts (LabelRecord) and validates names (CanValidate).
"""

from __future__ import annotations

from typing import Any, ClassVar

from lakeline.modules import Base, CanValidate, LabelRecord, LongText, Record, Str
from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from lakeline_bio.registry import BioRegistry, GeneRegistry


class Source(Record, Base):
    """One release of a public ontology or gene table that records were imported from.

    `entity` is the registry (CellType, Gene, ...), `ontology` the ontology (CL, GENCODE),
    `in_use` marks the release the registry's records currently follow.
    """

    __tablename__ = "bio_sources"
    __table_args__ = (UniqueConstraint("entity", "ontology", "version", "organism"),)

    entity: Mapped[str] = mapped_column(Str(64), index=True)
    ontology: Mapped[str] = mapped_column(Str(64))
    version: Mapped[str] = mapped_column(Str(64))
    organism: Mapped[str | None] = mapped_column(Str(64))
    origin: Mapped[str | None] = mapped_column(Str(255))
    license: Mapped[str | None] = mapped_column(Str(255))
    file_hash: Mapped[str | None] = mapped_column(Str(64))
    in_use: Mapped[bool] = mapped_column(Boolean, default=False)

    def _repr_fields(self) -> tuple[str, ...]:
        return ("entity", "ontology", "version", "organism", "in_use")


def parents_table(table: str) -> Table:
    """The DAG edges of an ontology registry: (child, parent), both records of the table."""

    def edge(column: str) -> Column[int]:
        return Column(
            column, Integer, ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True
        )

    return Table(
        f"{table}_parents",
        Base.metadata,
        edge("child_id"),
        edge("parent_id"),
        Index(f"ix_{table}_parents_parent_id", "parent_id"),
        info={"lakeline_module": True},
    )


class OntologyColumns:
    """The columns of every ontology registry."""

    __parents__: ClassVar[Table]

    ontology_id: Mapped[str | None] = mapped_column(Str(64), index=True)
    name: Mapped[str] = mapped_column(Str(512), index=True)
    synonyms: Mapped[str | None] = mapped_column(LongText)
    definition: Mapped[str | None] = mapped_column(LongText)
    deprecated: Mapped[bool] = mapped_column(Boolean, default=False)
    replaced_by: Mapped[str | None] = mapped_column(Str(64))

    @declared_attr
    def source_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("bio_sources.id"), index=True)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (UniqueConstraint("source_id", "ontology_id"),)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__table__")
        if table is not None:
            cls.__parents__ = parents_table(table.name)

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "ontology_id", "name")


class CellType(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Cell types (Cell Ontology)."""

    __tablename__ = "bio_cell_types"


class CellLine(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Cell lines (Cellosaurus ids and names)."""

    __tablename__ = "bio_cell_lines"


class Tissue(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Tissues and anatomy (UBERON; FBbt, ZFA, WBbt for fly, fish, worm)."""

    __tablename__ = "bio_tissues"


class Disease(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Diseases (MONDO)."""

    __tablename__ = "bio_diseases"


class Phenotype(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Phenotypes (HPO; PATO)."""

    __tablename__ = "bio_phenotypes"


class ExperimentalFactor(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Experimental factors: assays, technologies, ... (EFO)."""

    __tablename__ = "bio_experimental_factors"


class DevelopmentalStage(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Developmental stages (HsapDv; MmusDv, FBdv, WBls)."""

    __tablename__ = "bio_developmental_stages"


class Ethnicity(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Ancestry categories (HANCESTRO)."""

    __tablename__ = "bio_ethnicities"


class Organism(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Organisms (the 14 of the gene tables by default; NCBITaxon)."""

    __tablename__ = "bio_organisms"


class Pathway(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Pathways and processes (Gene Ontology: BP, MF, CC)."""

    __tablename__ = "bio_pathways"


class Protein(BioRegistry, OntologyColumns, LabelRecord, CanValidate, Base):
    """Proteins (UniProt accessions and entry names)."""

    __tablename__ = "bio_proteins"


# Gene.standardize takes `organism` (symbols are per organism) instead of CanValidate's `keep`
class Gene(GeneRegistry, LabelRecord, CanValidate, Base):  # type: ignore[misc]
    """Genes of one organism each: Ensembl id, symbol, biotype, synonyms (previous and alias
    symbols), NCBI id. Validate by symbol (per organism) or by Ensembl id."""

    __tablename__ = "bio_genes"
    __table_args__ = (UniqueConstraint("source_id", "ensembl_gene_id"),)
    _name_field = "symbol"

    ensembl_gene_id: Mapped[str | None] = mapped_column(Str(64), index=True)
    symbol: Mapped[str | None] = mapped_column(Str(64), index=True)
    biotype: Mapped[str | None] = mapped_column(Str(64))
    synonyms: Mapped[str | None] = mapped_column(LongText)
    ncbi_gene_id: Mapped[str | None] = mapped_column(Str(32))
    description: Mapped[str | None] = mapped_column(LongText)
    organism: Mapped[str | None] = mapped_column(Str(64), index=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("bio_sources.id"), index=True)

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "symbol", "ensembl_gene_id", "organism")


class CellMarker(LabelRecord, CanValidate, Base):
    """Cell markers (a gene or protein marking cell types). No offline public source is known:
    the registry starts empty; see docs/bio.md for filling it."""

    __tablename__ = "bio_cell_markers"

    name: Mapped[str] = mapped_column(Str(255), unique=True)
    synonyms: Mapped[str | None] = mapped_column(LongText)
    gene_symbol: Mapped[str | None] = mapped_column(Str(64))
    protein: Mapped[str | None] = mapped_column(Str(64))
    organism: Mapped[str | None] = mapped_column(Str(64))
    description: Mapped[str | None] = mapped_column(LongText)


REGISTRIES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Organism, Gene, Protein, CellMarker, CellType, CellLine, Tissue, Disease, Phenotype,
        ExperimentalFactor, DevelopmentalStage, Ethnicity, Pathway, Source,
    )
}  # fmt: skip
