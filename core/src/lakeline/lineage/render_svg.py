"""SVG pictures of lineage graphs, with no Graphviz: `layout.layered_layout` places the nodes.

Artifacts are rounded boxes with a page icon (key; version and size), runs are boxes with a
status-coloured bar (transform key; kind, status and duration). The node the graph is about
has an amber halo. Edges are smooth curves with arrowheads, fanned out along each node's side;
`parent` edges are dashed. Every node and edge carries a tooltip (`<title>`) with its uids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

from lakeline.lineage.graph import ArtifactNode, Edge, LineageGraph, Node
from lakeline.lineage.layout import Point, layered_layout
from lakeline.lineage.render import (
    ARTIFACT_COLORS,
    ROOT_COLOR,
    detail_line,
    status_colors,
)

FONT = "'Inter', 'Segoe UI', 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif"
TITLE_SIZE, DETAIL_SIZE = 13.0, 11.0
PAD_X, ICON = 12.0, 16.0
NODE_HEIGHT = 44.0
MIN_WIDTH, MAX_TEXT = 110.0, 300.0
MARGIN = 24.0
HEADER = 52.0
LEGEND = 44.0
TEXT = "#0f172a"
MUTED = "#64748b"
EDGE_COLORS = {"used": "#8394ab", "produced": "#8394ab", "parent": "#a78bfa"}
# Advance widths (% of the font size) of ASCII 32..126 in DejaVu Sans, regular and bold: the
# widest of the fonts named in FONT, so boxes fit whichever the viewer has.
_REGULAR = bytes([
    32, 40, 46, 84, 64, 95, 78, 27, 39, 39, 50, 84, 32, 36, 32, 34, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 34, 34, 84, 84, 84, 53, 100, 68, 69, 70, 77, 63, 58, 77, 75, 29, 29, 66, 56, 86, 75,
    79, 60, 79, 69, 63, 61, 73, 68, 99, 69, 61, 69, 39, 34, 39, 84, 50, 50, 61, 63, 55, 63, 62, 35,
    63, 63, 28, 28, 58, 28, 97, 63, 61, 63, 63, 41, 52, 39, 63, 59, 82, 59, 59, 52, 64, 34, 64, 84,
])  # fmt: skip
_BOLD = bytes([
    35, 46, 52, 84, 70, 100, 87, 31, 46, 46, 52, 84, 38, 42, 38, 37, 70, 70, 70, 70, 70, 70, 70,
    70, 70, 70, 40, 40, 84, 84, 84, 58, 100, 77, 76, 73, 83, 68, 68, 82, 84, 37, 37, 77, 64, 100,
    84, 85, 73, 85, 77, 72, 68, 81, 77, 110, 77, 72, 73, 46, 37, 46, 84, 50, 50, 67, 72, 59, 72,
    68, 44, 72, 71, 34, 34, 67, 34, 104, 71, 69, 72, 72, 49, 60, 48, 71, 65, 92, 65, 65, 58, 71,
    37, 71, 84,
])  # fmt: skip


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The width of `text` in DejaVu Sans (other characters count as wide ones)."""
    table = _BOLD if bold else _REGULAR
    units = sum(table[code - 32] if 32 <= (code := ord(c)) < 127 else 100 for c in text)
    return units * size / 100


def elide(text: str, size: float, limit: float, bold: bool = False) -> str:
    """`text`, shortened in the middle with `…` so it fits in `limit` pixels (keeps the end)."""
    if text_width(text, size, bold) <= limit:
        return text
    head, tail = len(text) // 3, len(text) - len(text) // 3
    while head > 1 and text_width(text[:head] + "…" + text[tail:], size, bold) > limit:
        if head > (len(text) - tail) // 2:
            head -= 1
        else:
            tail += 1
    return text[:head] + "…" + text[tail:]


