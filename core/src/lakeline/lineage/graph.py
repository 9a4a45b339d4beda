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

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from lakeline.errors import LakelineError
from lakeline.ids import suffix_index
from lakeline.lineage.reach import ARTIFACT, RUN, Reach, outputs_by_run
from lakeline.lineage.reach import chunks as _chunks
from lakeline.models import Artifact, Run, RunInput, Transform

if TYPE_CHECKING:
    from sqlalchemy import Row

Direction = Literal["upstream", "downstream", "both"]
EdgeKind = Literal["used", "produced", "parent"]
Format = Literal["svg", "mermaid", "json"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
FORMATS: tuple[str, ...] = get_args(Format)
PREFETCH_AFTER = 2  # steps walked level by level before an unlimited walk loads the rest at once
SUFFIX_FORMATS = {".svg": "svg", ".mmd": "mermaid", ".mermaid": "mermaid", ".json": "json"}


@dataclass(frozen=True, slots=True)
class ArtifactNode:
    """An artifact version in a lineage graph."""

    uid: str
    key: str | None
    suffix: str = ""
    size: int | None = None
    hash: str | None = None
    version: int = 1  # 1 = the first version (from the uid suffix)
    version_label: str | None = None
    is_latest: bool = True
    created_at: datetime | None = None
    type: ClassVar[str] = "artifact"

    @property
    def label(self) -> str:
        """The key, or the uid when the artifact has no key."""
        return self.key or self.uid


@dataclass(frozen=True, slots=True)
class RunNode:
    """A run in a lineage graph, with what a renderer needs of its transform."""

    uid: str
    status: str
    transform_key: str
    transform_kind: str
    transform_uid: str = ""
    transform_version: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_uid: str | None = None
    engine: str | None = None
    type: ClassVar[str] = "run"

    @property
    def label(self) -> str:
        return self.transform_key


Node = ArtifactNode | RunNode


@dataclass(frozen=True, slots=True)
class Edge:
    """An edge: `used` (artifact -> run), `produced` (run -> artifact), `parent` (run -> run)."""

    source: str
    target: str
    kind: EdgeKind
    role: str = ""


@dataclass
class LineageGraph:
    """Artifacts and runs around `root`, keyed by uid, with typed edges between them."""

    root: str
    direction: Direction = "upstream"
    depth: int | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, uid: object) -> bool:
        return uid in self.nodes

    def __repr__(self) -> str:
        return (
            f"LineageGraph(root={self.root!r}, direction={self.direction!r}, depth={self.depth}, "
            f"artifacts={len(self.artifacts)}, runs={len(self.runs)}, edges={len(self.edges)})"
        )

    @property
    def artifacts(self) -> list[ArtifactNode]:
        return [n for n in self.nodes.values() if isinstance(n, ArtifactNode)]

    @property
    def runs(self) -> list[RunNode]:
        return [n for n in self.nodes.values() if isinstance(n, RunNode)]

    def predecessors(self, uid: str) -> list[str]:
        """Uids with an edge into `uid`."""
        return [e.source for e in self.edges if e.target == uid]

    def successors(self, uid: str) -> list[str]:
        """Uids `uid` has an edge to."""
        return [e.target for e in self.edges if e.source == uid]

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: nodes (with `type`) and edges, identified by uid."""
        nodes = []
        for node in self.nodes.values():
            record: dict[str, Any] = {"uid": node.uid, "type": node.type}
            for name in node.__dataclass_fields__:
                if name != "uid":
                    value = getattr(node, name)
                    record[name] = value.isoformat() if isinstance(value, datetime) else value
            nodes.append(record)
        edges = [
            {"source": e.source, "target": e.target, "kind": e.kind, "role": e.role}
            for e in self.edges
        ]
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "nodes": nodes,
            "edges": edges,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineageGraph:
        """The graph `to_dict` (or `to_json`) described."""
        graph = cls(root=data["root"], direction=data["direction"], depth=data["depth"])
        for record in data["nodes"]:
            fields = dict(record)
            node_type = fields.pop("type")
            node_cls: type[Node] = ArtifactNode if node_type == "artifact" else RunNode
            for name in ("created_at", "started_at", "finished_at"):
                if isinstance(fields.get(name), str):
                    fields[name] = datetime.fromisoformat(fields[name])
            node = node_cls(**fields)
            graph.nodes[node.uid] = node
        graph.edges = [
            Edge(e["source"], e["target"], e["kind"], e.get("role", "")) for e in data["edges"]
        ]
        return graph

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_mermaid(self) -> str:
        """A Mermaid `flowchart LR`."""
        from lakeline.lineage.render import to_mermaid

        return to_mermaid(self)

    def to_svg(self) -> str:
        """A standalone SVG picture (layered layout, no Graphviz needed)."""
        from lakeline.lineage.render_svg import to_svg

        return to_svg(self)

    def render(self, format: Format | str = "svg") -> str:
        """The graph as text in `format`: svg, mermaid or json."""
        if format == "svg":
            return self.to_svg()
        if format == "mermaid":
            return self.to_mermaid() + "\n"
        if format == "json":
            return self.to_json() + "\n"
        raise LakelineError(f"unknown lineage format {format!r}; choose from {', '.join(FORMATS)}")

    def write(self, path: str | Path, format: Format | str | None = None) -> Path:
        """Write the graph to `path` (format from its suffix unless given); return the path."""
        from lakeline.lineage.render import write_text

        path = Path(path).expanduser()
        fmt = format or SUFFIX_FORMATS.get(path.suffix.lower(), "svg")
        return write_text(path, self.render(fmt))

    def _repr_svg_(self) -> str:
        """Jupyter shows a graph as its picture."""
        return self.to_svg()


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

    def load_runs(self, ids: Iterable[int]) -> None:
        missing = sorted({i for i in ids if i not in self.runs})
        for ident in [i for i in missing if (RUN, i) in self.rows]:
            self.add_run(self.rows[(RUN, ident)])
        missing = [i for i in missing if i not in self.runs]
        for chunk in _chunks(missing):
            for row in self.session.execute(_run_select().where(Run.id.in_(chunk))):
                self.add_run(row)

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

    def walk(self, start: Artifact | Run, upstream: bool, depth: int | None) -> None:
        """Breadth-first from `start`, one step (= one run) at a time, up to `depth` steps."""
        try:
            self._walk(start, upstream, depth)
        finally:
            self.reach = None

    def prefetch(self, start: Artifact | Run, upstream: bool) -> None:
        """Every node reachable from `start` and the edges among them, for an in-memory walk."""
        kind = RUN if isinstance(start, Run) else ARTIFACT
        artifacts = select(*_ARTIFACT_COLUMNS)
        self.reach = reach = Reach(self.session, kind, start.id, upstream, artifacts, _run_select())
        self.rows.update({(ARTIFACT, i): row for i, row in reach.artifact_rows.items()})
        self.rows.update({(RUN, i): row for i, row in reach.run_rows.items()})
        producers = {i: row[1] for i, row in reach.artifact_rows.items()}
        self.outputs = outputs_by_run(producers, set(producers))

    def _walk(self, start: Artifact | Run, upstream: bool, depth: int | None) -> None:
        seen_artifacts: set[int] = set()
        seen_runs: set[int] = set()
        frontier_artifacts: set[int] = set()
        frontier_runs: set[int] = set()
        if isinstance(start, Run):
            step = 1
            frontier_runs, seen_runs = {start.id}, {start.id}
            if depth == 0:
                return
        else:
            step = 0
            frontier_artifacts, seen_artifacts = {start.id}, {start.id}
        while frontier_artifacts or frontier_runs:
            if depth is None and self.reach is None and step >= PREFETCH_AFTER:
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
) -> LineageGraph:
    """The lineage graph of a saved artifact or run.

    `include_parents` adds each run's parent runs (up to the top) with `parent` edges.
    `collapse_workflows` shows a workflow's child runs as the top-level workflow run
    only; `used` edges of artifacts made inside the same workflow are dropped.
    """
    from lakeline.instance import current

    _validate(direction, depth)
    if not isinstance(node, (Artifact, Run)):
        raise TypeError(f"lineage() takes an Artifact or a Run, not {type(node).__name__}")
    if getattr(node, "id", None) is None:
        raise LakelineError(
            f"{type(node).__name__} is not saved: save it before asking its lineage"
        )
    with current().sessions.read() as session:
        walker = _Walker(session)
        if isinstance(node, Run):
            walker.load_runs([node.id])
            if node.id not in walker.runs:
                raise LakelineError(f"run {node.uid} is not in this instance")
            root = walker.runs[node.id].uid
        else:
            walker.load_artifacts([node.id])
            if node.id not in walker.artifacts:
                raise LakelineError(f"artifact {node.uid} is not in this instance")
            root = walker.artifacts[node.id].uid
        if direction in ("upstream", "both"):
            walker.walk(node, True, depth)
        if direction in ("downstream", "both"):
            walker.walk(node, False, depth)
        if include_parents or collapse_workflows:
            walker.ancestors()
    graph = LineageGraph(root=root, direction=cast(Direction, direction), depth=depth)
    if collapse_workflows:
        return _collapsed(graph, walker)
    graph.nodes = {n.uid: n for n in walker.found}
    graph.edges = list(walker.edges.values())
    if include_parents:
        for run_id, parent_id in walker.run_parent.items():
            if parent_id is not None:
                graph.edges.append(
                    Edge(walker.runs[run_id].uid, walker.runs[parent_id].uid, "parent")
                )
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


def upstream(node: Artifact | Run, depth: int | None = None, **options: bool) -> LineageGraph:
    """What `node` came from: producing runs and their inputs, `depth` steps back."""
    return lineage(node, "upstream", depth, **options)


def downstream(node: Artifact | Run, depth: int | None = None, **options: bool) -> LineageGraph:
    """What came of `node`: runs that used it and their outputs, `depth` steps on."""
    return lineage(node, "downstream", depth, **options)
