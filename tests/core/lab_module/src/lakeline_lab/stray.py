"""Models of the `stray` test module: a table without the module's prefix."""

from __future__ import annotations

from lakeline.modules import Base, Record, Str
from sqlalchemy.orm import Mapped, mapped_column


class Stray(Record, Base):
    __tablename__ = "strays"

    name: Mapped[str] = mapped_column(Str(64))
