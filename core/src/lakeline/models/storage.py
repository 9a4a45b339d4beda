"""Storage: a root location (local folder, S3 prefix, ...) where artifacts' bytes live."""

from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import AUTOINCREMENT, Base, RecordMixin, Str


class Storage(RecordMixin, Base):
    """A storage root, e.g. `/data/lake` or `s3://bucket/prefix`."""

    __tablename__ = "storages"
    __table_args__ = AUTOINCREMENT
    search_fields = ("root",)
    uid_length = 12

    root: Mapped[str] = mapped_column(Str(1024), unique=True)
    type: Mapped[str] = mapped_column(Str(32))
    region: Mapped[str | None] = mapped_column(Str(64))
    instance_uid: Mapped[str | None] = mapped_column(Str(16))

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "root", "type", "region")
