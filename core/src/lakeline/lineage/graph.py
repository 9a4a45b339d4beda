"""Lineage graphs: what an artifact or run came from (upstream) and what came of it (downstream).

Nodes are artifacts and runs; edges are `used` (artifact -> run: the run read it),
`produced` (run -> artifact) and, on request, `parent` (child run -> its workflow run).

**Depth** counts steps, and a step is one run: `depth=1` upstream of an artifact is the
artifact, the run that produced it and that run's inputs; `depth=2` adds the runs that
produced those inputs and their inputs, and so on. Starting from a run, that run is the first
step: `depth=1` is the run and its inputs (upstream) or outputs (downstream). A run in a graph
therefore always comes with all its inputs (upstream) or outputs (downstream). `depth=0` is the
start node alone; `None` has no limit. Traversal keeps visited sets, so cycles terminate.

Queries are batched: one query per BFS level and edge type, `IN (...)` chunked at 500 ids;
without a depth limit, a walk still going after two steps loads every reachable node with one
recursive query (`reach.py`) and goes on in memory. Every version of an artifact is a node
of its own (versions are not merged).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from lakeline.errors import LakelineError
from lakeline.ids import suffix_index
from lakeline.lineage.graph_types import (
    DIRECTIONS,
    FORMATS,
    HIDDEN,
    ArtifactNode,
    Direction,
    Edge,
    EdgeKind,
    Format,
    LineageGraph,
    Node,
    RunNode,
)
from lakeline.lineage.reach import ARTIFACT, RUN, Reach, outputs_by_run
from lakeline.lineage.reach import chunks as _chunks
from lakeline.models import Artifact, Run, RunInput, Transform

if TYPE_CHECKING:
    from sqlalchemy import Row

    from lakeline.instance import Instance

__all__ = [
    "DIRECTIONS",
    "FORMATS",
    "ArtifactNode",
    "Direction",
    "Edge",
    "Format",
    "LineageGraph",
    "Node",
    "RunNode",
    "downstream",
    "lineage",
    "upstream",
]

PREFETCH_AFTER = 2  # steps walked level by level before an unlimited walk loads the rest at once


# -- traversal ------------------------------------------------------------------------------------

_Parent = aliased(Run)
_ARTIFACT_COLUMNS = (
    Artifact.id,
    Artifact.run_id,
    Artifact.uid,
    Artifact.key,
    Artifact.suffix,
    Artifact.size,
    Artifact.hash,
    Artifact.version,
    Artifact.is_latest,
    Artifact.created_at,
)
_RUN_COLUMNS = (
    Run.id,
    Run.parent_id,
    Run.uid,
    Run.status,
    Transform.key,
    Transform.kind,
    Transform.uid,
    Transform.version,
    Run.started_at,
    Run.finished_at,
    _Parent.uid,
    Run.engine,
)


def _run_select() -> Any:
    return (
        select(*_RUN_COLUMNS)
        .join(Transform, Transform.id == Run.transform_id)
        .outerjoin(_Parent, _Parent.id == Run.parent_id)
    )


class _Walker:
    """Collects nodes and edges of one graph; all queries go through one read session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.artifacts: dict[int, ArtifactNode] = {}
        self.artifact_run: dict[int, int | None] = {}
        self.runs: dict[int, RunNode] = {}
        self.run_parent: dict[int, int | None] = {}
        self.edges: dict[tuple[str, str, str], Edge] = {}
        self.found: list[Node] = []  # nodes in the order the walk found them (root first)
        self.reach: Reach | None = None  # an unlimited walk: reachable nodes and edges, loaded
        self.rows: dict[tuple[int, int], Row[Any]] = {}  # (kind, id) -> prefetched node row
        self.outputs: dict[int, list[int]] = {}

    def add_artifact(self, row: Row[Any]) -> int:
        ident: int = row[0]
        if ident not in self.artifacts:
            self.artifact_run[ident] = row[1]
            uid = row[2]
            self.artifacts[ident] = ArtifactNode(
                uid=uid,
                key=row[3],
                suffix=row[4] or "",
                size=row[5],
                hash=row[6],
                version=suffix_index(uid[-4:]) + 1 if len(uid) == 16 else 1,
                version_label=row[7],
                is_latest=bool(row[8]),
                created_at=row[9],
            )
            self.found.append(self.artifacts[ident])
        return ident

    def add_run(self, row: Row[Any]) -> int:
        ident: int = row[0]
        if ident not in self.runs:
            self.run_parent[ident] = row[1]
            self.runs[ident] = RunNode(
                uid=row[2],
                status=row[3],
                transform_key=row[4],
                transform_kind=row[5],
                transform_uid=row[6],
                transform_version=row[7],
                started_at=row[8],
                finished_at=row[9],
                parent_uid=row[10],
                engine=row[11],
            )
            self.found.append(self.runs[ident])
        return ident

    def add_edge(self, source: str, target: str, kind: EdgeKind, role: str = "") -> None:
        self.edges.setdefault((source, target, kind), Edge(source, target, kind, role or ""))

    def load_artifacts(self, ids: Iterable[int]) -> None:
        missing = [i for i in ids if i not in self.artifacts]
        for ident in [i for i in missing if (ARTIFACT, i) in self.rows]:
            self.add_artifact(self.rows[(ARTIFACT, ident)])
        missing = [i for i in missing if i not in self.artifacts]
        for chunk in _chunks(missing):
            for row in self.session.execute(
                select(*_ARTIFACT_COLUMNS).where(Artifact.id.in_(chunk))
            ):
                self.add_artifact(row)
        for ident in missing:
            if ident not in self.artifacts:  # another space's (row-level security): a stand-in
                self.artifact_run[ident] = None
                self.artifacts[ident] = ArtifactNode(uid=f"hidden-artifact-{ident}", key=HIDDEN)
                self.found.append(self.artifacts[ident])

    def load_runs(self, ids: Iterable[int]) -> None:
        missing = sorted({i for i in ids if i not in self.runs})
        for ident in [i for i in missing if (RUN, i) in self.rows]:
            self.add_run(self.rows[(RUN, ident)])
        missing = [i for i in missing if i not in self.runs]
        for chunk in _chunks(missing):
            for row in self.session.execute(_run_select().where(Run.id.in_(chunk))):
                self.add_run(row)
        for ident in missing:
            if ident not in self.runs:  # another space's (row-level security): a stand-in
                self.run_parent[ident] = None
                self.runs[ident] = RunNode(f"hidden-run-{ident}", "hidden", HIDDEN, "hidden")
                self.found.append(self.runs[ident])

    # one level of the walk: artifacts -> runs (a new step), runs -> artifacts (same step)

    def runs_of(self, artifact_ids: set[int], upstream: bool) -> set[int]:
        """Runs that produced (upstream) or used (downstream) these artifacts."""
        found: set[int] = set()
        if upstream:
            producers = {a: r for a in artifact_ids if (r := self.artifact_run[a]) is not None}
            self.load_runs(producers.values())
            for artifact_id, run_id in sorted(producers.items()):
                self.add_edge(self.runs[run_id].uid, self.artifacts[artifact_id].uid, "produced")
                found.add(run_id)
            return found
        if self.reach is not None:
            for artifact_id in sorted(artifact_ids):
                for run_id, role in self.reach.users.get(artifact_id, ()):
                    self.load_runs([run_id])
                    a_uid = self.artifacts[artifact_id].uid
                    self.add_edge(a_uid, self.runs[run_id].uid, "used", role)
                    found.add(run_id)
            return found
        for chunk in _chunks(artifact_ids):
            query = (
                _run_select()
                .add_columns(RunInput.artifact_id, RunInput.role)
                .join(RunInput, RunInput.run_id == Run.id)
                .where(RunInput.artifact_id.in_(chunk))
                .order_by(RunInput.artifact_id, Run.id)
            )
            for row in self.session.execute(query):
                run_id = self.add_run(row)
                artifact_id, role = row[-2], row[-1]
                self.add_edge(self.artifacts[artifact_id].uid, self.runs[run_id].uid, "used", role)
                found.add(run_id)
        return found

    def artifacts_of(self, run_ids: set[int], upstream: bool) -> set[int]:
        """Artifacts these runs used (upstream) or produced (downstream)."""
        found: set[int] = set()
        if self.reach is not None:
            for run_id in sorted(run_ids):
                r_uid = self.runs[run_id].uid
                if upstream:
                    for artifact_id, role in self.reach.inputs.get(run_id, ()):
                        self.load_artifacts([artifact_id])
                        self.add_edge(self.artifacts[artifact_id].uid, r_uid, "used", role)
                        found.add(artifact_id)
                else:
                    for artifact_id in self.outputs.get(run_id, ()):
                        self.load_artifacts([artifact_id])
                        self.add_edge(r_uid, self.artifacts[artifact_id].uid, "produced")
                        found.add(artifact_id)
            return found
        for chunk in _chunks(run_ids):
            if upstream:  # row: artifact columns, then the using run and its role
                query = (
                    select(*_ARTIFACT_COLUMNS, RunInput.run_id, RunInput.role)
                    .join(RunInput, RunInput.artifact_id == Artifact.id)
                    .where(RunInput.run_id.in_(chunk))
                    .order_by(RunInput.run_id, Artifact.id)
                )
            else:  # row[1] is the producing run
                query = (
                    select(*_ARTIFACT_COLUMNS)
                    .where(Artifact.run_id.in_(chunk))
                    .order_by(Artifact.run_id, Artifact.id)
                )
            for row in self.session.execute(query):
                artifact_id = self.add_artifact(row)
                a_uid = self.artifacts[artifact_id].uid
                if upstream:
                    self.add_edge(a_uid, self.runs[row[10]].uid, "used", row[11])
                else:
                    self.add_edge(self.runs[row[1]].uid, a_uid, "produced")
                found.add(artifact_id)
        return found

    def walk(
        self,
        start: Artifact | Run,
        upstream: bool,
        depth: int | None,
        inside: frozenset[int] = frozenset(),
    ) -> None:
        """Breadth-first from `start`, one step (= one run) at a time, up to `depth` steps.

        `inside`: the runs inside a workflow run `start` (its steps): the walk starts from
        all of them, and depth counts steps beyond them."""
        try:
            self._walk(start, upstream, depth, inside)
        finally:
            self.reach = None

    def descendants(self, run_id: int) -> set[int]:
        """The runs under `run_id` (children, theirs, ...), one query per level."""
        found: set[int] = set()
        level = {run_id}
        while level:
            children: set[int] = set()
            for chunk in _chunks(level):
                stmt = select(Run.id).where(Run.parent_id.in_(chunk))
                children.update(self.session.scalars(stmt))
            level = children - found - {run_id}
            found |= level
        return found

    def interior(self, inside: frozenset[int]) -> None:
        """A workflow run's own graph: its steps (with `parent` edges to the run that
        started each), and every file they used and made."""
        self.load_runs(inside)
        for child in sorted(inside):
            parent = self.run_parent.get(child)
            if parent is not None and parent in self.runs:
                self.add_edge(self.runs[child].uid, self.runs[parent].uid, "parent")
        self.artifacts_of(set(inside), True)
        self.artifacts_of(set(inside), False)

    def prefetch(self, start: Artifact | Run, upstream: bool) -> None:
        """Every node reachable from `start` and the edges among them, for an in-memory walk."""
        kind = RUN if isinstance(start, Run) else ARTIFACT
        artifacts = select(*_ARTIFACT_COLUMNS)
        self.reach = reach = Reach(self.session, kind, start.id, upstream, artifacts, _run_select())
        self.rows.update({(ARTIFACT, i): row for i, row in reach.artifact_rows.items()})
        self.rows.update({(RUN, i): row for i, row in reach.run_rows.items()})
        producers = {i: row[1] for i, row in reach.artifact_rows.items()}
        self.outputs = outputs_by_run(producers, set(producers))

    def _walk(
        self, start: Artifact | Run, upstream: bool, depth: int | None, inside: frozenset[int]
    ) -> None:
        seen_artifacts: set[int] = set()
        seen_runs: set[int] = set()
        frontier_artifacts: set[int] = set()
        frontier_runs: set[int] = set()
        if isinstance(start, Run):
            step = 1
            frontier_runs, seen_runs = {start.id, *inside}, {start.id, *inside}
            if depth == 0:
                return
        else:
            step = 0
            frontier_artifacts, seen_artifacts = {start.id}, {start.id}
        while frontier_artifacts or frontier_runs:
            if depth is None and self.reach is None and step >= PREFETCH_AFTER and not inside:
                self.prefetch(start, upstream)  # a deep graph: the rest in a few queries
            if frontier_artifacts:
                if depth is not None and step >= depth:
                    break
                step += 1
                found = self.runs_of(frontier_artifacts, upstream)
                frontier_runs, frontier_artifacts = found - seen_runs, set()
                seen_runs |= frontier_runs
            else:
                found = self.artifacts_of(frontier_runs, upstream)
                frontier_artifacts, frontier_runs = found - seen_artifacts, set()
                seen_artifacts |= frontier_artifacts

    def ancestors(self) -> None:
        """Load the parent runs (and theirs) of every run collected."""
        while True:
            missing = {p for p in self.run_parent.values() if p is not None and p not in self.runs}
            if not missing:
                return
            self.load_runs(missing)

    def top_of(self, run_id: int) -> int:
        seen = {run_id}
        while (parent := self.run_parent.get(run_id)) is not None and parent not in seen:
            seen.add(parent)
            run_id = parent
        return run_id