def _tooltip(node: Node) -> str:
    if isinstance(node, ArtifactNode):
        lines = [node.key or "(no key)", f"artifact {node.uid}", f"version {node.version}"]
        if node.hash:
            lines.append(f"hash {node.hash[:16]}…")
        if node.created_at:
            lines.append(f"created {node.created_at:%Y-%m-%d %H:%M} UTC")
        return "\n".join(lines)
    lines = [f"{node.transform_key} ({node.transform_kind})", f"run {node.uid}"]
    lines.append(f"status {node.status}")
    if node.started_at:
        lines.append(f"started {node.started_at:%Y-%m-%d %H:%M:%S} UTC")
    if node.finished_at:
        lines.append(f"finished {node.finished_at:%Y-%m-%d %H:%M:%S} UTC")
    if node.engine:
        lines.append(f"engine {node.engine}")
    if node.parent_uid:
        lines.append(f"part of run {node.parent_uid}")
    return "\n".join(lines)


class _Box:
    """A node's text and size."""

    def __init__(self, node: Node) -> None:
        self.node = node
        is_artifact = isinstance(node, ArtifactNode)
        self.indent = PAD_X + (ICON if is_artifact else 6.0)
        self.title = elide(node.label, TITLE_SIZE, MAX_TEXT, bold=True)
        self.detail = elide(detail_line(node), DETAIL_SIZE, MAX_TEXT)
        text = max(
            text_width(self.title, TITLE_SIZE, bold=True),
            text_width(self.detail, DETAIL_SIZE),
        )
        self.width = max(MIN_WIDTH, self.indent + text + PAD_X)
        self.height = NODE_HEIGHT


def _curve(points: list[Point]) -> str:
    """A smooth path through `points`, leaving and entering each one horizontally."""
    (x0, y0), parts = points[0], [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for x1, y1 in points[1:]:
        if (x1, y1) == (x0, y0):
            continue
        dx = (x1 - x0) / 2
        if abs(dx) < 12:  # nearly vertical: bulge sideways so the arrow keeps its direction
            dx = 12 if dx >= 0 else -12
        parts.append(f"C{x0 + dx:.1f},{y0:.1f} {x1 - dx:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(parts)


def _node_svg(box: _Box, x: float, y: float, root: bool, href: str | None = None) -> str:
    node = box.node
    left, top, w, h = x - box.width / 2, y - box.height / 2, box.width, box.height
    out = [f"<a href={quoteattr(href)}>"] if href is not None else []
    out += [
        f'<g class="node {node.type}" id={quoteattr("n-" + node.uid)} '
        f"data-uid={quoteattr(node.uid)}>",
        f"<title>{escape(_tooltip(node))}</title>",
    ]
    if root:
        out.append(
            f'<rect x="{left - 5:.1f}" y="{top - 5:.1f}" width="{w + 10:.1f}" '
            f'height="{h + 10:.1f}" rx="{17 if node.type == "artifact" else 10}" '
            f'fill="{ROOT_COLOR}" fill-opacity="0.28" stroke="{ROOT_COLOR}" stroke-width="1.5"/>'
        )
    radius = 12 if isinstance(node, ArtifactNode) else 5
    out.append(  # a soft shadow, without filters (which some renderers lack)
        f'<rect x="{left + 0.5:.1f}" y="{top + 2:.1f}" width="{w:.1f}" height="{h:.1f}" '
        f'rx="{radius}" fill="#0f172a" fill-opacity="0.07"/>'
    )
    if isinstance(node, ArtifactNode):
        accent, fill = ARTIFACT_COLORS
        out.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{w:.1f}" height="{h:.1f}" rx="12" '
            f'fill="{fill}" stroke="{accent}" stroke-width="1.3"/>'
        )
        ix, iy = left + PAD_X - 2, y - 8
        out.append(
            f'<path d="M{ix:.1f},{iy:.1f} h7 l4,4 v12 h-11 z M{ix + 7:.1f},{iy:.1f} v4 h4" '
            f'fill="#ffffff" stroke="{accent}" stroke-width="1.1" stroke-linejoin="round"/>'
        )
        weight = "600"
    else:
        accent, fill = status_colors(node.status)
        out.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{w:.1f}" height="{h:.1f}" rx="5" '
            f'fill="{fill}" stroke="{accent}" stroke-width="1.3"/>'
        )
        out.append(
            f'<path d="M{left + 5:.1f},{top:.1f} h-0 a5,5 0 0 0 -5,5 v{h - 10:.1f} '
            f'a5,5 0 0 0 5,5 h1 v{-h:.1f} z" fill="{accent}"/>'
        )
        weight = "700"
    tx = left + box.indent
    out.append(
        f'<text x="{tx:.1f}" y="{y - 3:.1f}" font-size="{TITLE_SIZE:g}" font-weight="{weight}" '
        f'fill="{TEXT}">{escape(box.title)}</text>'
    )
    out.append(
        f'<text x="{tx:.1f}" y="{y + 13:.1f}" font-size="{DETAIL_SIZE:g}" '
        f'fill="{MUTED}">{escape(box.detail)}</text>'
    )
    out.append("</g></a>" if href is not None else "</g>")
    return "".join(out)


