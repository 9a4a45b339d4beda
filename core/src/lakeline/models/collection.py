"""Collection: an ordered, versioned set of artifacts (a dataset made of files)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import Base, KeyString, RecordMixin, VersionedMixin


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
    description: Mapped[str | None] = mapped_column(Text)
    hash: Mapped[str | None] = mapped_column(String(128), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "key", "version", "is_latest")


class CollectionArtifact(Base):
    """Membership of an artifact in a collection, at a position."""

    __tablename__ = "collection_artifacts"

    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