def _validate(direction: str, depth: int | None) -> None:
    if direction not in DIRECTIONS:
        raise LakelineError(f"direction must be one of {', '.join(DIRECTIONS)}: {direction!r}")
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise LakelineError(f"depth must be a whole number >= 0, or None for no limit: {depth!r}")


def lineage(
    node: Artifact | Run,
    direction: Direction | str = "upstream",
    depth: int | None = None,
    *,
    include_parents: bool = False,
    collapse_workflows: bool = False,
    instance: Instance | None = None,
) -> LineageGraph:
    """The lineage graph of a saved artifact or run, walked in `instance` (default: the one
    the record came from).

    `include_parents` adds each run's parent runs (up to the top) with `parent` edges.
    `collapse_workflows` shows a workflow's child runs as the top-level workflow run
    only; `used` edges of artifacts made inside the same workflow are dropped.
    """
    _validate(direction, depth)
    if not isinstance(node, (Artifact, Run)):
        raise TypeError(f"lineage() takes an Artifact or a Run, not {type(node).__name__}")
    if getattr(node, "id", None) is None:
        raise LakelineError(
            f"{type(node).__name__} is not saved: save it before asking its lineage"
        )
    instance = instance or node.instance
    with instance.sessions.read() as session:
        walker = _Walker(session)
        if isinstance(node, Run):
            walker.load_runs([node.id])
            if node.id not in walker.runs:
                raise LakelineError(f"run {node.uid} is not in instance {instance.name!r}")
            root = walker.runs[node.id].uid
        else:
            walker.load_artifacts([node.id])
            if node.id not in walker.artifacts:
                raise LakelineError(f"artifact {node.uid} is not in instance {instance.name!r}")
            root = walker.artifacts[node.id].uid
        inside: frozenset[int] = frozenset()
        if isinstance(node, Run):  # a workflow run: its steps and their files, then beyond
            inside = frozenset(walker.descendants(node.id))
            if inside:
                walker.interior(inside)
        if direction in ("upstream", "both"):
            walker.walk(node, True, depth, inside)
        if direction in ("downstream", "both"):
            walker.walk(node, False, depth, inside)
        if include_parents or collapse_workflows:
            walker.ancestors()
    graph = LineageGraph(root=root, direction=cast(Direction, direction), depth=depth)
    if collapse_workflows:
        return _collapsed(graph, walker)
    graph.nodes = {n.uid: n for n in walker.found}
    graph.edges = list(walker.edges.values())
    if include_parents:
        drawn = {(e.source, e.target) for e in graph.edges if e.kind == "parent"}
        for run_id, parent_id in walker.run_parent.items():
            if parent_id is None:
                continue
            uids = (walker.runs[run_id].uid, walker.runs[parent_id].uid)
            if uids not in drawn:
                graph.edges.append(Edge(*uids, "parent"))
    return graph


