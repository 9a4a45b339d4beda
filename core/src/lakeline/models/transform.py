"""Transform: what runs (pipeline, script, notebook, function, rule, process, task, flow)."""

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index
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
    from lakeline.models.run import Run
    from lakeline.query import QuerySet

TRANSFORM_KINDS = (
    "pipeline",
    "script",
    "notebook",
    "function",
    "rule",
    "process",
    "task",
    "flow",
)


class Transform(RecordMixin, VersionedMixin, Base):
    """A versioned piece of code or workflow step; runs execute it."""

    __tablename__ = "transforms"
    search_fields = ("key", "description", "reference")
    __table_args__ = (
        partial_index(
            "uq_transforms_latest_stem",
            "stem",
            unique=True,
            where="is_latest",
        ),
        Index("ix_transforms_key", "key"),
        AUTOINCREMENT,
    )

    key: Mapped[str] = mapped_column(KeyString(1024))
    kind: Mapped[str] = mapped_column(Str(32))
    description: Mapped[str | None] = mapped_column(LongText)
    source_code: Mapped[str | None] = mapped_column(LongText)
    hash: Mapped[str | None] = mapped_column(Str(128), index=True)
    reference: Mapped[str | None] = mapped_column(Str(1024))
    reference_type: Mapped[str | None] = mapped_column(Str(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("transforms.id"), index=True)

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "key", "kind", "version")

    @property
    def runs(self) -> "QuerySet[Run]":
        """Runs of this transform version."""
        from lakeline.models.run import Run
        from lakeline.query import QuerySet

        return QuerySet(Run, self.instance).filter(transform_id=self.id)

    @property
    def versions(self) -> "QuerySet[Transform]":
        """All versions of this transform, oldest first."""
        from lakeline.query import QuerySet

        return (
            QuerySet(Transform, self.instance)
            .filter(stem=self.stem, is_latest=None)
            .order_by("uid")
        )
