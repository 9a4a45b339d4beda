"""Bulk import of public sources into lakeline-bio's registries: one transaction per call.

Rows go in with one executemany per table (SQLAlchemy Core `insert`, no ORM objects); terms
already imported from the same release are skipped, so importing twice changes nothing. Parent
edges link terms of the same release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from lakeline_bio.catalog import PublicSource

SEPARATOR = "|"
_BATCH = 5000


def joined(synonyms: Any) -> str | None:
    """Synonyms as the `synonyms` column holds them ("|"-separated; none holding "|")."""
    kept = [s for s in (synonyms if isinstance(synonyms, (list, tuple)) else []) if s]
    kept = [s for s in dict.fromkeys(kept) if SEPARATOR not in s]
    return SEPARATOR.join(kept) or None


def source_row(session: Session, source: PublicSource, *, use: bool) -> Any:
    """The `Source` record of a public source, created on first import (with its file's hash);
    with `use`, it becomes the release the registry's records follow when none is yet."""
    from lakeline.instance import current
    from lakeline.modules import current_run
    from sqlalchemy import select

    from lakeline_bio.models import Source

    found = session.scalar(
        select(Source).where(
            Source.entity == source.entity,
            Source.ontology == source.ontology,
            Source.version == source.version,
            Source.organism.is_(None)
            if source.organism is None
            else Source.organism == source.organism,
        )
    )
    if found is None:
        run = current_run()
        found = Source(
            entity=source.entity,
            ontology=source.ontology,
            version=source.version,
            organism=source.organism,
            origin=source.origin,
            license=source.license,
            file_hash=source.file_hash(),
            in_use=False,
        )
        found._ensure_uid()
        found.created_by_id = current().user.id
        found.run_id = None if run is None else run.id
        session.add(found)
        session.flush()
    if use:
        same = [Source.entity == source.entity, Source.in_use.is_(True)]
        if source.organism is not None:
            same.append(Source.organism == source.organism)
        if session.scalar(select(Source.id).where(*same).limit(1)) is None:
            found.in_use = True
    return found


def insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Rows in bulk: on PostgreSQL records through core's insert_rows (COPY, ids from the
    sequence) and parent edges by COPY; on SQLite Core executemany in batches (no ids read
    back: the importer looks them up by ontology id when it needs them)."""
    from sqlalchemy import insert

    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if rows and postgres and "uid" in rows[0]:  # ids are not needed back on SQLite
        from lakeline.modules import bulk_insert

        bulk_insert(session, table, rows)
        return
    if rows and postgres:  # COPY: one round trip
        names = list(rows[0])
        quote = connection.dialect.identifier_preparer.quote
        statement = f"COPY {quote(table.name)} ({', '.join(map(quote, names))}) FROM STDIN"
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] for name in names])
        return
    for start in range(0, len(rows), _BATCH):  # Core executemany: no ORM bookkeeping
        connection.execute(insert(table), rows[start : start + _BATCH])


def import_terms(model: type[Any], source: PublicSource, ids: list[str] | None) -> int:
    """Import the source's terms (all, or `ids`) with their parent edges; returns how many
    records were created."""
    from lakeline.instance import current
    from sqlalchemy import select

    frame = source.read()
    if ids is not None:
        frame = frame[frame["ontology_id"].isin(ids)]
    frame = frame[frame["name"].notna() & frame["ontology_id"].notna()]
    table = model.__table__
    from lakeline.modules import new_record_stamp, new_uids

    instance = current()
    with instance.sessions.write() as session:
        src = source_row(session, source, use=True)
        done = set(session.scalars(select(table.c.ontology_id).where(table.c.source_id == src.id)))
        stamp = new_record_stamp(instance)
        uids = iter(new_uids(len(frame)))
        rows = []
        for term, name, synonyms, definition, deprecated, replaced in zip(
            frame["ontology_id"],
            frame["name"],
            frame["synonyms"],
            frame["definition"],
            frame["deprecated"],
            frame["replaced_by"],
            strict=True,
        ):
            if term in done:
                continue
            rows.append(
                {
                    "uid": next(uids),
                    **stamp,
                    "ontology_id": term,
                    "name": name,
                    "synonyms": joined(synonyms),
                    "definition": definition if isinstance(definition, str) else None,
                    "deprecated": bool(deprecated),
                    "replaced_by": replaced if isinstance(replaced, str) else None,
                    "source_id": src.id,
                }
            )
        insert_rows(session, table, rows)
        if rows:
            link_parents(session, model, src.id, frame, {r["ontology_id"] for r in rows})
    return len(rows)


def link_parents(
    session: Session, model: type[Any], source_id: int, frame: pd.DataFrame, children: set[str]
) -> None:
    """Parent edges of `children` (ontology ids) to parents that are records of the release."""
    from sqlalchemy import select

    table = model.__table__
    rows = session.execute(
        select(table.c.ontology_id, table.c.id).where(table.c.source_id == source_id)
    )
    ids: dict[str, int] = {term: pk for term, pk in rows}
    edges: list[dict[str, int]] = []
    for term, parents in zip(frame["ontology_id"], frame["parents"], strict=True):
        if term not in children:
            continue
        child = ids[term]
        edges.extend(
            {"child_id": child, "parent_id": ids[p]} for p in dict.fromkeys(parents) if p in ids
        )
    insert_rows(session, model.__parents__, edges)


def import_genes(model: type[Any], source: PublicSource, ids: list[str] | None) -> int:
    """Import a gene table (all genes, or the Ensembl ids `ids`); returns how many records
    were created."""
    from lakeline.instance import current
    from sqlalchemy import select

    frame = source.read()
    if ids is not None:
        frame = frame[frame["ensembl_gene_id"].isin(ids)]
    table = model.__table__
    from lakeline.modules import new_record_stamp, new_uids

    instance = current()
    with instance.sessions.write() as session:
        src = source_row(session, source, use=True)
        done = set(
            session.scalars(select(table.c.ensembl_gene_id).where(table.c.source_id == src.id))
        )
        stamp = new_record_stamp(instance)
        uids = iter(new_uids(len(frame)))
        rows = [
            {
                "uid": next(uids),
                **stamp,
                "ensembl_gene_id": gene,
                "symbol": symbol if isinstance(symbol, str) else None,
                "biotype": biotype if isinstance(biotype, str) else None,
                "synonyms": joined(synonyms),
                "ncbi_gene_id": ncbi if isinstance(ncbi, str) else None,
                "description": description if isinstance(description, str) else None,
                "organism": source.organism,
                "source_id": src.id,
            }
            for gene, symbol, biotype, synonyms, ncbi, description in zip(
                frame["ensembl_gene_id"],
                frame["symbol"],
                frame["biotype"],
                frame["synonyms"],
                frame["ncbi_gene_id"],
                frame["description"],
                strict=True,
            )
            if gene not in done
        ]
        insert_rows(session, table, rows)
    return len(rows)
