"""Run: one execution of a transform, with its status history and parameters."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.db.partial import partial_index
from lakeline.models.base import AUTOINCREMENT, Base, LongText, RecordMixin, Str

if TYPE_CHECKING:
    from lakeline.lineage.graph import LineageGraph
    from lakeline.models.artifact import Artifact
    from lakeline.models.transform import Transform
    from lakeline.query import QuerySet

RUN_STATUSES = ("scheduled", "started", "completed", "errored", "aborted", "cached")
ENGINE_REF_LENGTH = 512  # runs.engine_ref


class Run(RecordMixin, Base):
    """An execution of a transform; artifacts it produced point to it, those it used link to it."""

    __tablename__ = "runs"
    search_fields = ("engine", "engine_ref", "host", "error")
    __table_args__ = (
        Index("uq_runs_engine_engine_ref", "engine", "engine_ref", unique=True),
        Index("ix_runs_transform_id_started_at", "transform_id", "started_at"),
        # the runs still going (or left `started` by a process that died): small
        partial_index(
            "ix_runs_started",
            "host",
            where="status = 'started'",
        ),
        # what deleting an artifact (report, environment) or a run (cached_from) looks up (0016)
        *(
            partial_index(
                f"ix_runs_{column}",
                column,
                where=f"{column} IS NOT NULL",
            )
            for column in ("report_id", "environment_id", "cached_from_id")
        ),
        AUTOINCREMENT,
    )

    transform_id: Mapped[int] = mapped_column(ForeignKey("transforms.id"))
    status: Mapped[str] = mapped_column(Str(16), default="scheduled")
    status_log: Mapped[list[dict[str, Any]] | None] = mapped_column(default=None)
    scheduled_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    params: Mapped[dict[str, Any] | None] = mapped_column()
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    cached_from_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    engine: Mapped[str | None] = mapped_column(Str(64))
    engine_ref: Mapped[str | None] = mapped_column(Str(ENGINE_REF_LENGTH))
    environment_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifacts.id", use_alter=True, ondelete="SET NULL")
    )
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifacts.id", use_alter=True, ondelete="SET NULL")
    )
    host: Mapped[str | None] = mapped_column(Str(255))
    # the process that runs it (track(), @tracked): with the host, tells a dead run from a live one
    pid: Mapped[int | None] = mapped_column()
    process_started_at: Mapped[datetime | None] = mapped_column()
    exit_code: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(LongText)

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "status", "engine", "engine_ref", "started_at")

    @property
    def stale(self) -> bool:
        """True when the run is still `started` but the process that ran it is gone.

        Known for runs that recorded their process (`track()`, `@tracked`) on this host;
        False when that cannot be told from here.
        """
        from lakeline.lineage.liveness import process_gone

        return self.status == "started" and process_gone(self) is True

    @property
    def transform(self) -> "Transform":
        """What this run executed."""
        from lakeline.models.transform import Transform
        from lakeline.query import get_by_id

        return get_by_id(Transform, self.transform_id, self.instance)

    @property
    def parent(self) -> "Run | None":
        """The run this one ran inside (a workflow run for a task), if any."""
        from lakeline.query import get_by_id

        return None if self.parent_id is None else get_by_id(Run, self.parent_id, self.instance)

    @property
    def children(self) -> "QuerySet[Run]":
        """Runs that ran inside this one."""
        from lakeline.query import QuerySet

        return QuerySet(Run, self.instance).filter(parent_id=self.id)

    @property
    def inputs(self) -> "QuerySet[Artifact]":
        """Artifacts this run used (every version it used, not only the latest)."""
        from sqlalchemy import select

        from lakeline.models.artifact import Artifact
        from lakeline.models.run_input import RunInput
        from lakeline.query import QuerySet

        used = select(RunInput.artifact_id).where(RunInput.run_id == self.id)
        return QuerySet(Artifact, self.instance).filter(Artifact.id.in_(used), is_latest=None)

    @property
    def outputs(self) -> "QuerySet[Artifact]":
        """Artifacts this run produced."""
        from lakeline.models.artifact import Artifact
        from lakeline.query import QuerySet

        return QuerySet(Artifact, self.instance).filter(run_id=self.id, is_latest=None)

    @property
    def annotated(self) -> "QuerySet[Artifact]":
        """Artifacts this run gave feature values or labels (every version annotated)."""
        from sqlalchemy import select, union

        from lakeline.models.annotation import ArtifactULabel, FeatureValue
        from lakeline.models.artifact import Artifact
        from lakeline.query import QuerySet

        ids = union(
            select(FeatureValue.artifact_id).where(FeatureValue.run_id == self.id),
            select(ArtifactULabel.artifact_id).where(ArtifactULabel.run_id == self.id),
        )
        return QuerySet(Artifact, self.instance).filter(Artifact.id.in_(ids), is_latest=None)

    def lineage(
        self,
        direction: str = "upstream",
        depth: int | None = None,
        *,
        include_parents: bool = False,
        collapse_workflows: bool = False,
    ) -> "LineageGraph":
        """The lineage graph around this run (`depth` counts runs; this run is step 1)."""
        from lakeline.lineage.graph import lineage

        return lineage(
            self,
            direction,
            depth,
            include_parents=include_parents,
            collapse_workflows=collapse_workflows,
        )
