"""What lakeline-bio's registries add to module records: their public source (`public()`),
records from it (`from_source`, `import_source`), parents, and release changes (`diff_sources`,
`migrate_source`). Genes: per-organism validation and lookups."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Self

from lakeline_bio.errors import AmbiguousOrganism, UnknownTerm

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from lakeline.modules import InspectResult

    from lakeline_bio.catalog import PublicSource
    from lakeline_bio.ontology import PublicOntology
    from lakeline_bio.versions import MigrationReport, SourceDiff


def _saved(model: type[Any], source: PublicSource, key: str, value: str) -> Any:
    """The record of `model` imported from `source` whose `key` column is `value`."""
    from lakeline.instance import current
    from sqlalchemy import select

    from lakeline_bio.models import Source

    stmt = (
        select(model)
        .join(Source, Source.id == model.source_id)
        .where(
            getattr(model, key) == value,
            Source.entity == source.entity,
            Source.ontology == source.ontology,
            Source.version == source.version,
        )
    )
    with current().sessions.read() as session:
        record = session.scalars(stmt).first()
        session.expunge_all()
    return record


class BioRegistry:
    """Ontology registries: CellType, Tissue, Disease, ... (mixed into the mapped classes)."""

    _bio_pending: tuple[PublicSource, list[str]] | None = None

    @classmethod
    def public(cls, ontology: str | None = None, version: str | None = None) -> PublicOntology:
        """The registry's public ontology, without records (newest release unless told)."""
        from lakeline_bio.ontology import PublicOntology

        return PublicOntology.of(cls.__name__, ontology=ontology, version=version)

    @classmethod
    def from_source(
        cls,
        ontology_id: str | None = None,
        *,
        name: str | None = None,
        ontology: str | None = None,
        version: str | None = None,
    ) -> Self:
        """An unsaved record of a current term (by id, or by exact name); `.save()` saves it
        with its ancestors and their parent edges. UnknownTerm / DeprecatedTerm otherwise."""
        from lakeline_bio._importing import joined

        public = cls.public(ontology, version)
        if ontology_id is None:
            if name is None:
                raise UnknownTerm(f"{cls.__name__}.from_source needs an ontology_id or a name")
            found = public.ids_of([name])
            if name not in found:
                raise UnknownTerm(f"{cls.__name__}: no current term named {name!r} in {public.key}")
            ontology_id = found[name]
        row = public.current(ontology_id)
        make: Any = cls
        record: Self = make(
            ontology_id=ontology_id,
            name=row["name"],
            synonyms=joined(row["synonyms"]),
            definition=row["definition"],
            deprecated=False,
        )
        assert public.source is not None
        record._bio_pending = (public.source, [ontology_id, *public.ancestors(ontology_id)])
        return record

    def save(self) -> Self:
        """Save the record; one made by `from_source` is saved with its ancestors (one
        transaction; terms of that release already saved are reused)."""
        pending = self._bio_pending
        if pending is None:
            return super().save()  # type: ignore[misc, no-any-return]
        from lakeline_bio._importing import import_terms

        source, ids = pending
        import_terms(type(self), source, ids)
        self._bio_pending = None
        saved: Self = _saved(type(self), source, "ontology_id", ids[0])
        return saved

    @classmethod
    def import_source(cls, ontology: str | None = None, version: str | None = None) -> int:
        """Import a whole release (newest of the default ontology unless told) in one
        transaction, with parent edges; returns how many records were created."""
        from lakeline_bio._importing import import_terms
        from lakeline_bio.catalog import find_source

        return import_terms(
            cls, find_source(cls.__name__, ontology=ontology, version=version), None
        )

    @classmethod
    def import_file(cls, path: Any, ontology: str | None = None, version: str | None = None) -> int:
        """Import a user's own OBO/OWL file (pronto) as a release of its own, like a public
        one: one transaction, parent edges, a Source record (origin `file <name>`)."""
        from lakeline_bio._importing import import_terms
        from lakeline_bio.catalog import file_source

        return import_terms(cls, file_source(cls.__name__, path, ontology, version), None)

    @property
    def parents(self) -> list[Self]:
        """The records directly above this one (same release)."""
        return self._related("child_id", "parent_id")

    @property
    def children(self) -> list[Self]:
        """The records directly below this one (same release)."""
        return self._related("parent_id", "child_id")

    def _related(self, mine: str, theirs: str) -> list[Self]:
        from lakeline.instance import current
        from sqlalchemy import select

        model = type(self)
        edges = model.__parents__  # type: ignore[attr-defined]
        stmt = (
            select(model)
            .join(edges, getattr(edges.c, theirs) == model.id)  # type: ignore[attr-defined]
            .where(getattr(edges.c, mine) == self.id)  # type: ignore[attr-defined]
            .order_by(model.ontology_id)  # type: ignore[attr-defined]
        )
        with current().sessions.read() as session:
            found = list(session.scalars(stmt))
            session.expunge_all()
        return found

    @classmethod
    def inspect(cls, values: Any, field: str | None = None, *, mute: bool = False) -> InspectResult:
        """CanValidate's inspect; close matches come from the registry's names and synonyms
        through the public search's ranking (lab notation like "CD14+ Monocyte" finds
        "CD14-positive monocyte", which an edit distance does not)."""
        from lakeline_bio.ontology import suggesting

        result: InspectResult = super().inspect(values, field, mute=True)  # type: ignore[misc]
        if field in (None, "name"):
            result = suggesting(result, cls.__name__)
        if not mute:
            result.print()
        return result

    @classmethod
    def diff_sources(cls, old: str, new: str, ontology: str | None = None) -> SourceDiff:
        """What changed between two releases: added, deprecated, renamed, replaced terms."""
        from lakeline_bio.versions import diff

        return diff(cls.public(ontology, old), cls.public(ontology, new))

    @classmethod
    def migrate_source(
        cls, new: str | None = None, *, old: str | None = None, ontology: str | None = None
    ) -> MigrationReport:
        """Move the records of release `old` (default: the one in use) to release `new`
        (default: the newest): terms keep their record, deprecated ones move to their
        replacement; the report lists what could not move and why. One transaction."""
        from lakeline_bio.versions import migrate

        return migrate(cls, ontology=ontology, old=old, new=new)


