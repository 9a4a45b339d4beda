"""Lineage facts that must hold (issue: "lineage you can trust"): a use never sets a
producer, files at different locations never become one artifact or versions of one another,
inputs whose bytes are gone keep their edge, a workflow run's lineage shows its steps."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance, init
from lakeline.lineage.context import run_context
from lakeline.lineage.recorder import FileRecord, Recorder
from test_recorder import JOBS, execute

# -- a use never sets a producer ---------------------------------------------------------------


def test_a_use_while_the_step_is_current_sets_no_producer(
    instance: Instance, tmp_path: Path
) -> None:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw.txt").write_text("raw")
    (root / "data" / "more.txt").write_text("more")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="task", engine_task_id="1")
    with run_context(step.run):  # what Prefect does: the task's run is current
        used = rec.use(step, "data/raw.txt")
        batch = rec.save_files([FileRecord("data/more.txt", used_by=[(step, "extra")])])[0]
        (root / "out.txt").write_text("made")
        made = rec.produce(step, "out.txt")
    assert used is not None and used.run_id is None
    assert batch is not None and ll.Artifact.get(key="data/more.txt").run_id is None
    assert made is not None and made.run_id == step.run.id
    assert sorted(a.key for a in step.run.inputs.all()) == ["data/more.txt", "data/raw.txt"]
    # a plain save inside a tracked run is still that run's output
    with run_context(step.run):
        (root / "note.txt").write_text("note")
        assert ll.Artifact(root / "note.txt").save().run_id == step.run.id


# -- two projects in one instance ----------------------------------------------------------------


def record_project(root: Path, engine: str) -> None:
    """The toy workflow of test_recorder in folder `root`, recorded by `engine`."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    (root / "data" / "raw.txt").write_text("alpha beta gamma delta epsilon zeta eta")
    rec = Recorder(engine, root=root)
    wf = rec.start_workflow(key="words", engine_run_id=f"{engine}-1", source_code="rules")
    for job in JOBS:
        step = rec.start_step(wf, key=job["rule"], kind="rule", engine_task_id=job["id"])
        for path in job["input"]:
            rec.use(step, path)
        execute(job, root)
        for path in [*job["output"], *job.get("log", [])]:
            rec.produce(step, path)
        rec.finish_step(step)
    rec.finish_workflow(wf)


def graph_of(engine: str, root: Path) -> set[tuple[str, str, str]]:
    """Every edge one engine recorded, by step and file path inside `root`:
    (rule, "used"|"produced", path). Fails if an edge leaves the project's folder."""
    edges = set()
    for run in ll.Run.filter(engine=engine, parent_id__isnull=False):
        for artifact in run.inputs.all():
            path = Path(artifact.location)
            assert path.is_relative_to(root), f"{engine} used {path}, outside {root}"
            edges.add((run.transform.key, "used", str(path.relative_to(root))))
        for artifact in run.outputs.all():
            path = Path(artifact.location)
            assert path.is_relative_to(root), f"{engine} made {path}, outside {root}"
            edges.add((run.transform.key, "produced", str(path.relative_to(root))))
    return edges


def test_two_projects_keep_their_own_graphs(instance: Instance, tmp_path: Path) -> None:
    alone = {}
    for engine in ("toy-a", "toy-b"):  # each project in an instance of its own (SQLite)
        init(storage=tmp_path / f"alone-{engine}", name=f"alone-{engine}")
        record_project(tmp_path / f"alone-{engine}-proj", engine)
        alone[engine] = graph_of(engine, tmp_path / f"alone-{engine}-proj")
        assert len(alone[engine]) == 11
    ll.connect(instance.name)

    projects = {"toy-a": tmp_path / "projA", "toy-b": tmp_path / "projB"}
    for engine, root in projects.items():  # both into one instance: same paths, same bytes
        record_project(root, engine)
    for engine, root in projects.items():
        assert graph_of(engine, root) == alone[engine]
    for engine in projects:  # nothing of one project's runs touches the other's files
        for run in ll.Run.filter(engine=engine):
            assert run.status == "completed"
    raws = ll.Artifact.filter(suffix=".txt", key__endswith="data/raw.txt").all()
    assert sorted(Path(a.location) for a in raws) == sorted(
        root / "data" / "raw.txt" for root in projects.values()
    )
    assert len({a.uid for a in raws}) == 2 and len({a.stem for a in raws}) == 2
    totals = ll.Artifact.filter(key__endswith="out/total.txt").all()
    assert len(totals) == 2 and all(t.versions.count() == 1 for t in totals)  # no v2 of another


