"""What annotates an artifact: typed feature values, label links and schema links.

Values live in one row per (artifact, feature, element) with one typed column filled; each
column has a partial index on (feature_id, value, artifact_id), so "artifacts whose feature is
> 3" reads an index range, never a JSON document. Every row records the run it was added in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Double, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.db.partial import partial_index
from lakeline.models.base import Base, KeyString, Str, utcnow
from lakeline.models.feature import Feature  # noqa: F401 - mapped first: the keys' targets
from lakeline.models.schema import Schema  # noqa: F401
from lakeline.models.ulabel import ULabel  # noqa: F401

_VALUE_COLUMNS = ("value_int", "value_float", "value_str", "value_bool", "value_datetime")


def _value_index(column: str) -> Index:
    return partial_index(
        f"ix_feature_values_{column}",
        "feature_id",
        column,
        "artifact_id",
        where=f"{column} IS NOT NULL",
    )


class FeatureValue(Base):
    """A value of a feature on an artifact (a list feature has one row per element)."""

    __tablename__ = "feature_values"
    __table_args__ = (
        Index("ix_feature_values_artifact_id_feature_id", "artifact_id", "feature_id"),
        *(_value_index(c) for c in _VALUE_COLUMNS),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    value_int: Mapped[int | None] = mapped_column(BigInteger)
    value_float: Mapped[float | None] = mapped_column(Double)
    value_str: Mapped[str | None] = mapped_column(KeyString(512))
    value_bool: Mapped[bool | None] = mapped_column()
    value_datetime: Mapped[datetime | None] = mapped_column()
    value_json: Mapped[dict[str, Any] | None] = mapped_column()
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArtifactULabel(Base):
    """A label on an artifact; with `feature_id`, the label is a value of that feature."""

    __tablename__ = "artifact_ulabels"
    __table_args__ = (
        partial_index(
            "uq_artifact_ulabels_feature",
            "artifact_id",
            "ulabel_id",
            "feature_id",
            unique=True,
            where="feature_id IS NOT NULL",
        ),
        partial_index(
            "uq_artifact_ulabels_plain",
            "artifact_id",
            "ulabel_id",
            unique=True,
            where="feature_id IS NULL",
        ),
        Index("ix_artifact_ulabels_ulabel_id", "ulabel_id", "feature_id", "artifact_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    ulabel_id: Mapped[int] = mapped_column(ForeignKey("ulabels.id", ondelete="CASCADE"))
    feature_id: Mapped[int | None] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArtifactSchema(Base):
    """The schema an artifact (or one slot of a composite artifact) was validated against."""

    __tablename__ = "artifact_schemas"

    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[str] = mapped_column(Str(64), primary_key=True, default="")
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
