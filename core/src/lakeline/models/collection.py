"""Collection: an ordered, versioned set of artifacts (a dataset made of files)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import Base, KeyString, LongText, RecordMixin, Str, VersionedMixin

if TYPE_CHECKING:
    from lakeline.models.artifact import Artifact
    from lakeline.models.run import Run
    from lakeline.query import QuerySet


class Collection(RecordMixin, VersionedMixin, Base):
    """A versioned, ordered collection of artifacts."""

    __tablename__ = "collections"
    __table_args__ = (
        Index(
            "uq_collections_latest_stem",
            "stem",
            unique=True,
            sqlite_where=text("is_latest"),
            postgresql_where=text("is_latest"),
        ),
        Index(
            "uq_collections_latest_key",
            "key",
            unique=True,
            sqlite_where=text("is_latest AND key IS NOT NULL"),
            postgresql_where=text("is_latest AND key IS NOT NULL"),
        ),
        Index("ix_collections_key", "key"),
    )

    key: Mapped[str | None] = mapped_column(KeyString(1024))
    description: Mapped[str | None] = mapped_column(LongText)
    hash: Mapped[str | None] = mapped_column(Str(128), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)

    if TYPE_CHECKING:
        _members: list[Artifact]

    def __init__(
        self,
        artifacts: Sequence[Artifact],
        *,
        key: str | None = None,
        description: str | None = None,
        version: str | None = None,
        run: Run | None = None,
    ) -> None:
        from lakeline.collections_ops import check_members, collection_key
        from lakeline.values import validate_label

        super().__init__()
        self._members = check_members(artifacts)
        self.key = collection_key(key)
        self.description = description
        self.version = validate_label(version)
        if run is not None:
            self.run_id = run.id

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "key", "version", "is_latest")

    def save(self) -> Collection:
        """Record the collection and its ordered artifacts; the same members under the same
        key return the existing record, other members make a new version."""
        from lakeline.collections_ops import save_collection

        if self.id is not None:
            from lakeline.instance import current

            with current().sessions.write() as session:
                session.merge(self)
            return self
        return save_collection(self, self._members)

    @property
    def artifacts(self) -> list[Artifact]:
        """The member artifacts, in order."""
        from lakeline.collections_ops import collection_members

        return collection_members(self)

    @property
    def versions(self) -> QuerySet[Collection]:
        """All versions of this collection, oldest first."""
        from lakeline.query import QuerySet

        return QuerySet(Collection).filter(stem=self.stem, is_latest=None).order_by("uid")

    def delete(self) -> None:
        """Delete this version; its artifacts stay."""
        from lakeline.collections_ops import delete_collection

        delete_collection(self)


class CollectionArtifact(Base):
    """Membership of an artifact in a collection, at a position."""

    __tablename__ = "collection_artifacts"

    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
