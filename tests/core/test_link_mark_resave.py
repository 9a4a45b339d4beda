"""A record saved before migration 0028 (`through_link` NULL) that a save finds again in place
at its place under its own key, given, takes the mark that save found (`keying.mark_found`):
a link's record once re-saved through the link, a keyed save's record not; one whose key the
save derived from the place stays unknown. Once the link is gone, a later process tells the
link's record from a keyed save by the mark alone. The audit logs the UPDATE; its chain holds.

A record "saved before 0028" is made as test_migration_linkcol makes it: saved, the catalog
downgraded to 0027 (the column dropped) and upgraded again (NULL); today's code cannot write
a catalog at 0027."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from alembic import command
from lakeline.access.audit import verify
from lakeline.db.migrate import alembic_config, migrating, upgrade
from lakeline.instance import Instance, connect, disconnect
from lakeline.lineage.recorder import BatchRecorder, Recorder


def _to_0027_and_back(instance: Instance) -> None:
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0027")
    upgrade(instance.engine)


def _marks() -> dict[str | None, bool | None]:
    return {a.key: a.through_link for a in ll.Artifact.filter(is_latest=None)}


def _updates(instance: Instance) -> list[dict[str, Any]]:
    """The `changes` of the audit log's updates of `artifacts`, in order."""
    with instance.engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT changes FROM audit_log WHERE tbl = 'artifacts' AND action = 'update' "
            "ORDER BY seq"
        )
        return [c if isinstance(c, dict) else json.loads(c) for (c,) in found]


@pytest.mark.parametrize("how", ["use", "produce", "batched", "api"])
def test_a_record_from_before_0028_resaved_through_its_link_is_marked(
    instance: Instance, tmp_path: Path, how: str
) -> None:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    for name in ("raw", "kept", "plain"):
        (root / "data" / f"{name}.txt").write_text(f"{name} bytes\n")
    (root / "out" / "link.txt").symlink_to("../data/raw.txt")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.produce(mklink, "data/kept.txt", key="kept/kept.txt")
    rec.produce(mklink, "data/plain.txt")
    rec.finish_step(mklink)
    rec.finish_workflow(wf, "completed")
    _to_0027_and_back(instance)
    unknown = {"out/link.txt": None, "kept/kept.txt": None, "data/plain.txt": None}
    assert _marks() == unknown
    audited = len(_updates(instance))

    disconnect()  # a new process: nothing remembered of the link (`keying.note_link`)
    connect("test")
    rec = BatchRecorder("toy", root=root, steps=100) if how == "batched" else Recorder("toy", root)
    wf = rec.start_workflow(key="wf", engine_run_id="r2")
    again = rec.start_step(wf, key="again", kind="rule", engine_task_id="2")
    for path, key in [("out/link.txt", "out/link.txt"), ("data/kept.txt", "kept/kept.txt")]:
        if how == "api":
            ll.Artifact(root / path, key=key).save()
        else:
            getattr(rec, "produce" if how == "produce" else "use")(again, path, key=key)
    rec.use(again, "data/plain.txt")  # its key derived from its place: the save looked at no link
    rec.finish_step(again)
    rec.finish_workflow(wf, "completed")
    if isinstance(rec, BatchRecorder):
        rec.flush()
    assert _marks() == {"out/link.txt": True, "kept/kept.txt": False, "data/plain.txt": None}
    assert [c for c in _updates(instance)[audited:] if "through_link" in c] == [
        {"through_link": [None, True]},
        {"through_link": [None, False]},
    ]
    assert verify(instance).ok
    producer = ll.Run.get(engine="toy", transform__key="mklink").id

    (root / "out" / "link.txt").unlink()  # as Snakemake's temp() does once its readers ran
    disconnect()
    connect("test")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf3", engine_run_id="r3")
    late = rec.start_step(wf, key="late", kind="rule", engine_task_id="3")
    rec.use(late, "data/raw.txt")
    rec.use(late, "data/kept.txt")
    rec.finish_step(late)
    used = ll.Run.get(engine="toy", transform__key="late").inputs.all()
    # the link's record is not the file (its producer made the link); the keyed save is
    assert sorted((a.key, a.run_id) for a in used) == [
        ("data/raw.txt", None),
        ("kept/kept.txt", producer),
    ]
