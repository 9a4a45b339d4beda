"""The lab's registries: biosamples (they label artifacts) and experiments on them."""

from __future__ import annotations

from lakeline.modules import Base, CanValidate, LabelRecord, LongText, Record, Str
from sqlalchemy import Column, ForeignKey, Integer, Table
from sqlalchemy.orm import Mapped, mapped_column


class Biosample(LabelRecord, CanValidate, Base):
    """A sample taken in the lab; labels artifacts, validates names and synonyms."""

    __tablename__ = "lab_biosamples"

    name: Mapped[str] = mapped_column(Str(255), unique=True)
    tissue: Mapped[str | None] = mapped_column(Str(128))
    description: Mapped[str | None] = mapped_column(LongText)
    synonyms: Mapped[str | None] = mapped_column(LongText)
    abbr: Mapped[str | None] = mapped_column(Str(64))


class Experiment(Record, Base):
    """An experiment on a biosample."""

    __tablename__ = "lab_experiments"

    name: Mapped[str] = mapped_column(Str(255), index=True)
    protocol: Mapped[str | None] = mapped_column(Str(128))
    biosample_id: Mapped[int | None] = mapped_column(ForeignKey("lab_biosamples.id"), index=True)


# a plain table (not a registry): which biosample was taken from which
biosample_parents = Table(
    "lab_biosample_parents",
    Base.metadata,
    Column(
        "child_id", Integer, ForeignKey("lab_biosamples.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "parent_id", Integer, ForeignKey("lab_biosamples.id", ondelete="CASCADE"), primary_key=True
    ),
)