def _ports(
    graph: LineageGraph,
    boxes: dict[str, _Box],
    x: dict[str, float],
    y: dict[str, float],
    routes: list[list[Point]],
) -> list[tuple[Point, Point]]:
    """Start and end point of each edge on its nodes' sides, fanned out by where it goes."""
    sides: dict[tuple[str, int], list[tuple[float, int, int]]] = defaultdict(list)
    for index, (edge, route) in enumerate(zip(graph.edges, routes, strict=True)):
        s, t = edge.source, edge.target
        forward = x[t] > x[s]
        toward_t = route[0] if route else (x[t], y[t])
        toward_s = route[-1] if route else (x[s], y[s])
        sides[(s, 1 if forward else -1)].append((toward_t[1], index, 0))
        sides[(t, -1 if forward else 1)].append((toward_s[1], index, 1))
    ends: list[list[Point]] = [[(0.0, 0.0), (0.0, 0.0)] for _ in graph.edges]
    for (uid, side), attached in sides.items():
        box = boxes[uid]
        attached.sort()
        spacing = min(8.0, (box.height - 14) / max(1, len(attached) - 1))
        first = y[uid] - spacing * (len(attached) - 1) / 2
        px = x[uid] + side * box.width / 2
        for k, (_, index, end) in enumerate(attached):
            ends[index][end] = (px, first + k * spacing)
    return [(a, b) for a, b in ends]


def _legend(graph: LineageGraph, top: float) -> tuple[str, float]:
    """The legend row: node shapes, the run statuses present, edge styles. Returns (svg, width)."""
    out = [f'<g class="legend" font-size="11" fill="{MUTED}">']
    cx = MARGIN
    cy = top + LEGEND / 2
    accent, fill = ARTIFACT_COLORS
    out.append(
        f'<rect x="{cx}" y="{cy - 8}" width="26" height="16" rx="7" fill="{fill}" '
        f'stroke="{accent}"/><text x="{cx + 32}" y="{cy + 4}">artifact</text>'
    )
    cx += 32 + text_width("artifact", 11) + 18
    out.append(
        f'<rect x="{cx - 3}" y="{cy - 11}" width="32" height="22" rx="9" fill="{ROOT_COLOR}" '
        f'fill-opacity="0.28" stroke="{ROOT_COLOR}" stroke-width="1.5"/><rect x="{cx}" '
        f'y="{cy - 8}" width="26" height="16" rx="7" fill="#ffffff" stroke="{MUTED}"/>'
        f'<text x="{cx + 35}" y="{cy + 4}">start</text>'
    )
    cx += 35 + text_width("start", 11) + 18
    statuses = sorted({r.status for r in graph.runs}) or ["completed"]
    for status in statuses:
        accent, fill = status_colors(status)
        out.append(
            f'<rect x="{cx}" y="{cy - 8}" width="26" height="16" rx="3" fill="{fill}" '
            f'stroke="{accent}"/><rect x="{cx}" y="{cy - 8}" width="5" height="16" rx="2" '
            f'fill="{accent}"/><text x="{cx + 32}" y="{cy + 4}">run: {escape(status)}</text>'
        )
        cx += 32 + text_width(f"run: {status}", 11) + 18
    kinds = [("used", "uses / produces")]
    if any(e.kind == "parent" for e in graph.edges):
        kinds.append(("parent", "part of"))
    for kind, label in kinds:
        dash = ' stroke-dasharray="5 3"' if kind == "parent" else ""
        out.append(
            f'<path d="M{cx},{cy} h26" stroke="{EDGE_COLORS[kind]}" stroke-width="1.5"{dash} '
            f'marker-end="url(#arrow-{kind})"/><text x="{cx + 34}" y="{cy + 4}">{label}</text>'
        )
        cx += 34 + text_width(label, 11) + 18
    out.append("</g>")
    return "".join(out), cx - 18 + MARGIN


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _header(graph: LineageGraph) -> tuple[str, float, str]:
    root = graph.nodes.get(graph.root)
    name = root.label if root is not None else graph.root
    what = "artifact" if isinstance(root, ArtifactNode) else "run"
    title = elide(f"Lineage of {what} {name}", 15, 900, bold=True)
    depth = "any depth" if graph.depth is None else f"depth {graph.depth}"
    counts = [
        _plural(len(graph.artifacts), "artifact"),
        _plural(len(graph.runs), "run"),
        _plural(len(graph.edges), "edge"),
    ]
    sub = " · ".join([graph.direction, depth, *counts])
    svg = (
        f'<text x="{MARGIN}" y="{MARGIN + 6}" font-size="15" font-weight="700" fill="{TEXT}">'
        f"{escape(title)}</text>"
        f'<text x="{MARGIN}" y="{MARGIN + 24}" font-size="11.5" fill="{MUTED}">{escape(sub)}</text>'
    )
    return svg, MARGIN + max(text_width(title, 15, True), text_width(sub, 11.5)), title


