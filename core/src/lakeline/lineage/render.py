"""Renderings of a lineage graph: Mermaid, the shared look (status colours, labels), and
`view()` (a file, or an inline SVG in Jupyter).

SVG lives in `render_svg.py` (layout in `layout.py`); JSON is `LineageGraph.to_json()`.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.lineage.graph import LineageGraph, Node, RunNode

# Run status -> (stroke/accent, fill): shared by Mermaid and SVG.
STATUS_COLORS: dict[str, tuple[str, str]] = {
    "completed": ("#15803d", "#ecfdf3"),
    "cached": ("#7c3aed", "#f5f3ff"),
    "started": ("#1d4ed8", "#eff6ff"),
    "scheduled": ("#64748b", "#f8fafc"),
    "errored": ("#b91c1c", "#fef2f2"),
    "aborted": ("#c2410c", "#fff7ed"),
}
UNKNOWN_STATUS = ("#475569", "#f8fafc")
ARTIFACT_COLORS = ("#3b6ea5", "#eef4fb")
ROOT_COLOR = "#f59e0b"
_SAFE_ROLE = re.compile(r"^[\w .:/-]{1,40}$")
_MERMAID_ESCAPES = {
    "#": "#35;",
    '"': "#quot;",
    "&": "#amp;",
    "<": "#lt;",
    ">": "#gt;",
    "`": "#96;",
    "\\": "#92;",
}


def status_colors(status: str) -> tuple[str, str]:
    """(accent, fill) of a run status."""
    return STATUS_COLORS.get(status, UNKNOWN_STATUS)


def duration_text(run: RunNode) -> str | None:
    """`3.2 s`, `4 min 5 s`, `2 h 3 min` between start and finish, if both are known."""
    if run.started_at is None or run.finished_at is None:
        return None
    seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def size_text(size: int | None) -> str | None:
    """`1234567` -> `1.2 MB` (decimal units)."""
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def detail_line(node: Node) -> str:
    """The second line of a node's label: version and size, or kind, status and duration."""
    from lakeline.lineage.graph import ArtifactNode

    if isinstance(node, ArtifactNode):
        parts = [f"v{node.version}" + (f" ({node.version_label})" if node.version_label else "")]
        if (size := size_text(node.size)) is not None:
            parts.append(size)
        if not node.is_latest:
            parts.append("not latest")
        return " · ".join(parts)
    parts = [node.transform_kind, node.status]
    if (took := duration_text(node)) is not None:
        parts.append(took)
    return " · ".join(parts)


def mermaid_escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label, whatever characters it holds."""
    from lakeline.storage.keys import CONTROL

    text = " ".join(text.split())  # no newlines or tabs
    return "".join(
        _MERMAID_ESCAPES.get(char) or (f"#{ord(char)};" if CONTROL.match(char) else char)
        for char in text  # control characters as entities: no terminal escapes
    )


def mermaid_id(node: Node) -> str:
    return ("a_" if node.type == "artifact" else "r_") + node.uid


def to_mermaid(graph: LineageGraph) -> str:
    """A Mermaid `flowchart LR`: artifacts as rounded boxes, runs as boxes coloured by status."""
    from lakeline.lineage.graph import ArtifactNode

    lines = ["flowchart LR"]
    classes: dict[str, list[str]] = {}
    for node in graph.nodes.values():
        ident = mermaid_id(node)
        title = mermaid_escape(node.label)
        detail = mermaid_escape(detail_line(node))
        if isinstance(node, ArtifactNode):
            lines.append(f'  {ident}("{title}<br/><small>{detail}</small>")')
            classes.setdefault("artifact", []).append(ident)
        else:
            lines.append(f'  {ident}["<b>{title}</b><br/><small>{detail}</small>"]')
            classes.setdefault("run_" + re.sub(r"\W", "_", node.status), []).append(ident)
    for edge in graph.edges:
        source = mermaid_id(graph.nodes[edge.source])
        target = mermaid_id(graph.nodes[edge.target])
        if edge.kind == "parent":
            lines.append(f"  {source} -.->|part of| {target}")
        elif edge.role and _SAFE_ROLE.match(edge.role):
            lines.append(f"  {source} -->|{edge.role}| {target}")
        else:
            lines.append(f"  {source} --> {target}")
    accent, fill = ARTIFACT_COLORS
    lines.append(f"  classDef artifact fill:{fill},stroke:{accent},color:#0f172a")
    for name in sorted(classes):
        if name.startswith("run_"):
            accent, fill = status_colors(name[4:])
            lines.append(f"  classDef {name} fill:{fill},stroke:{accent},color:#0f172a")
    lines.append(f"  classDef root stroke:{ROOT_COLOR},stroke-width:3px")
    for name, idents in classes.items():
        lines.append(f"  class {','.join(idents)} {name}")
    if graph.root in graph.nodes:
        lines.append(f"  class {mermaid_id(graph.nodes[graph.root])} root")
    return "\n".join(lines)


@dataclass(frozen=True)
class SVGView:
    """An SVG picture Jupyter displays inline; `path` is the file it was written to, if any."""

    svg: str
    path: Path | None = None

    def _repr_svg_(self) -> str:
        return self.svg


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (through a temporary name beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{id(text):x}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython is looked at only if already imported)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def view(
    graph: LineageGraph, path: str | os.PathLike[str] | None = None, format: str = "svg"
) -> Path | SVGView:
    """Draw `graph`: an inline SVG in a notebook, else a file (returns its path).

    Without `path`, files go to `<cache>/lineage/<root uid>-<direction>.<ext>`.
    """
    from lakeline.errors import LakelineError
    from lakeline.lineage.graph import FORMATS

    if format not in FORMATS:
        raise LakelineError(f"unknown lineage format {format!r}; choose from {', '.join(FORMATS)}")
    text = graph.render(format)
    if format == "svg" and in_notebook():
        written = write_text(Path(path).expanduser(), text) if path is not None else None
        return SVGView(text, written)
    if path is None:
        from lakeline.config import cache_dir

        ext = {"svg": ".svg", "mermaid": ".mmd", "json": ".json"}[format]
        path = cache_dir() / "lineage" / f"{graph.root}-{graph.direction}{ext}"
    return write_text(Path(path).expanduser(), text)
