"""Live capture through `setup_scheduler`: same lineage as importing the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
import redun_flows as rf
from lakeline.instance import Instance, init
from lakeline_redun import LakelineScheduler, import_redun
from redun import File
from redun_project import Flow


def lineage() -> list[tuple[Any, ...]]:
    """Every redun run of the current instance, with its edges, by engine ids only."""
    rows = []
    for run in ll.Run.filter(engine="redun"):
        parent = run.parent.engine_ref if run.parent is not None else None
        origin = ll.Run.get(id=run.cached_from_id).engine_ref if run.cached_from_id else None
        rows.append(
            (
                run.engine_ref,
                run.transform.key,
                run.transform.kind,
                run.status,
                parent,
                origin,
                json.dumps(run.params, sort_keys=True),
                (run.error or "").splitlines()[:1],
                sorted((a.key, a.hash) for a in run.inputs.all()),
                sorted((a.key, a.hash) for a in ll.Artifact.filter(run_id=run.id)),
            )
        )
    return sorted(rows, key=repr)


def test_live_and_import_give_the_same_lineage(
    instance: Instance, flow: Flow, tmp_path: Path
) -> None:
    flow.run(rf.main(File("raw.txt")), live=True)
    flow.run(rf.main(File("raw.txt")), live=True)  # cached
    with pytest.raises(ValueError, match="boom"):
        flow.run(rf.main(File("raw.txt"), fail=True), live=True)
    live = lineage()
    assert len([r for r in live if r[4] is None]) == 3  # three workflow runs
    assert {r[3] for r in live} == {"completed", "cached", "errored"}
    assert all(r[3] != "started" for r in live)

    init(storage=tmp_path / "other", name="other")  # a second, empty instance
    assert ll.Run.filter(engine="redun").count() == 0
    import_redun(str(flow.db))
    assert lineage() == live


def test_live_records_while_running(instance: Instance, flow: Flow) -> None:
    flow.run(rf.main(File("raw.txt")), live=True)
    report = ll.Artifact.get(key="out/report.txt")
    assert report.run.transform.key == "llt.report" and report.run.status == "completed"
    assert ll.Artifact.get(key="out/total.txt").load() == "8"
    before = ll.Run.filter(engine="redun").count()
    import_redun(str(flow.db))  # importing after a live capture changes nothing
    assert ll.Run.filter(engine="redun").count() == before


def test_setup_scheduler_from_redun_ini(instance: Instance, flow: Flow) -> None:
    from redun.cli import setup_scheduler

    (flow.root / ".redun" / "redun.ini").write_text(
        "[backend]\n"
        f"db_uri = {flow.db_uri}\n"
        "[scheduler]\n"
        "setup_scheduler = lakeline_redun::setup_scheduler\n"
    )
    scheduler = setup_scheduler(config_dir=str(flow.root / ".redun"), migrate=True)
    assert isinstance(scheduler, LakelineScheduler)
