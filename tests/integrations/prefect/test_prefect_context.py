"""Subflows as child runs, the lakeline API inside task bodies, and Prefect assets."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pf_assets
import pf_flows
import pytest
from lakeline.instance import Instance
from lakeline.testing_servers import S3Server
from test_prefect_flows import ENGINE, prepare


def test_subflows_are_child_runs_of_their_caller(workdir: Path, instance: Instance) -> None:
    raw = prepare(workdir)
    other = workdir / "data" / "other.txt"
    other.write_text("more words here")
    assert pf_flows.outer(raw, other) == [
        workdir / "out" / "raw.upper",
        workdir / "out" / "other.upper",
    ]
    (top,) = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).all()
    assert top.transform.key == "outer" and top.status == "completed"
    children = {(r.transform.kind, r.transform.key): r for r in top.children.all()}
    assert set(children) == {("flow", "inner"), ("task", "launch")}
    direct, launch = children[("flow", "inner")], children[("task", "launch")]
    (from_task,) = launch.children.all()  # the flow run the task started
    for sub, upper in ((direct, "out/raw.upper"), (from_task, "out/other.upper")):
        assert sub.transform.key == "inner" and sub.status == "completed"
        assert sub.transform.parent_id is None  # a pipeline of its own, not a step of outer
        (shout,) = sub.children.all()
        assert shout.transform.key == "shout" and shout.transform.parent_id == sub.transform_id
        assert ll.Artifact.get(key=upper).run_id == shout.id
    assert direct.transform_id == from_task.transform_id
    # the lineage graph walks from an output up through the subflow to the flow run
    upper = ll.Artifact.get(key="out/raw.upper")
    assert upper.run is not None and upper.run.parent.parent.id == top.id  # type: ignore[union-attr]


def test_lakeline_api_in_task_bodies_is_attributed_to_the_run(
    workdir: Path, instance: Instance, tmp_path: Path
) -> None:
    raw = prepare(workdir)
    report = tmp_path / "elsewhere" / "words.txt"  # outside the workflow folder: uploaded
    report.parent.mkdir()
    uid = pf_flows.cataloged(raw, report)
    (workflow,) = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).all()
    (step,) = workflow.children.all()
    assert step.transform.key == "catalog"
    saved = ll.Artifact.get(uid=uid)
    assert saved.key == "reports/words.txt" and saved.run_id == step.id
    assert saved.load() == "7 words\n"
    notes = ll.Artifact.get(key="data/notes.txt")
    assert notes.run_id == workflow.id  # saved in the flow body: the flow run's output
    raw_artifact = ll.Artifact.get(key="data/raw.txt")
    assert [a.id for a in workflow.inputs.all()] == [raw_artifact.id]  # the flow's parameter
    # loaded in the task body (and a parameter): an input of the task run, not of the flow
    assert [a.id for a in step.inputs.all()] == [raw_artifact.id]
    # outside a flow nothing is current any more
    from lakeline.lineage.context import current_run

    assert current_run() is None


def test_materialized_assets_are_artifacts(workdir: Path, instance: Instance) -> None:
    raw = prepare(workdir)
    assert pf_assets.assets(raw) == (7, "alpha")
    (workflow,) = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).all()
    steps = {r.transform.key: r for r in workflow.children.all()}
    tabulate, warehouse, peek = steps["tabulate"], steps["load_warehouse"], steps["peek"]
    table = ll.Artifact.get(key="out/table.csv")
    assert table.run_id == tabulate.id and list(table.load()["word"])[:2] == ["alpha", "beta"]
    summary = tabulate.params["@prefect"]["assets"]
    assert summary["materialized"] == ["file://out/table.csv"]
    assert summary["properties"]["file://out/table.csv"]["name"] == "word table"
    # the table asset: kept by key in params (nothing to hash), its upstream file linked
    wh = warehouse.params["@prefect"]["assets"]
    assert wh["materialized"] == [pf_assets.WAREHOUSE] and wh["by"] == "pandas"
    assert wh["referenced"] == ["file://out/table.csv"]
    assert [a.id for a in warehouse.inputs.all()] == [table.id]
    (stored,) = ll.Artifact.filter(run_id=warehouse.id).all()  # the table: a reference
    assert stored.location == pf_assets.WAREHOUSE and not stored.available
    # asset_deps: an input although no value was passed
    assert [a.id for a in peek.inputs.all()] == [table.id]
    assert peek.params["@prefect"]["assets"]["referenced"] == ["file://out/table.csv"]
    # a second run finds the same reference (a location without hash is one record)
    pf_assets.assets(raw)
    assert ll.Artifact.filter(available=False).count() == 1


def test_mapped_tasks_on_threads_attribute_files_to_their_own_run(
    workdir: Path, instance: Instance
) -> None:
    import lakeline_prefect

    lakeline_prefect.configure(audit=True)
    names = [f"n{i}" for i in range(8)]
    (workdir / "data").mkdir()
    for name in names:
        (workdir / "data" / f"{name}.txt").write_text(f"text of {name}")
    assert pf_flows.stamped(names) == names
    (workflow,) = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).all()
    runs = workflow.children.all()
    assert len(runs) == 8
    for run in runs:
        name = run.params["name"]
        assert {a.key for a in run.inputs.all()} == {f"data/{name}.txt"}  # opened: audit
        made = {a.key for a in ll.Artifact.filter(run_id=run.id).all()}
        # written (audit) and saved with ll.Artifact in the body (run context); the copy is
        # one file at one location: the record the body saved, under the key it gave
        assert made == {f"out/{name}.done", f"copies/{name}.txt"}


def test_remote_files_through_fsspec(
    workdir: Path,
    instance: Instance,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import s3fs

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="in/raw.txt", Body=b"remote words\n")
    src, dest = f"s3://{s3_bucket}/in/raw.txt", f"s3://{s3_bucket}/out/upper.txt"
    assert pf_flows.on_s3(src, dest) == dest
    (workflow,) = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).all()
    (step,) = workflow.children.all()
    (used,) = step.inputs.all()
    assert used.load() == "remote words\n"  # content hashed by lakeline, not trusted by name
    (made,) = ll.Artifact.filter(run_id=step.id).all()
    assert made.load() == "REMOTE WORDS\n" and step.params["dest"] == dest


def test_async_tasks_save_into_their_own_runs(workdir: Path, instance: Instance) -> None:
    import asyncio

    first, second = asyncio.run(pf_flows.noted(workdir))
    (workflow,) = ll.Run.filter(engine=ENGINE, parent_id__isnull=True).all()
    runs = {r.params["name"]: r for r in workflow.children.all()}
    assert ll.Artifact.get(uid=first).run_id == runs["first"].id
    assert ll.Artifact.get(uid=second).run_id == runs["second"].id


def test_flow_called_from_a_tracked_function_nests_under_its_run(
    workdir: Path, instance: Instance
) -> None:
    raw = prepare(workdir)

    @ll.tracked(key="driver")
    def driver() -> Path:
        return pf_flows.words(raw)

    driver()
    (call,) = ll.Run.filter(transform__key="driver").all()
    (flow_run,) = ll.Run.filter(engine=ENGINE, transform__key="words").all()
    assert flow_run.parent_id == call.id and call.status == "completed"
