"""Unlimited-depth lineage in three queries: a recursive CTE of every reachable node, joined
to load their rows and the used-by edges among them; the walk then runs in memory
(`graph._Walker`).

Walking level by level costs two round trips per step, which a long chain of runs makes
thousands. Edges between reachable nodes are exactly the walk's edges in either direction:
upstream, every input of a reachable run and the producer of a reachable artifact are
reachable; downstream, every user of a reachable artifact and every output of a reachable run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, and_, case, cast, literal, or_, select

from lakeline.models import Artifact, Run, RunInput

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

ARTIFACT, RUN = 0, 1


def reachable(kind: int, start: int, upstream: bool) -> Any:
    """A recursive CTE `reach(kind, id)` of every node reachable from the start node (kind 0:
    artifact, 1: run). UNION (not UNION ALL) drops rows already found, so cycles end."""
    artifacts, inputs = Artifact.__table__, RunInput.__table__
    seed = select(
        cast(literal(kind), Integer).label("kind"), cast(literal(start), Integer).label("id")
    ).cte("reach", recursive=True)
    r = seed.alias("r")
    from_artifact, from_run = r.c.kind == ARTIFACT, r.c.kind == RUN
    if upstream:  # an artifact's producer; a run's inputs
        joined = r.outerjoin(artifacts, and_(from_artifact, artifacts.c.id == r.c.id)).outerjoin(
            inputs, and_(from_run, inputs.c.run_id == r.c.id)
        )
        reached_run, reached_artifact = artifacts.c.run_id, inputs.c.artifact_id
    else:  # an artifact's users; a run's outputs
        joined = r.outerjoin(inputs, and_(from_artifact, inputs.c.artifact_id == r.c.id)).outerjoin(
            artifacts, and_(from_run, artifacts.c.run_id == r.c.id)
        )
        reached_run, reached_artifact = inputs.c.run_id, artifacts.c.id
    step = (
        select(
            (1 - r.c.kind).label("kind"),
            cast(case((from_artifact, reached_run), else_=reached_artifact), Integer).label("id"),
        )
        .select_from(joined)
        .where(
            or_(
                and_(from_artifact, reached_run.is_not(None)),
                and_(from_run, reached_artifact.is_not(None)),
            )
        )
    )
    return seed.union(step)


class Reach:
    """Every node reachable from a start node in one direction, its rows, and the used-by
    edges among them, ordered as the level-by-level walk reads them. Three statements, each
    with the recursive CTE: artifact rows, run rows, edges."""

    def __init__(
        self,
        session: Session,
        kind: int,
        start: int,
        upstream: bool,
        artifact_select: Select[Any],
        run_select: Select[Any],
    ) -> None:
        reach = reachable(kind, start, upstream)
        artifact_ids = select(reach.c.id).where(reach.c.kind == ARTIFACT)
        run_ids = select(reach.c.id).where(reach.c.kind == RUN)
        self.artifact_rows = {
            row[0]: row
            for row in session.execute(artifact_select.where(Artifact.id.in_(artifact_ids)))
        }
        self.run_rows = {
            row[0]: row for row in session.execute(run_select.where(Run.id.in_(run_ids)))
        }
        self.artifacts, self.runs = set(self.artifact_rows), set(self.run_rows)
        # upstream: inputs per run; downstream: users per artifact
        self.inputs: dict[int, list[tuple[int, str]]] = defaultdict(list)
        self.users: dict[int, list[tuple[int, str]]] = defaultdict(list)
        by, other = (RunInput.run_id, RunInput.artifact_id)
        if not upstream:
            by, other = other, by
        stmt = (
            select(RunInput.artifact_id, RunInput.run_id, RunInput.role)
            .where(RunInput.run_id.in_(run_ids), RunInput.artifact_id.in_(artifact_ids))
            .order_by(by, other, RunInput.id)
        )
        for artifact_id, run_id, role in session.execute(stmt):
            if upstream:
                self.inputs[run_id].append((artifact_id, role))
            else:
                self.users[artifact_id].append((run_id, role))


def chunks(ids: Iterable[int], size: int = 500) -> Iterator[list[int]]:
    """Sorted ids in chunks of `size` (for `IN (...)`)."""
    ordered = sorted(set(ids))
    for begin in range(0, len(ordered), size):
        yield ordered[begin : begin + size]


def outputs_by_run(artifact_run: dict[int, int | None], artifacts: set[int]) -> dict[int, Any]:
    """The reachable artifacts of each producing run, by artifact id."""
    found: dict[int, list[int]] = defaultdict(list)
    for artifact_id in sorted(artifacts):
        run_id = artifact_run.get(artifact_id)
        if run_id is not None:
            found[run_id].append(artifact_id)
    return found
