"""Models of the `labbad` test module (its second migration fails half-way)."""

from __future__ import annotations

from lakeline.modules import Base, Record, Str
from sqlalchemy.orm import Mapped, mapped_column


class Thing(Record, Base):
    __tablename__ = "labbad_things"

    name: Mapped[str] = mapped_column(Str(64))
