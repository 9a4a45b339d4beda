"""Ontology releases side by side: what changed (`diff`), and moving records to a newer
release (`migrate`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeline_bio.errors import UnknownSource

if TYPE_CHECKING:
    import pandas as pd

    from lakeline_bio.ontology import PublicOntology


@dataclass
class SourceDiff:
    """Terms of release `new` against release `old`, each a DataFrame indexed by id:
    `added` (new ids), `removed` (ids gone), `deprecated` (current in old, deprecated in new;
    with `replaced_by`), `renamed` (name changed: `old_name`, `name`)."""

    old: str
    new: str
    added: pd.DataFrame
    removed: pd.DataFrame
    deprecated: pd.DataFrame
    renamed: pd.DataFrame

    @property
    def replaced(self) -> dict[str, str]:
        """{deprecated id: its replacement} for the terms deprecated with one."""
        rows = self.deprecated[self.deprecated["replaced_by"].notna()]
        return dict(zip(rows.index, rows["replaced_by"], strict=True))

    def __repr__(self) -> str:
        return (
            f"SourceDiff({self.old} -> {self.new}: {len(self.added)} added, "
            f"{len(self.removed)} removed, {len(self.deprecated)} deprecated "
            f"({len(self.replaced)} replaced), {len(self.renamed)} renamed)"
        )


def diff(old: PublicOntology, new: PublicOntology) -> SourceDiff:
    """Compare two releases of one ontology."""
    a = old.frame.set_index("ontology_id")
    b = new.frame.set_index("ontology_id")
    both = a.index.intersection(b.index)
    was_current = ~a.loc[both, "deprecated"].to_numpy()
    now_deprecated = b.loc[both, "deprecated"].to_numpy()
    dropped = both[was_current & now_deprecated]
    kept = both[~b.loc[both, "deprecated"].to_numpy()]
    changed = kept[a.loc[kept, "name"].to_numpy() != b.loc[kept, "name"].to_numpy()]
    renamed = b.loc[changed, ["name"]].assign(old_name=a.loc[changed, "name"].to_numpy())
    return SourceDiff(
        old._key,
        new._key,
        added=b.loc[b.index.difference(a.index), ["name", "deprecated"]],
        removed=a.loc[a.index.difference(b.index), ["name"]],
        deprecated=b.loc[dropped, ["name", "replaced_by"]],
        renamed=renamed[["old_name", "name"]],
    )


@dataclass
class MigrationReport:
    """What `migrate_source` did: records `kept` (same term in the new release), `moved`
    ({old id: replacement id}), and `not_migrated` ({id: why}), left on the old release."""

    old: str
    new: str
    kept: int = 0
    moved: dict[str, str] = field(default_factory=dict)
    not_migrated: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"MigrationReport({self.old} -> {self.new}: {self.kept} kept, "
            f"{len(self.moved)} moved to replacements, {len(self.not_migrated)} not migrated)"
        )


def migrate(
    model: type[Any], *, ontology: str | None, old: str | None, new: str | None
) -> MigrationReport:
    """Move a registry's records from release `old` to release `new` in one transaction."""
    from lakeline.instance import current
    from sqlalchemy import delete, select, update

    from lakeline_bio._importing import joined, link_parents, source_row
    from lakeline_bio.models import Source

    entity = model.__name__
    target = model.public(ontology, new)
    with current().sessions.write() as session:
        stmt = select(Source).where(
            Source.entity == entity, Source.ontology == target.source.ontology
        )
        if old:
            bare = old.removeprefix("v")
            stmt = stmt.where(Source.version.in_([bare, f"v{bare}"]))  # with or without its v
        else:
            stmt = stmt.where(Source.in_use.is_(True))
        previous = session.scalars(stmt).first()
        if previous is None:
            which = f"release {old}" if old else "release in use"
            raise UnknownSource(f"{entity}: no records of {which} of {target.source.ontology}")
        report = MigrationReport(f"{previous.ontology}/{previous.version}", target._key)
        if previous.version == target.source.version:
            return report
        dest = source_row(session, target.source, use=False)
        table = model.__table__
        taken = set(
            session.scalars(select(table.c.ontology_id).where(table.c.source_id == dest.id))
        )
        records = session.execute(
            select(table.c.id, table.c.ontology_id).where(table.c.source_id == previous.id)
        ).all()
        frame = target.frame.set_index("ontology_id")
        moved_ids: list[int] = []
        goals: set[str] = set()
        for record_id, term in records:
            goal = term
            if term in frame.index and frame.at[term, "deprecated"]:
                goal = frame.at[term, "replaced_by"]
                if not isinstance(goal, str) or goal not in frame.index:
                    report.not_migrated[term] = f"deprecated in {target._key}, no replacement"
                    continue
            elif term not in frame.index:
                report.not_migrated[term] = f"not in {target._key}"
                continue
            if goal in taken:
                report.not_migrated[term] = f"{goal} is already a record of {target._key}"
                continue
            row = frame.loc[goal]
            session.execute(
                update(table)
                .where(table.c.id == record_id)
                .values(
                    ontology_id=goal,
                    name=row["name"],
                    synonyms=joined(row["synonyms"]),
                    definition=row["definition"] if isinstance(row["definition"], str) else None,
                    deprecated=bool(row["deprecated"]),
                    replaced_by=None,
                    source_id=dest.id,
                )
            )
            taken.add(goal)
            goals.add(goal)
            moved_ids.append(record_id)
            if goal == term:
                report.kept += 1
            else:
                report.moved[term] = goal
        edges = model.__parents__
        session.execute(
            delete(edges).where(edges.c.child_id.in_(moved_ids) | edges.c.parent_id.in_(moved_ids))
        )
        link_parents(session, model, dest.id, target.frame, goals)
        previous.in_use = not moved_ids and bool(records)
        dest.in_use = bool(moved_ids) or not records
    return report
