"""Lineage graphs: traversal (depth, cycles, versions, parents), rendering and the CLI command."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline.cli import cli
from lakeline.errors import LakelineError
from lakeline.ids import new_stem, new_uid, versioned_uid
from lakeline.instance import Instance, current
from lakeline.lineage.graph import (
    ArtifactNode,
    Edge,
    LineageGraph,
    RunNode,
    downstream,
    lineage,
    upstream,
)
from lakeline.lineage.layout import layered_layout
from lakeline.lineage.render import view
from lakeline.models import Run, RunInput, Transform
from sqlalchemy import event

SVG_NS = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class Lake:
    """Builds lineage straight into the database: transforms, runs, artifacts, inputs."""

    def __init__(self) -> None:
        self.count = 0

    def run(
        self,
        key: str,
        *,
        kind: str = "rule",
        status: str = "completed",
        parent: Run | None = None,
        used: tuple[ll.Artifact, ...] = (),
        seconds: float = 2.5,
    ) -> Run:
        stem = new_stem()
        with current().sessions.write() as session:
            transform = Transform(uid=versioned_uid(stem, 0), stem=stem, key=key, kind=kind)
            session.add(transform)
            session.flush()
            run = Run(
                uid=new_uid(),
                transform_id=transform.id,
                status=status,
                parent_id=parent.id if parent else None,
                started_at=T0,
                finished_at=T0 + timedelta(seconds=seconds),
            )
            session.add(run)
        if used:
            self.use(run, *used)
        return run

    def use(self, run: Run, *artifacts: ll.Artifact, role: str = "") -> None:
        with current().sessions.write() as session:
            for artifact in artifacts:
                session.add(RunInput(run_id=run.id, artifact_id=artifact.id, role=role))

    def artifact(self, key: str, run: Run | None = None, content: Any = None) -> ll.Artifact:
        self.count += 1
        data = content if content is not None else {"n": self.count, "key": key}
        return ll.Artifact(data, key=key, run=run).save()


@pytest.fixture
def lake(instance: Instance) -> Lake:
    return Lake()


def uids(graph: LineageGraph) -> set[str]:
    return set(graph.nodes)


def edge_set(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in graph.edges}


@contextmanager
def count_queries() -> Iterator[list[str]]:
    engine = current().engine
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# -- traversal ------------------------------------------------------------------------------------


def test_diamond_upstream_and_downstream(lake: Lake) -> None:
    raw = lake.artifact("raw/reads.json")
    left_run = lake.run("trim", used=(raw,))
    left = lake.artifact("work/trimmed.json", left_run)
    right_run = lake.run("qc", used=(raw,))
    right = lake.artifact("work/qc.json", right_run)
    merge = lake.run("report", used=(left, right))
    final = lake.artifact("results/report.json", merge)

    graph = final.lineage()
    assert graph.root == final.uid and graph.direction == "upstream"
    assert uids(graph) == {a.uid for a in (raw, left, right, final)} | {
        r.uid for r in (left_run, right_run, merge)
    }
    assert edge_set(graph) == {
        (raw.uid, left_run.uid, "used"),
        (raw.uid, right_run.uid, "used"),
        (left_run.uid, left.uid, "produced"),
        (right_run.uid, right.uid, "produced"),
        (left.uid, merge.uid, "used"),
        (right.uid, merge.uid, "used"),
        (merge.uid, final.uid, "produced"),
    }
    assert len(graph.artifacts) == 4 and len(graph.runs) == 3
    run_node = graph.nodes[merge.uid]
    assert isinstance(run_node, RunNode)
    assert (run_node.transform_key, run_node.transform_kind, run_node.status) == (
        "report",
        "rule",
        "completed",
    )
    assert sorted(graph.predecessors(merge.uid)) == sorted([left.uid, right.uid])

    down = downstream(raw)
    assert uids(down) == uids(graph) and edge_set(down) == edge_set(graph)
    assert upstream(raw).nodes.keys() == {raw.uid}  # nothing produced it


def test_chain_depth_limits(lake: Lake) -> None:
    artifacts = [lake.artifact("chain/a0.json")]
    runs: list[Run] = []
    for i in range(1, 5):
        runs.append(lake.run(f"step{i}", used=(artifacts[-1],)))
        artifacts.append(lake.artifact(f"chain/a{i}.json", runs[-1]))
    a, r = [x.uid for x in artifacts], [x.uid for x in runs]  # a0 r0(step1) a1 r1 a2 ...

    last = artifacts[-1]
    assert uids(last.lineage(depth=0)) == {a[4]}
    assert uids(last.lineage(depth=1)) == {a[4], r[3], a[3]}
    assert uids(last.lineage(depth=2)) == {a[4], r[3], a[3], r[2], a[2]}
    assert len(last.lineage(depth=2).edges) == 4
    assert len(last.lineage()) == 9 and len(last.lineage(depth=4)) == 9
    assert len(last.lineage(depth=100).edges) == 8

    # from a run: the run is step 1
    middle = runs[2]
    assert uids(middle.lineage(depth=0)) == {r[2]}
    assert uids(middle.lineage(depth=1)) == {r[2], a[2]}
    assert uids(middle.lineage(depth=2)) == {r[2], a[2], r[1], a[1]}
    assert uids(middle.lineage("downstream", depth=1)) == {r[2], a[3]}
    assert uids(middle.lineage("downstream")) == {r[2], a[3], r[3], a[4]}

    assert uids(downstream(artifacts[0], depth=2)) == {a[0], r[0], a[1], r[1], a[2]}
    both = artifacts[2].lineage("both", depth=1)
    assert uids(both) == {a[2], r[1], a[1], r[2], a[3]}
    assert both.direction == "both" and both.depth == 1
    assert uids(artifacts[2].lineage("both")) == set(a) | set(r)


def test_cycles_terminate(lake: Lake) -> None:
    # a run that used and produced the same artifact
    loop = lake.run("inplace")
    same = lake.artifact("cycle/same.json", loop)
    lake.use(loop, same)
    for direction in ("upstream", "downstream", "both"):
        graph = same.lineage(direction)
        assert uids(graph) == {same.uid, loop.uid}
        assert edge_set(graph) == {
            (loop.uid, same.uid, "produced"),
            (same.uid, loop.uid, "used"),
        }

    # a longer cycle: x -> r1 -> y -> r2 -> x
    r2 = lake.run("back")
    x = lake.artifact("cycle/x.json", r2)
    r1 = lake.run("forth", used=(x,))
    y = lake.artifact("cycle/y.json", r1)
    lake.use(r2, y)
    expected = {x.uid, y.uid, r1.uid, r2.uid}
    assert uids(x.lineage()) == expected and uids(x.lineage("downstream")) == expected
    assert len(x.lineage("both").edges) == 4
    assert uids(x.lineage(depth=1)) == {x.uid, r2.uid, y.uid}
    # rendering a cyclic graph works too
    ET.fromstring(x.lineage().to_svg())


def test_versions_are_separate_nodes(lake: Lake) -> None:
    first_run = lake.run("download")
    v1 = lake.artifact("ref/genome.json", first_run, {"v": 1})
    second_run = lake.run("download")
    v2 = lake.artifact("ref/genome.json", second_run, {"v": 2})
    assert v1.stem == v2.stem and v1.uid != v2.uid
    consumer = lake.run("align", used=(v1,))
    out = lake.artifact("work/aligned.json", consumer)

    graph = out.lineage()
    assert uids(graph) == {out.uid, consumer.uid, v1.uid, first_run.uid}
    node = graph.nodes[v1.uid]
    assert isinstance(node, ArtifactNode)
    assert node.version == 1 and not node.is_latest and node.key == "ref/genome.json"
    latest = v2.lineage("both")
    assert uids(latest) == {v2.uid, second_run.uid}
    latest_node = latest.nodes[v2.uid]
    assert isinstance(latest_node, ArtifactNode) and latest_node.version == 2
    assert uids(downstream(v1)) == {v1.uid, consumer.uid, out.uid}
    result = invoke("lineage", "ref/genome.json", "--version", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["root"] == v1.uid
    result = invoke("lineage", "ref/genome.json", "--format", "json", "--direction", "both")
    assert {n["uid"] for n in json.loads(result.stdout)["nodes"]} == {v2.uid, second_run.uid}


def test_include_parents_and_collapse_workflows(lake: Lake) -> None:
    outer = lake.run("nightly", kind="flow")
    workflow = lake.run("rnaseq", kind="pipeline", parent=outer)
    raw = lake.artifact("raw/sample.json")
    trim = lake.run("trim", parent=workflow, used=(raw,))
    trimmed = lake.artifact("work/trimmed.json", trim)
    count = lake.run("count", parent=workflow, used=(trimmed,))
    counts = lake.artifact("results/counts.json", count)

    plain = counts.lineage()
    assert workflow.uid not in plain and all(e.kind != "parent" for e in plain.edges)
    trim_node = plain.nodes[trim.uid]
    assert isinstance(trim_node, RunNode) and trim_node.parent_uid == workflow.uid

    graph = counts.lineage(include_parents=True)
    assert {workflow.uid, outer.uid} <= uids(graph)
    parents = {(e.source, e.target) for e in graph.edges if e.kind == "parent"}
    assert parents == {
        (trim.uid, workflow.uid),
        (count.uid, workflow.uid),
        (workflow.uid, outer.uid),
    }

    collapsed = counts.lineage(collapse_workflows=True)
    assert uids(collapsed) == {raw.uid, trimmed.uid, counts.uid, outer.uid}
    assert edge_set(collapsed) == {
        (raw.uid, outer.uid, "used"),
        (outer.uid, trimmed.uid, "produced"),
        (outer.uid, counts.uid, "produced"),
    }
    assert trim.lineage(collapse_workflows=True).root == outer.uid
    ET.fromstring(graph.to_svg())
    assert graph.to_mermaid().count("-.->|part of|") == 3


def test_queries_are_batched_per_level(lake: Lake) -> None:
    producer = lake.run("split")
    saved = ll.save(
        [ll.Artifact({"i": i}, key=f"fan/in_{i}.json", run=producer) for i in range(1100)]
    )
    merge = lake.run("merge", used=tuple(saved))
    audit = lake.run("audit", used=tuple(saved[:600]))
    out = lake.artifact("fan/out.json", merge)
    with count_queries() as statements:
        graph = out.lineage()
    assert len(graph.artifacts) == 1101 and len(graph.runs) == 2
    assert len(graph.edges) == 1 + 1100 + 1100
    # root, producing run, inputs of merge (two steps level by level), then the rest at once:
    # the recursive query's artifacts, runs and edges (and BEGIN); never one per node
    assert len(statements) <= 8, statements
    with count_queries() as statements:
        down = downstream(producer)
    assert uids(down) == {producer.uid, merge.uid, audit.uid, out.uid} | {a.uid for a in saved}
    # root, its steps (a run may be a workflow run: none here), outputs, users of 1100
    # artifacts in chunks of 500 (3), then the rest at once (3)
    assert len(statements) <= 10, statements
    assert len(down.edges) == 1100 + 1100 + 600 + 1


def test_errors(lake: Lake) -> None:
    art = lake.artifact("x/y.json")
    with pytest.raises(LakelineError, match="direction"):
        art.lineage("sideways")
    with pytest.raises(LakelineError, match="depth"):
        art.lineage(depth=-1)
    with pytest.raises(LakelineError, match="not saved"):
        lineage(ll.Artifact({"a": 1}, key="unsaved.json"))
    with pytest.raises(TypeError):
        lineage("x/y.json")  # type: ignore[arg-type]
    with pytest.raises(LakelineError, match="format"):
        art.lineage().render("png")


# -- rendering ------------------------------------------------------------------------------------

NASTY = 'odd/"quoted" <b>#1</b> & `tick` [x] {y} | end.json'


@pytest.fixture
def pipeline(lake: Lake) -> tuple[ll.Artifact, LineageGraph]:
    raw = lake.artifact(NASTY)
    ok = lake.run('clean "step" \\ %% end', used=(raw,))
    cleaned = lake.artifact("work/clean.json", ok)
    failed = lake.run("plot", status="errored", used=(cleaned, raw))
    lake.artifact("results/partial.json", failed)
    cached = lake.run("summary", status="cached", used=(cleaned,))
    summary = lake.artifact("results/summary.json", cached)
    return summary, raw.lineage("downstream")


def test_mermaid_is_structurally_valid_and_escaped(pipeline: tuple[Any, LineageGraph]) -> None:
    _, graph = pipeline
    text = graph.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    node_lines = [ln for ln in lines if re.match(r"^  [ar]_[0-9A-Za-z]+[(\[]\"", ln)]
    edge_lines = [ln for ln in lines if re.match(r"^  [ar]_\w+ -(->|\.->)", ln)]
    assert len(node_lines) == len(graph.nodes) == 7
    assert len(edge_lines) == len(graph.edges) == 7
    for line in node_lines:  # the only quotes are the label's own
        assert line.count('"') == 2, line
        label = line.split('"')[1]
        assert not re.search(
            r"[<>`\\]",
            label.replace("<br/>", "")
            .replace("<b>", "")
            .replace("</b>", "")
            .replace("<small>", "")
            .replace("</small>", ""),
        )
    assert "#quot;quoted#quot;" in text and "#lt;b#gt;#35;1" in text
    defined = {ln.split("(")[0].split("[")[0].strip() for ln in node_lines}
    for line in edge_lines:
        parts = re.findall(r"[ar]_[0-9A-Za-z]{16}", line)
        assert len(parts) == 2 and set(parts) <= defined
    assert "class " in text and "classDef run_errored" in text


def test_svg_is_well_formed_with_one_element_per_node_and_edge(
    pipeline: tuple[Any, LineageGraph], tmp_path: Path
) -> None:
    _, graph = pipeline
    svg = graph.to_svg()
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    nodes = [g for g in root.iter(f"{SVG_NS}g") if g.get("class", "").startswith("node ")]
    edges = [p for p in root.iter(f"{SVG_NS}path") if p.get("class", "").startswith("edge ")]
    assert len(nodes) == len(graph.nodes) and len(edges) == len(graph.edges)
    assert {g.get("data-uid") for g in nodes} == set(graph.nodes)
    assert {(p.get("data-source"), p.get("data-target")) for p in edges} == {
        (e.source, e.target) for e in graph.edges
    }
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    assert "clean" in texts and "errored" in texts and "cached" in texts
    assert float(root.get("width", "0")) > 300 and float(root.get("height", "0")) > 100
    assert graph._repr_svg_() == svg
    written = graph.write(tmp_path / "out" / "g.svg")
    assert written.read_text() == svg


def test_json_round_trip(pipeline: tuple[Any, LineageGraph]) -> None:
    _, graph = pipeline
    data = json.loads(graph.to_json())
    assert {n["uid"] for n in data["nodes"]} == set(graph.nodes)
    assert {n["type"] for n in data["nodes"]} == {"artifact", "run"}
    assert LineageGraph.from_dict(data) == graph
    assert data["nodes"][0]["uid"] and all(
        set(e) == {"source", "target", "kind", "role"} for e in data["edges"]
    )


def test_view_lineage_writes_files(
    pipeline: tuple[ll.Artifact, LineageGraph], tmp_path: Path
) -> None:
    summary, _ = pipeline
    default = summary.view_lineage()
    assert isinstance(default, Path) and default.suffix == ".svg" and default.exists()
    ET.parse(default)
    mermaid = summary.view_lineage(tmp_path / "g.mmd", format="mermaid", depth=1)
    assert isinstance(mermaid, Path) and mermaid.read_text().startswith("flowchart LR")
    with pytest.raises(LakelineError, match="format"):
        summary.view_lineage(format="gif")


def test_view_in_a_notebook_shows_an_inline_svg(
    pipeline: tuple[ll.Artifact, LineageGraph],
    instance: Instance,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    summary, graph = pipeline
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import lakeline as ll\n"
            f"art = ll.Artifact.get({summary.uid!r})\n"
            f"art.view_lineage({str(tmp_path / 'nb.svg')!r})"
        ),
        nbformat.v4.new_code_cell("art.lineage(depth=1)"),
    ]
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    for cell in nb.cells:
        (output,) = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
        assert output["data"]["image/svg+xml"].lstrip().startswith("<svg")
    assert ET.parse(tmp_path / "nb.svg").getroot().tag == f"{SVG_NS}svg"
    assert isinstance(view(graph), Path)  # not in a kernel here: a file


def test_layout_orders_layers_and_avoids_crossings() -> None:
    nodes = ["a", "b", "c", "d", "e", "f"]
    edges = [("a", "c"), ("b", "d"), ("a", "d"), ("c", "e"), ("d", "f"), ("a", "f")]
    layout = layered_layout(nodes, dict.fromkeys(nodes, (100.0, 40.0)), edges)
    for source, target in edges:
        assert layout.x[source] < layout.x[target]
    (left, y0), (right, y1) = layout.routes[5]  # a -> f spans two layers: crosses one column
    assert left < layout.x["c"] < right and y0 == y1
    for column in {layout.x[n] for n in nodes}:  # no overlaps within a column
        ys = sorted(layout.y[n] for n in nodes if layout.x[n] == column)
        assert all(b - a >= 40 for a, b in pairwise(ys))
    cyclic = layered_layout(
        ["p", "q"], {"p": (10.0, 10.0), "q": (10.0, 10.0)}, [("p", "q"), ("q", "p")]
    )
    assert cyclic.x["p"] < cyclic.x["q"]


def test_graph_helpers() -> None:
    graph = LineageGraph(root="a")
    graph.nodes["a"] = ArtifactNode(uid="a", key=None)
    graph.nodes["r"] = RunNode(uid="r", status="started", transform_key="t", transform_kind="task")
    graph.edges.append(Edge("r", "a", "produced"))
    assert graph.nodes["a"].label == "a" and "r" in graph and len(graph) == 2
    assert graph.successors("r") == ["a"] and "runs=1" in repr(graph)
    ET.fromstring(graph.to_svg())


# -- command line ---------------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_cli_lineage(pipeline: tuple[ll.Artifact, LineageGraph], tmp_path: Path) -> None:
    summary, _ = pipeline
    result = invoke("lineage", "results/summary.json", "--format", "mermaid")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("flowchart LR") and "summary" in result.stdout

    result = invoke("lineage", summary.uid, "--format", "json", "--depth", "1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["root"] == summary.uid and data["depth"] == 1 and len(data["nodes"]) == 3

    result = invoke("lineage", NASTY, "--direction", "downstream", "-o", str(tmp_path / "g.svg"))
    assert result.exit_code == 0, result.output
    root = ET.parse(tmp_path / "g.svg").getroot()
    assert len([g for g in root.iter(f"{SVG_NS}g") if g.get("class", "").startswith("node ")]) == 7
    assert "g.svg" in result.stderr and result.stdout == ""

    result = invoke("lineage", "results/summary.json", "-o", str(tmp_path / "g.json"))
    assert json.loads((tmp_path / "g.json").read_text())["root"] == summary.uid

    producer = summary.run
    assert producer is not None
    result = invoke("lineage", producer.uid, "--direction", "both", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["root"] == producer.uid

    result = invoke("lineage", "results/summary.json", "--format", "svg")
    assert result.exit_code == 0 and result.stdout.startswith("<svg")


def test_cli_lineage_errors(instance: Instance) -> None:
    result = invoke("lineage", "no/such.json")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert "no artifact or run" in result.stderr and "Traceback" not in result.output
    result = invoke("lineage", "x.json", "--depth", "-1")
    assert result.exit_code == 2
    result = invoke("lineage", "x.json", "--direction", "sideways")
    assert result.exit_code == 2


def test_unlimited_walks_take_a_fixed_number_of_queries(lake: Lake) -> None:
    """A long chain: without a depth limit, a recursive query loads what lies beyond the first
    steps (not two round trips per step); the graph is the one the level-by-level walk builds."""
    first = lake.artifact("chain/0.json")
    current, runs = first, []
    for i in range(1, 41):
        runs.append(lake.run("step", used=(current,)))
        current = lake.artifact(f"chain/{i}.json", runs[-1])
    lake.run("reader", used=(first,))  # a user of the first: downstream only
    for node, direction in ((current, "upstream"), (first, "downstream"), (runs[20], "both")):
        with count_queries() as statements:
            unlimited = lineage(node, direction)
        # root; per direction: two steps level by level (4), then the rest at once (3)
        assert len(statements) <= 15, statements
        level_by_level = lineage(node, direction, depth=1000)
        assert list(unlimited.nodes) == list(level_by_level.nodes)  # same order: renderers
        assert unlimited.edges == level_by_level.edges
    assert len(lineage(current).runs) == 40 and len(lineage(first, "downstream").runs) == 41