def to_svg(graph: LineageGraph, link: Callable[[Node], str] | None = None) -> str:
    """A standalone SVG document of `graph`; `link(node)` makes each node a link to that URL."""
    boxes = {uid: _Box(node) for uid, node in graph.nodes.items()}
    layout_edges = [
        (e.target, e.source) if e.kind == "parent" else (e.source, e.target) for e in graph.edges
    ]
    layout = layered_layout(
        list(graph.nodes), {u: (b.width, b.height) for u, b in boxes.items()}, layout_edges
    )
    routes = [
        r[::-1] if e.kind == "parent" else r
        for e, r in zip(graph.edges, layout.routes, strict=True)
    ]
    ox, oy = MARGIN + 8, HEADER + MARGIN
    x = {u: v + ox for u, v in layout.x.items()}
    y = {u: v + oy for u, v in layout.y.items()}
    routes = [[(px + ox, py + oy) for px, py in r] for r in routes]
    ends = _ports(graph, boxes, x, y, routes)
    legend, legend_width = _legend(graph, oy + layout.height + 16)
    header, header_width, title = _header(graph)
    width = max(ox + layout.width + MARGIN + 8, legend_width, header_width + MARGIN)
    height = oy + layout.height + 16 + LEGEND + 4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}">',
        f"<title>{escape(title)}</title>",
        "<defs>",
    ]
    for kind, color in EDGE_COLORS.items():
        out.append(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
            f'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,1 L10,5 L0,9 z" fill="{color}"/></marker>'
        )
    out += ["</defs>", f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>', header]
    out.append('<g class="edges" fill="none">')
    for edge, route, (start, end) in zip(graph.edges, routes, ends, strict=True):
        out.append(_edge_svg(graph, edge, [start, *route, end]))
    out.append('</g><g class="nodes">')
    for uid, box in boxes.items():
        href = link(box.node) if link is not None else None
        out.append(_node_svg(box, x[uid], y[uid], uid == graph.root, href))
    out += ["</g>", legend, "</svg>"]
    return "\n".join(out) + "\n"


def _edge_svg(graph: LineageGraph, edge: Edge, points: list[Point]) -> str:
    source, target = graph.nodes[edge.source], graph.nodes[edge.target]
    if edge.kind == "used":
        tip = f"{source.label} used by {target.label}"
    elif edge.kind == "produced":
        tip = f"{source.label} produced {target.label}"
    else:
        tip = f"run {source.uid} is part of run {target.uid}"
    if edge.role:
        tip += f" (as {edge.role})"
    dash = ' stroke-dasharray="5 3"' if edge.kind == "parent" else ""
    return (
        f'<path class="edge edge-{edge.kind}" data-source={quoteattr(edge.source)} '
        f'data-target={quoteattr(edge.target)} d="{_curve(points)}" '
        f'stroke="{EDGE_COLORS[edge.kind]}" stroke-width="1.5"{dash} '
        f'marker-end="url(#arrow-{edge.kind})"><title>{escape(tip)}</title></path>'
    )