def _collapsed(graph: LineageGraph, walker: _Walker) -> LineageGraph:
    """Replace every run by its top-level ancestor (the workflow run)."""
    top = {walker.runs[i].uid: walker.runs[walker.top_of(i)] for i in walker.runs}
    graph.root = top[graph.root].uid if graph.root in top else graph.root
    kept = {top[n.uid].uid if n.uid in top else n.uid for n in walker.found}
    graph.nodes = {n.uid: n for n in walker.found if n.uid in kept}
    edges: dict[tuple[str, str, str], Edge] = {}
    for edge in walker.edges.values():
        source = top[edge.source].uid if edge.source in top else edge.source
        target = top[edge.target].uid if edge.target in top else edge.target
        edges.setdefault((source, target, edge.kind), Edge(source, target, edge.kind, edge.role))
    produced = {(e.target, e.source) for e in edges.values() if e.kind == "produced"}
    graph.edges = [
        e for e in edges.values() if e.kind != "used" or (e.source, e.target) not in produced
    ]
    return graph


def upstream(node: Artifact | Run, depth: int | None = None, **options: Any) -> LineageGraph:
    """What `node` came from: producing runs and their inputs, `depth` steps back."""
    return lineage(node, "upstream", depth, **options)


def downstream(node: Artifact | Run, depth: int | None = None, **options: Any) -> LineageGraph:
    """What came of `node`: runs that used it and their outputs, `depth` steps on."""
    return lineage(node, "downstream", depth, **options)
