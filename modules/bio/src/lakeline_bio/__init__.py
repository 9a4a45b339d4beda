"""lakeline-bio: public biological ontologies and gene tables as lakeline registries, offline.

    import lakeline_bio as bio
    bio.CellType.public().search("T cell")       # the ontology itself, no records needed
    bio.CellType.from_source(ontology_id="CL:0000236").save()   # a record with its parents
    bio.Gene.standardize(symbols, organism="human")
    bio.sources("CellType")                      # the releases importable here

Importing this package is light: the registries (SQLAlchemy models) load on first access,
sources when first read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lakeline_bio.errors import AmbiguousOrganism, DeprecatedTerm, UnknownSource, UnknownTerm

if TYPE_CHECKING:
    from lakeline_bio.catalog import PublicSource
    from lakeline_bio.models import (
        CellLine,
        CellMarker,
        CellType,
        DevelopmentalStage,
        Disease,
        Ethnicity,
        ExperimentalFactor,
        Gene,
        Organism,
        Pathway,
        Phenotype,
        Protein,
        Source,
        Tissue,
    )
    from lakeline_bio.ontology import PublicOntology

REGISTRIES = (
    "Organism",
    "Gene",
    "Protein",
    "CellMarker",
    "CellType",
    "CellLine",
    "Tissue",
    "Disease",
    "Phenotype",
    "ExperimentalFactor",
    "DevelopmentalStage",
    "Ethnicity",
    "Pathway",
    "Source",
)


def __getattr__(name: str) -> Any:
    if name in REGISTRIES:
        return getattr(importlib.import_module("lakeline_bio.models"), name)
    raise AttributeError(f"module 'lakeline_bio' has no attribute {name!r}")


def public(
    entity: str,
    ontology: str | None = None,
    version: str | None = None,
    organism: str | None = None,
) -> PublicOntology:
    """A registry's public ontology (newest release of its default ontology unless told)."""
    from lakeline_bio.ontology import PublicOntology

    return PublicOntology.of(entity, ontology=ontology, version=version, organism=organism)


def sources(entity: str | None = None) -> list[PublicSource]:
    """The public sources importable here (of one registry, or all)."""
    from lakeline_bio.catalog import sources as listed

    return listed(entity)


__all__ = [
    "REGISTRIES",
    "AmbiguousOrganism",
    "CellLine",
    "CellMarker",
    "CellType",
    "DeprecatedTerm",
    "DevelopmentalStage",
    "Disease",
    "Ethnicity",
    "ExperimentalFactor",
    "Gene",
    "Organism",
    "Pathway",
    "Phenotype",
    "Protein",
    "Source",
    "Tissue",
    "UnknownSource",
    "UnknownTerm",
    "public",
    "sources",
]
