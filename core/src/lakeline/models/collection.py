"""Collection: an ordered, versioned set of artifacts (a dataset made of files)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.db.partial import partial_index
from lakeline.models.base import (
    AUTOINCREMENT,
    Base,
    KeyString,
    LongText,
    RecordMixin,
    Str,
    VersionedMixin,
)

if TYPE_CHECKING:
    from lakeline.mapped import MappedCollection
    from lakeline.models.artifact import Artifact
    from lakeline.models.run import Run
    from lakeline.query import QuerySet


class Collection(RecordMixin, VersionedMixin, Base):
    """A versioned, ordered collection of artifacts."""

    __tablename__ = "collections"
    search_fields = ("key", "description")
    __table_args__ = (
        partial_index(
            "uq_collections_latest_stem",
            "stem",
            unique=True,
            where="is_latest",
        ),
        partial_index(
            "uq_collections_latest_key",
            "key",
            unique=True,
            where="is_latest AND key IS NOT NULL",
        ),
        Index("ix_collections_key", "key"),
        AUTOINCREMENT,
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
            from lakeline.db.session import merge_edits

            with self.instance.sessions.write() as session:
                merge_edits(session, self)
            return self
        return save_collection(self, self._members, self.instance)

    @property
    def artifacts(self) -> list[Artifact]:
        """The member artifacts, in order (of an unsaved collection: the ones it was given)."""
        from lakeline.collections_ops import collection_members

        if self.id is None:
            return list(getattr(self, "_members", []))
        return collection_members(self, self.instance)

    def cache(self, *, progress: bool = True, max_workers: int = 8) -> list[str]:
        """Local paths of every member, in order (remote ones downloaded in parallel, with a
        progress bar on stderr)."""
        from lakeline.collection_data import cache_members

        return cache_members(self.artifacts, progress=progress, max_workers=max_workers)

    def load(
        self, *, join: str = "outer", label: str = "artifact_key", index_unique: str | None = None
    ) -> Any:
        """The members as one AnnData or DataFrame (concatenated; `label` names each row's
        member; duplicate obs names are refused unless `index_unique` suffixes them)."""
        from lakeline.collection_data import load_members

        return load_members(self.artifacts, join=join, label=label, index_unique=index_unique)

    def open(self) -> Any:
        """Tabular members (parquet/csv) as one lazy pyarrow dataset, keyed by artifact."""
        from lakeline.tables import open_tables

        return open_tables(self.artifacts, self.instance)

    def mapped(
        self,
        obs_keys: Sequence[str] = (),
        *,
        join: str = "inner",
        encode_labels: bool = True,
        dtype: str = "float32",
    ) -> MappedCollection:
        """A map-style dataset over the AnnData members (h5ad/zarr), read row by row: for a
        PyTorch DataLoader (any `num_workers`) without loading the members."""
        from lakeline.collection_data import map_members

        return map_members(
            self.artifacts, obs_keys=obs_keys, join=join, encode_labels=encode_labels, dtype=dtype
        )

    @property
    def versions(self) -> QuerySet[Collection]:
        """All versions of this collection, oldest first."""
        from lakeline.query import QuerySet

        return (
            QuerySet(Collection, self.instance)
            .filter(stem=self.stem, is_latest=None)
            .order_by("uid")
        )

    def delete(self) -> None:
        """Delete this version; its artifacts stay."""
        from lakeline.collections_ops import delete_collection

        delete_collection(self, self.instance)


class CollectionArtifact(Base):
    """Membership of an artifact in a collection, at a position."""

    __tablename__ = "collection_artifacts"

    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
