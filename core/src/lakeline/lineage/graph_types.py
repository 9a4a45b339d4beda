"""The values of a lineage graph: artifact and run nodes, edges, and the graph with its
renderings (`lineage.graph` builds them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from lakeline.errors import LakelineError

Direction = Literal["upstream", "downstream", "both"]
EdgeKind = Literal["used", "produced", "parent"]
Format = Literal["svg", "mermaid", "json"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
FORMATS: tuple[str, ...] = get_args(Format)
HIDDEN = "not visible to you"  # the label of a node in a space the reader is not a member of
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
