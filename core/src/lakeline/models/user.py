"""User: who created a record."""

from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import AUTOINCREMENT, Base, RecordMixin, Str


class User(RecordMixin, Base):
    """A person (or service account) that creates records."""

    __tablename__ = "users"
    __table_args__ = AUTOINCREMENT
    search_fields = ("handle", "name")
    uid_length = 8

    handle: Mapped[str] = mapped_column(Str(255), unique=True)
    name: Mapped[str | None] = mapped_column(Str(255))

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "handle", "name")
