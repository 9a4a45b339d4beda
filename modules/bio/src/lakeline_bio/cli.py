"""`lakeline bio sources` and `lakeline bio search` (added by lakeline_bio.plugin)."""

from __future__ import annotations

import json

import click


@click.group("bio")
def bio() -> None:
    """Public biological ontologies and gene tables (lakeline-bio), offline."""


@bio.command("sources")
@click.option("--entity", help="Only this registry's sources (CellType, Gene, ...).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
def sources_command(entity: str | None, as_json: bool) -> None:
    """List the public sources importable here, with their versions (nothing is downloaded)."""
    from lakeline.cli.output import console
    from rich.table import Table

    from lakeline_bio.catalog import sources
    from lakeline_bio.errors import UnknownSource

    try:
        found = sources(entity)
    except UnknownSource as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        for s in found:
            row = {
                "entity": s.entity,
                "ontology": s.ontology,
                "version": s.version,
                "organism": s.organism,
                "origin": s.origin,
                "license": s.license,
                "key": s.key,
            }
            click.echo(json.dumps(row))
        return
    table = Table("registry", "ontology", "version", "organism", "origin", "license")
    for s in sorted(found, key=lambda s: (s.entity, s.ontology, s.organism or "", s.version)):
        table.add_row(s.entity, s.ontology, s.version, s.organism or "", s.origin, s.license)
    out = console()
    out.print(table)
    ontologies = {(s.ontology, s.organism) for s in found}
    out.print(f"{len(found)} sources: {len(ontologies)} ontologies and gene tables")


@bio.command("search")
@click.argument("entity")
@click.argument("query")
@click.option("--limit", default=10, show_default=True)
@click.option("--organism", help="Genes: the organism (default human).")
def search_command(entity: str, query: str, limit: int, organism: str | None) -> None:
    """Search a registry's public ontology: `lakeline bio search CellType "T cell"`."""
    from lakeline.cli.output import console
    from rich.table import Table

    from lakeline_bio.errors import UnknownSource
    from lakeline_bio.ontology import PublicOntology

    try:
        public = PublicOntology.of(entity, organism=organism)
    except UnknownSource as exc:
        raise click.ClickException(str(exc)) from None
    hits = public.search(query, limit=limit)
    table = Table(*hits.columns)
    for row in hits.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    console().print(table)


@bio.command("import")
@click.argument("entity")
@click.option("--ontology", help="The ontology (default: the registry's own, e.g. CL).")
@click.option("--version", "release", help="The release (default: the newest here).")
@click.option("--organism", default="human", show_default=True, help="Genes: the organism.")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Your own OBO/OWL file.")
def import_command(
    entity: str, ontology: str | None, release: str | None, organism: str, path: str | None
) -> None:
    """Import a whole release into a registry of the current instance, in one transaction:
    `lakeline bio import CellType`, `lakeline bio import Gene --organism mouse`."""
    import lakeline_bio
    from lakeline_bio._importing import import_genes, import_terms
    from lakeline_bio.catalog import file_source, find_source
    from lakeline_bio.errors import UnknownSource

    if entity not in lakeline_bio.REGISTRIES or entity in ("Source", "CellMarker"):
        raise UnknownSource(f"no importable registry {entity!r}")
    model = getattr(lakeline_bio, entity)
    if path is not None:
        source = file_source(entity, path, ontology, release)
    else:
        gene = entity == "Gene"
        kind = {"organism": organism} if gene else {}
        source = find_source(entity, ontology=ontology, version=release, **kind)
    created = (import_genes if entity == "Gene" else import_terms)(model, source, None)
    click.echo(f"{entity}: {created:,} records created from {source.key} ({source.origin})")
