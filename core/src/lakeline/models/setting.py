"""Setting: instance-wide key/value facts stored in the database (name, uid, default storage)."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import Base


class Setting(Base):
    """One instance-wide setting."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
