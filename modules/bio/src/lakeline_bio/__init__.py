"""lakeline-bio: public biological ontologies and gene tables as lakeline registries, offline.

    import lakeline_bio as bio
    bio.public("CellType").search("T cell")      # the ontology itself, no records needed
    bio.sources("CellType")                      # the releases importable here

Importing this package is light: sources are read when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeline_bio.errors import AmbiguousOrganism, DeprecatedTerm, UnknownSource, UnknownTerm

if TYPE_CHECKING:
    from lakeline_bio.catalog import PublicSource
    from lakeline_bio.ontology import PublicOntology


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
    "AmbiguousOrganism",
    "DeprecatedTerm",
    "UnknownSource",
    "UnknownTerm",
    "public",
    "sources",
]
