"""RunInput: an artifact a run used, with the role it played and when."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import Base, Str, utcnow


class RunInput(Base):
    """A used-by edge: `run` read `artifact` (as `role`) at `used_at`."""

    __tablename__ = "run_inputs"
    __table_args__ = (UniqueConstraint("run_id", "artifact_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(Str(255), default="")
    used_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"RunInput(run_id={self.run_id}, artifact_id={self.artifact_id}, role={self.role!r})"