@cache
def _gene_index() -> pd.DataFrame:
    """(organism, ensembl_gene_id, symbol) of the package's current gene tables."""
    import pandas as pd

    from lakeline_bio.catalog import package_data

    return pd.read_parquet(
        package_data() / "genes.parquet", columns=["organism", "ensembl_gene_id", "symbol"]
    )


def organisms_of(field: str, value: str) -> list[str]:
    """The organisms whose current gene table has a gene with this symbol or Ensembl id."""
    genes = _gene_index()
    return sorted(set(genes.loc[genes[field] == value, "organism"]))


class GeneRegistry:
    """Genes: public tables per organism, validation by symbol per organism or by Ensembl id."""

    _bio_pending: tuple[PublicSource, list[str]] | None = None

    @classmethod
    def public(
        cls, organism: str = "human", ontology: str | None = None, version: str | None = None
    ) -> PublicOntology:
        """An organism's public gene table (default: the current GENCODE/Ensembl one)."""
        from lakeline_bio.ontology import PublicOntology

        return PublicOntology.of("Gene", ontology=ontology, version=version, organism=organism)

    @classmethod
    def from_source(
        cls,
        ensembl_gene_id: str | None = None,
        *,
        symbol: str | None = None,
        organism: str | None = None,
        version: str | None = None,
    ) -> Self:
        """An unsaved gene by Ensembl id or symbol. Without `organism`, the organism is the
        one whose table holds the id or symbol; a symbol of several is AmbiguousOrganism."""
        from lakeline_bio._importing import joined

        field, value = (
            ("ensembl_gene_id", ensembl_gene_id) if ensembl_gene_id else ("symbol", symbol)
        )
        if value is None:
            raise UnknownTerm("Gene.from_source needs an ensembl_gene_id or a symbol")
        if organism is None:
            found = organisms_of(field, value)
            if len(found) > 1:
                raise AmbiguousOrganism(
                    f"Gene {field} {value!r} is a gene of {', '.join(found)}: pass organism="
                )
            if not found:
                raise UnknownTerm(f"Gene: no organism's current table has {field} {value!r}")
            organism = found[0]
        public = cls.public(organism, version=version)
        if field == "symbol":
            ids = public.ids_of([value])
            if value not in ids:
                raise UnknownTerm(f"Gene: no {organism} gene with symbol {value!r} in {public.key}")
            value = ids[value]
        row = public.get(value)
        make: Any = cls
        record: Self = make(
            ensembl_gene_id=row["ensembl_gene_id"],
            symbol=row["symbol"],
            biotype=row["biotype"],
            synonyms=joined(row["synonyms"]),
            ncbi_gene_id=row["ncbi_gene_id"],
            description=row["description"],
            organism=organism,
        )
        assert public.source is not None
        record._bio_pending = (public.source, [value])
        return record

    def save(self) -> Self:
        """Save the gene (one from `from_source` is tied to its release's Source record)."""
        pending = self._bio_pending
        if pending is None:
            return super().save()  # type: ignore[misc, no-any-return]
        from lakeline_bio._importing import import_genes

        source, ids = pending
        import_genes(type(self), source, ids)
        self._bio_pending = None
        saved: Self = _saved(type(self), source, "ensembl_gene_id", ids[0])
        return saved

    @classmethod
    def import_source(
        cls, organism: str = "human", ontology: str | None = None, version: str | None = None
    ) -> int:
        """Import an organism's gene table in one transaction; returns how many were created."""
        from lakeline_bio._importing import import_genes
        from lakeline_bio.catalog import find_source

        source = find_source("Gene", ontology=ontology, version=version, organism=organism)
        return import_genes(cls, source, None)

    # -- validation per organism ------------------------------------------------------------

    @classmethod
    def _organism(cls, organism: str | None, field: str | None) -> str | None:
        """The organism symbols are looked up in: the given one, else the only one the
        registry holds (several: AmbiguousOrganism). Ensembl ids need none."""
        from lakeline.instance import current
        from sqlalchemy import distinct, select

        if organism is not None or field not in (None, "symbol"):
            return organism
        table = cls.__table__  # type: ignore[attr-defined]
        with current().sessions.read() as session:
            held = sorted(session.scalars(select(distinct(table.c.organism))))
        if len(held) > 1:
            raise AmbiguousOrganism(
                f"Gene holds genes of {', '.join(map(str, held))}: pass organism= "
                "(or validate Ensembl ids: field='ensembl_gene_id')"
            )
        return held[0] if held else None

    @classmethod
    def _records(cls, organism: str | None, field: str | None) -> PublicOntology:
        """The registry's genes of one organism as an in-memory index (one query)."""
        from lakeline.instance import current
        from sqlalchemy import select

        from lakeline_bio.ontology import PublicOntology, records_frame

        organism = cls._organism(organism, field)
        table = cls.__table__  # type: ignore[attr-defined]
        stmt = select(table.c.ensembl_gene_id, table.c.symbol, table.c.synonyms)
        if organism is not None:
            stmt = stmt.where(table.c.organism == organism)
        with current().sessions.read() as session:
            rows = session.execute(stmt.order_by(table.c.id)).all()
        label = f"records, {organism or 'all'}"
        return PublicOntology.from_frame("Gene", records_frame(list(rows)), label)

    @classmethod
    def validate(
        cls,
        values: Any,
        field: str | None = None,
        *,
        organism: str | None = None,
        mute: bool = False,
    ) -> npt.NDArray[np.bool_]:
        """One bool per value: a symbol of a gene of `organism` (or `field`, e.g. an Ensembl
        id), looked up in the database with one query."""
        import logging

        from lakeline.instance import current
        from lakeline.modules import distinct, name_field, one_param_in, summary_line
        from sqlalchemy import select

        organism = cls._organism(organism, field)
        column = name_field(cls, field)
        values_ = distinct(cls, column, values, ordered=False)
        engine = current().engine
        stmt = select(column).where(one_param_in(column, values_.sendable, engine.dialect.name))
        if organism is not None:
            stmt = stmt.where(cls.__table__.c.organism == organism)  # type: ignore[attr-defined]
        with engine.connect() as conn:
            found = set(conn.execute(stmt).scalars())
        result: npt.NDArray[np.bool_] = values_.member(found)
        if not mute and not result.all():
            missing = sorted(v for v in values_.uniques if v not in found)
            logging.getLogger("lakeline.validation").warning(
                summary_line(f"Gene.{column.key} ({organism or 'all'})", len(result), missing,
                             int((~result).sum()))
            )  # fmt: skip
        return result

    @classmethod
    def inspect(
        cls,
        values: Any,
        field: str | None = None,
        *,
        organism: str | None = None,
        mute: bool = False,
    ) -> InspectResult:
        """Validated symbols, outdated ones (synonyms) and close matches, per organism."""
        return cls._records(organism, field).inspect(values, field, mute=mute)

    @classmethod
    def standardize(
        cls,
        values: Any,
        *,
        organism: str | None = None,
        case_sensitive: bool = True,
        return_mapper: bool = False,
    ) -> list[Any] | dict[str, str]:
        """Outdated symbols (previous and alias symbols) replaced by current ones, per organism."""
        return cls._records(organism, None).standardize(
            values, case_sensitive=case_sensitive, return_mapper=return_mapper
        )
