"""`lakeline redun import`: real redun runs, imported and checked edge by edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
import redun_flows as rf
from lakeline.instance import Instance
from lakeline.testing import ExpectedStep, RecorderConformance, lineage_snapshot
from lakeline_redun import import_redun
from redun import File
from redun_project import Flow


def steps(flow: Flow) -> dict[str, ll.Run]:
    """The runs of the flow's (latest) execution, by task name (+ label for count)."""
    runs = {}
    for run in ll.Run.filter(engine="redun", parent_id__isnull=False):
        key = run.transform.key
        if key == "llt.count":
            key += ":" + str(run.params.get("label"))
        runs[key] = run
    return runs


def inputs(run: ll.Run) -> set[str]:
    return {a.key for a in run.inputs.all()}


def outputs(run: ll.Run) -> set[str]:
    return {a.key for a in ll.Artifact.filter(run_id=run.id)}


def test_import_edge_by_edge(instance: Instance, flow: Flow) -> None:
    flow.run(rf.main(File("raw.txt")))
    result = import_redun(str(flow.db))
    assert len(result.executions) == 1 and result.jobs == 6 and not result.missing

    workflow = ll.Run.get(engine="redun", engine_ref=result.executions[0])
    assert workflow.transform.kind == "pipeline" and workflow.transform.key == "llt.main"
    assert workflow.status == "completed" and workflow.parent is None
    runs = steps(flow)
    assert set(runs) == {
        "llt.main",
        "llt.split",
        "llt.count:n",
        "llt.count:m",
        "llt.merge",
        "llt.report",
    }
    main = runs["llt.main"]
    assert main.parent.id == workflow.id
    for name in ("llt.split", "llt.count:n", "llt.count:m", "llt.merge", "llt.report"):
        assert runs[name].parent.id == main.id, name  # nested jobs are child runs
        assert runs[name].status == "completed"
        assert runs[name].transform.parent_id == workflow.transform.id
        assert runs[name].transform.kind == "task"
    assert inputs(main) == {"raw.txt"} and outputs(main) == set()
    assert inputs(runs["llt.split"]) == {"raw.txt"}
    assert outputs(runs["llt.split"]) == {"out/a.txt", "out/b.txt"}
    assert inputs(runs["llt.count:n"]) == {"out/a.txt"}
    assert outputs(runs["llt.count:n"]) == {"out/a.txt.count"}
    assert inputs(runs["llt.count:m"]) == {"out/b.txt"}
    assert outputs(runs["llt.count:m"]) == {"out/b.txt.count"}
    assert inputs(runs["llt.merge"]) == {"out/a.txt.count", "out/b.txt.count"}
    assert outputs(runs["llt.merge"]) == {"out/total.txt"}
    assert inputs(runs["llt.report"]) == {"out/total.txt"}
    assert outputs(runs["llt.report"]) == {"out/report.txt"}

    split = runs["llt.split"]
    assert split.params["src"]["path"] == "raw.txt" and split.params["src"]["redun_hash"]
    assert runs["llt.count:m"].params["part"]["path"] == "out/b.txt"
    assert split.engine_ref and split.started_at and split.finished_at
    transform = split.transform
    assert "def split(src: File)" in transform.source_code
    assert transform.reference and len(transform.reference) == 40  # redun's task hash
    total = ll.Artifact.get(key="out/total.txt")
    assert total.in_place and total.load() == "8"  # lakeline's own content hash
    assert total.hash != split.params["src"]["redun_hash"]


def test_reimport_changes_nothing(instance: Instance, flow: Flow) -> None:
    flow.run(rf.main(File("raw.txt")))
    import_redun(str(flow.db))
    before = lineage_snapshot("redun")
    import_redun(str(flow.db))
    assert lineage_snapshot("redun") == before


def test_failing_task(instance: Instance, flow: Flow) -> None:
    with pytest.raises(ValueError, match="boom"):
        flow.run(rf.main(File("raw.txt"), fail=True))
    import_redun(str(flow.db))
    runs = steps(flow)
    assert runs["llt.boom"].status == "errored"
    assert "ValueError: boom: bad input" in runs["llt.boom"].error
    assert inputs(runs["llt.boom"]) == {"raw.txt"} and outputs(runs["llt.boom"]) == set()
    assert runs["llt.main"].status == "errored"
    workflow = ll.Run.get(engine="redun", parent_id__isnull=True)
    assert workflow.status == "errored" and "boom" in workflow.error


def test_cached_rerun_links_to_the_producing_job(instance: Instance, flow: Flow) -> None:
    flow.run(rf.main(File("raw.txt")))
    flow.run(rf.main(File("raw.txt")))
    result = import_redun(str(flow.db))
    first, second = result.executions
    first_runs = {
        r.transform.key + str(r.params.get("label")): r
        for r in ll.Run.filter(engine="redun", parent__parent__engine_ref=first)
    }
    cached = ll.Run.filter(engine="redun", parent__parent__engine_ref=second).all()
    assert len(cached) == 5
    for run in cached:
        assert run.status == "cached"
        original = first_runs[run.transform.key + str(run.params.get("label"))]
        assert run.cached_from_id == original.id
        assert outputs(run) == set()  # outputs stay with the run that made them
    assert ll.Artifact.get(key="out/total.txt").run.parent.parent.engine_ref == first


def test_one_execution_by_id_prefix(instance: Instance, flow: Flow) -> None:
    flow.run(rf.main(File("raw.txt")))
    (flow.root / "raw.txt").write_text("one two three")
    flow.run(rf.main(File("raw.txt")))
    from redun.backends.db import Execution

    ids = [e.id for e in ll_executions(flow)]
    result = import_redun(str(flow.db), execution=ids[1][:8])
    assert result.executions == [ids[1]]
    assert ll.Run.filter(engine="redun", parent_id__isnull=True).count() == 1
    assert ll.Artifact.get(key="out/total.txt").load() == "4"  # "one tw" + "o three"
    assert Execution  # the model the ids came from


def ll_executions(flow: Flow) -> list:
    from lakeline_redun.reader import executions, open_backend

    backend = open_backend(str(flow.db))
    try:
        return executions(backend.session, None, str(flow.db))
    finally:
        backend.session.close()


class TestRedunConformance(RecorderConformance):
    """The Recorder contract, for redun imports (steps = jobs directly under the execution)."""

    engine = "redun"

    def run_workflow(self, tmp_path: Path) -> list[ExpectedStep]:
        flow = Flow(tmp_path / "proj")
        flow.run(rf.split(File("raw.txt")))
        import_redun(str(flow.db))
        return [
            ExpectedStep("llt.split", frozenset({"raw.txt"}), frozenset({"out/a.txt", "out/b.txt"}))
        ]

    def replay(self, tmp_path: Path) -> None:
        import_redun(str(tmp_path / "proj" / ".redun" / "redun.db"))


@pytest.mark.postgres
def test_import_from_a_postgresql_redun_database(
    instance: Instance, tmp_path: Path, postgres_server: Any
) -> None:
    import uuid

    url = postgres_server.create_database(f"redun_{uuid.uuid4().hex[:8]}")
    redun_url = "postgresql+psycopg://" + url.split("://", 1)[1]
    flow = Flow(tmp_path / "pg", db_uri=redun_url)
    flow.run(rf.main(File("raw.txt")))
    result = import_redun(url, root=flow.root)  # a plain postgresql:// URL works too
    assert result.jobs == 6 and not result.missing
    assert outputs(steps(flow)["llt.merge"]) == {"out/total.txt"}
