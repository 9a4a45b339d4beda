"""A small layered (Sugiyama-style) layout for directed graphs, left to right, pure Python.

1. cycles are broken by reversing DFS back edges (they are still drawn, the other way);
2. longest-path layering, then sources are pulled right next to their first successor;
3. edges spanning several layers get dummy nodes, so they bend around nodes, not through them;
4. barycenter sweeps (down and up) order each layer, keeping the order with fewest crossings;
5. vertical positions: each node moves toward the mean of its neighbours, and an isotonic
   regression (pool adjacent violators) restores order and spacing with the least movement.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

Point = tuple[float, float]


@dataclass
class Layout:
    """Node centres, layers, and each edge's bend points, source to target.

    A long edge has two points per column it crosses (the column's left and right edge, at
    its dummy node's height), so it runs straight past the nodes and bends between columns.
    """

    x: dict[str, float] = field(default_factory=dict)
    y: dict[str, float] = field(default_factory=dict)
    layer: dict[str, int] = field(default_factory=dict)
    routes: list[list[Point]] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def _break_cycles(nodes: list[str], edges: list[tuple[str, str]]) -> list[bool]:
    """Which edges to reverse so the graph is acyclic (back edges of an iterative DFS)."""
    out: dict[str, list[int]] = defaultdict(list)
    for index, (source, _) in enumerate(edges):
        out[source].append(index)
    reverse = [source == target for source, target in edges]
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(out[start]))]
        while stack:
            node, pending = stack[-1]
            for index in pending:
                target = edges[index][1]
                if state.get(target) == 1:
                    reverse[index] = True
                elif target not in state:
                    state[target] = 1
                    stack.append((target, iter(out[target])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return reverse


def _layers(nodes: list[str], dag: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layers; a source sits one layer before its nearest successor."""
    succ: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(nodes, 0)
    for source, target in dag:
        if source != target:
            succ[source].append(target)
            indegree[target] += 1
    order = [n for n in nodes if indegree[n] == 0]
    layer = dict.fromkeys(nodes, 0)
    sources = set(order)
    for node in order:  # Kahn's algorithm; `order` grows while we iterate
        for target in succ[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                order.append(target)
    for node in reversed(order):
        if node in sources and succ[node]:
            layer[node] = min(layer[t] for t in succ[node]) - 1
    return layer


def _crossings(upper: list[str], lower: list[str], down: dict[str, list[str]]) -> int:
    """Edge crossings between two adjacent layers (inversions, counted with a Fenwick tree)."""
    position = {node: i for i, node in enumerate(lower)}
    targets = [position[t] for node in upper for t in sorted(down[node], key=position.__getitem__)]
    tree = [0] * (len(lower) + 1)
    count = 0
    for seen, target in enumerate(targets):
        i, not_greater = target + 1, 0
        while i > 0:
            not_greater += tree[i]
            i -= i & -i
        count += seen - not_greater
        i = target + 1
        while i <= len(lower):
            tree[i] += 1
            i += i & -i
    return count


def _sorted_by_barycenter(
    row: list[str], fixed: list[str], links: dict[str, list[str]]
) -> list[str]:
    """`row` sorted by the mean position of each node's neighbours in the `fixed` layer."""
    position = {node: p for p, node in enumerate(fixed)}
    scale = len(fixed) / max(1, len(row))
    keys: dict[str, tuple[float, int]] = {}
    for index, node in enumerate(row):
        linked = [position[n] for n in links[node] if n in position]
        keys[node] = (sum(linked) / len(linked) if linked else index * scale, index)
    return sorted(row, key=keys.__getitem__)


def _order(
    rows: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]], sweeps: int
) -> list[list[str]]:
    """Barycenter sweeps; returns the ordering with the fewest crossings seen."""

    def total(rows: list[list[str]]) -> int:
        return sum(_crossings(rows[i], rows[i + 1], down) for i in range(len(rows) - 1))

    best, best_count = [list(r) for r in rows], total(rows)
    for sweep in range(sweeps):
        if best_count == 0:
            break
        if sweep % 2 == 0:
            for i in range(1, len(rows)):
                rows[i] = _sorted_by_barycenter(rows[i], rows[i - 1], up)
        else:
            for i in range(len(rows) - 2, -1, -1):
                rows[i] = _sorted_by_barycenter(rows[i], rows[i + 1], down)
        count = total(rows)
        if count < best_count:
            best, best_count = [list(r) for r in rows], count
    return best


