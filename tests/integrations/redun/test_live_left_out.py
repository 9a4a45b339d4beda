"""Live capture when a batch leaves a job out (its run deleted while it runs: StepsNotRecorded,
the rest written): the warning names the job left out, not the root job whose end wrote the
batch. Before: "could not record job <root>", though the root job and its workflow run were
recorded."""

from __future__ import annotations

import logging
import os
import time

import lakeline as ll
import pytest
import redun_flows as rf
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder
from lakeline_redun import LakelineScheduler
from lakeline_redun import scheduler as live
from redun_project import Flow
from sqlalchemy import text


def test_a_job_left_out_is_named_not_the_root_job(
    instance: Instance,
    flow: Flow,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from redun.config import Config

    monkeypatch.setattr(live, "IDLE", 3600.0)  # the timer writes nothing: the root's end does
    monkeypatch.setattr(live, "BATCH_MS", 600_000.0)
    scheduler = LakelineScheduler(
        config=Config({"backend": {"db_uri": flow.db_uri, "automigrate": "True"}})
    )
    deleted: list[int] = []

    def delete_its_run() -> None:  # in `doomed`'s body: its run written, then deleted
        select = text(
            "SELECT r.id FROM runs r JOIN transforms t ON t.id = r.transform_id "
            "WHERE t.key = 'llt.doomed'"
        )
        deadline = time.monotonic() + 60
        while not deleted and time.monotonic() < deadline:
            recorder = scheduler._recorder
            if recorder is not None:
                recorder.flush()  # type: ignore[attr-defined]
                with instance.engine.begin() as conn:
                    found = conn.execute(select).scalar()
                if found is not None:
                    # a run recorded after it: SQLite would give its id to the next run
                    Recorder("toy").start_workflow(key="later", engine_run_id="later")
                    with instance.engine.begin() as conn:
                        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": found})
                    deleted.append(found)
                    return
            time.sleep(0.05)

    monkeypatch.setattr(rf, "DOOM", [delete_its_run])
    cwd = os.getcwd()
    os.chdir(flow.root)
    try:
        scheduler.load()
        with caplog.at_level(logging.WARNING, logger="lakeline.redun"):
            assert scheduler.run(rf.main_doomed(1)) == [2, 2]
    finally:
        os.chdir(cwd)
    assert deleted
    said = [r.getMessage() for r in caplog.records if r.name == "lakeline.redun"]
    root = ll.Run.get(engine="redun", transform__key="llt.main_doomed", parent_id__isnull=False)
    assert root.status == "completed"
    assert ll.Run.get(engine="redun", parent_id__isnull=True).status == "completed"
    assert ll.Run.get(engine="redun", transform__key="llt.kept").status == "completed"
    assert ll.Run.filter(engine="redun", transform__key="llt.doomed").count() == 0
    assert not any(root.engine_ref in s for s in said), said  # the root job was recorded
    assert len(said) == 1 and "1 step(s) not recorded" in said[0], said
    assert "does not exist (deleted since)" in said[0], said
