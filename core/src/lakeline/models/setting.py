"""Setting: instance-wide key/value facts stored in the database (name, uid, default storage)."""

from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import Base, LongText, Str


class Setting(Base):
    """One instance-wide setting."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(Str(128), primary_key=True)
    value: Mapped[str] = mapped_column(LongText)