def _pav(desired: list[float], gaps: list[float], weights: list[float]) -> list[float]:
    """Positions in order, `gaps[i]` apart at least, as close as possible to `desired`."""
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for value, offset, weight in zip(desired, offsets, weights, strict=True):
        blocks.append([(value - offset) * weight, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            for k in range(3):
                blocks[-1][k] += last[k]
    out: list[float] = []
    for total, weight, count in blocks:
        out.extend([total / weight] * int(count))
    return [z + offset for z, offset in zip(out, offsets, strict=True)]


def layered_layout(
    nodes: list[str],
    sizes: dict[str, tuple[float, float]],
    edges: list[tuple[str, str]],
    *,
    layer_gap: float = 80.0,
    node_gap: float = 22.0,
    edge_gap: float = 10.0,
    sweeps: int = 16,
) -> Layout:
    """Lay `nodes` (width, height in `sizes`) out in columns, edges flowing left to right."""
    reverse = _break_cycles(nodes, edges)
    dag = [(t, s) if r else (s, t) for (s, t), r in zip(edges, reverse, strict=True)]
    layer = _layers(nodes, dag)
    lowest = min(layer.values(), default=0)
    layer = {n: value - lowest for n, value in layer.items()}
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    chains: list[list[str]] = []
    dummies: set[str] = set()
    for index, (source, target) in enumerate(dag):
        chain = [source]
        for step in range(layer[source] + 1, layer[target]):
            dummy = f"\0{index}:{step}"
            layer[dummy] = step
            dummies.add(dummy)
            chain.append(dummy)
        chain.append(target)
        for a, b in pairwise(chain):
            if a != b:
                down[a].append(b)
                up[b].append(a)
        chains.append(chain)
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    placed: set[str] = set()

    def visit(start: str) -> None:  # depth-first initial order keeps neighbours together
        stack = [start]
        while stack:
            node = stack.pop()
            if node in placed:
                continue
            placed.add(node)
            rows[layer[node]].append(node)
            stack.extend(reversed(down[node]))

    for node in nodes:
        if not up[node]:
            visit(node)
    for node in nodes:
        visit(node)
    rows = _order(rows, up, down, sweeps)

    def size(node: str) -> tuple[float, float]:
        return (0.0, edge_gap) if node in dummies else sizes[node]

    result = Layout(layer={n: layer[n] for n in nodes})
    left = 0.0
    columns: list[float] = []
    for row in rows:
        column = max((size(n)[0] for n in row), default=0.0)
        columns.append(column)
        for node in row:
            result.x[node] = left + column / 2
        left += column + layer_gap
    result.width = max(0.0, left - layer_gap)
    y: dict[str, float] = {}
    gaps_of: list[list[float]] = []
    for row in rows:
        gaps = []
        for a, b in pairwise(row):
            spacing = edge_gap if a in dummies and b in dummies else node_gap
            gaps.append((size(a)[1] + size(b)[1]) / 2 + spacing)
        gaps_of.append(gaps)
        position = -sum(gaps) / 2
        for node, gap in zip(row, [*gaps, 0.0], strict=True):
            y[node] = position
            position += gap
    weights = [[4.0 if n in dummies else 1.0 for n in row] for row in rows]
    for sweep in range(12):  # alternate; the last sweep aligns nodes with their successors
        downward = sweep % 2 == 0
        for i in range(len(rows)) if downward else range(len(rows) - 1, -1, -1):
            row = rows[i]
            desired = []
            for node in row:
                linked = up[node] if downward else down[node]
                desired.append(sum(y[n] for n in linked) / len(linked) if linked else y[node])
            for node, value in zip(row, _pav(desired, gaps_of[i], weights[i]), strict=True):
                y[node] = value
    top = min((y[n] - size(n)[1] / 2 for n in y), default=0.0)
    bottom = max((y[n] + size(n)[1] / 2 for n in y), default=0.0)
    result.height = bottom - top
    for node in nodes:
        result.y[node] = y[node] - top
    for chain, reversed_ in zip(chains, reverse, strict=True):
        points = []  # a long edge crosses each column straight, at its dummy's height
        for dummy in chain[1:-1]:
            half, at = columns[layer[dummy]] / 2, y[dummy] - top
            points += (
                [(result.x[dummy] - half, at), (result.x[dummy] + half, at)]
                if half
                else [(result.x[dummy], at)]
            )
        result.routes.append(points[::-1] if reversed_ else points)
    return result