def test_the_first_location_keeps_the_plain_key_others_are_qualified(
    instance: Instance, tmp_path: Path
) -> None:
    a, b = tmp_path / "runs" / "projA", tmp_path / "runs" / "projB"
    for root in (a, b):
        (root / "data").mkdir(parents=True)
        (root / "data" / "s1.csv").write_text("x,y\n1,2\n")
        instance.register_storage(root)
    first = ll.Artifact(a / "data" / "s1.csv").save()
    second = ll.Artifact(b / "data" / "s1.csv").save()
    assert first.key == "data/s1.csv" and second.key == "projB/data/s1.csv"
    assert first.uid != second.uid and first.stem != second.stem
    # each location maps to its own records: the same bytes again are the same record
    assert ll.Artifact(b / "data" / "s1.csv").save().uid == second.uid
    assert ll.Artifact(a / "data" / "s1.csv").save().uid == first.uid
    # new bytes at B are the next version of B's record, A's stays as it was
    (b / "data" / "s1.csv").write_text("x,y\n3,4\n")
    again = ll.Artifact(b / "data" / "s1.csv").save()
    assert again.stem == second.stem and again.key == "projB/data/s1.csv" and again.is_latest
    assert ll.Artifact.get(key="data/s1.csv").uid == first.uid
    # a third folder of the same name elsewhere goes one folder further up
    c = tmp_path / "other" / "projB"
    (c / "data").mkdir(parents=True)
    (c / "data" / "s1.csv").write_text("x,y\n1,2\n")
    instance.register_storage(c)
    assert ll.Artifact(c / "data" / "s1.csv").save().key == "other/projB/data/s1.csv"
    # an explicit key still means "a version of that key", wherever the file is
    explicit = ll.Artifact(c / "data" / "s1.csv", key="data/s1.csv").save()
    assert explicit.stem == first.stem and explicit.uid == first.uid  # same bytes as v1


def test_two_locations_in_one_batch(instance: Instance, tmp_path: Path) -> None:
    paths = []
    for name in ("left", "right"):
        root = tmp_path / name
        (root / "data").mkdir(parents=True)
        (root / "data" / "x.txt").write_text("same bytes")
        instance.register_storage(root)
        paths.append(root / "data" / "x.txt")
    saved = ll.save([ll.Artifact(p) for p in paths])
    assert [a.key for a in saved] == ["data/x.txt", "right/data/x.txt"]
    assert saved[0].uid != saved[1].uid
    assert [a.key for a in ll.save([ll.Artifact(p) for p in paths])] == [
        "data/x.txt",
        "right/data/x.txt",
    ]


# -- inputs whose bytes are gone -----------------------------------------------------------------


def test_a_gone_input_keeps_its_edge_and_is_filled_in_later(
    instance: Instance, tmp_path: Path
) -> None:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="align", kind="process", engine_task_id="1")
    ref = rec.use(step, "data/reads.fq", role="reads")  # imported after it was deleted
    assert ref is not None and not ref.available and ref.hash is None
    assert ref.location == str(root / "data" / "reads.fq") and ref.run_id is None
    assert [a.uid for a in step.run.inputs.all()] == [ref.uid]
    assert rec.use(step, "data/reads.fq", role="reads").uid == ref.uid  # a replay: same record
    # the bytes come back: saving them at that location fills the reference in
    (root / "data" / "reads.fq").write_text("@r1\nACGT\n+\nIIII\n")
    filled = ll.Artifact(root / "data" / "reads.fq").save()
    assert filled.uid == ref.uid and filled.available and filled.hash is not None
    assert filled.store_tag is not None  # reads check it like any saved record's
    with open(ll.Artifact.get(uid=ref.uid).cache(), "rb") as handle:
        assert handle.read() == b"@r1\nACGT\n+\nIIII\n"


# -- a workflow run's own lineage ----------------------------------------------------------------


def test_a_workflow_runs_lineage_shows_its_steps(instance: Instance, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    record_project(root, "toy")
    workflow = ll.Run.get(engine="toy", parent_id__isnull=True)
    graph = workflow.lineage(direction="both")
    steps = {n.transform_key for n in graph.runs} - {"words"}
    assert steps == {"split", "count", "merge"}
    assert len(graph.runs) == 5  # the workflow run and its 4 steps
    keys = {n.key for n in graph.artifacts}
    assert keys == {
        "data/raw.txt",
        "out/a.txt",
        "out/b.txt",
        "out/a.count",
        "out/b.count",
        "out/total.txt",
        "logs/merge.log",
    }
    kinds = [e.kind for e in graph.edges]
    assert kinds.count("parent") == 4 and kinds.count("produced") == 6
    assert kinds.count("used") == 5
    # upstream alone still shows every step and what it made
    assert {n.key for n in workflow.lineage(direction="upstream").artifacts} == keys
    assert len(workflow.lineage(depth=0).nodes) == 12  # its own graph, nothing beyond
