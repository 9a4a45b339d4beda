"""Migration 0028: `artifacts.through_link`. A catalog at 0027 holding a link's record is
upgraded (its rows kept, unmarked: NULL), saves then mark their records, the audit logs the
mark; SQLite's triggers of `artifacts` are then those of a catalog made at 0028, in the same
order (SQLite runs a table's triggers newest first). Downgrade: the column gone, the triggers
as at 0027, in order; rows kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from alembic import command
from lakeline.db.migrate import alembic_config, current_revision, migrating, upgrade
from lakeline.errors import UnexpectedSchema
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder


def _to(instance: Instance, revision: str) -> None:
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _columns(instance: Instance) -> list[str]:
    with instance.engine.connect() as conn:
        if instance.dialect == "sqlite":
            query = "SELECT name FROM pragma_table_info('artifacts')"
        else:
            query = (
                "SELECT column_name FROM information_schema.columns WHERE table_name = "
                "'artifacts' AND table_schema = current_schema() ORDER BY ordinal_position"
            )
        return list(conn.exec_driver_sql(query).scalars())


def _triggers(instance: Instance) -> list[tuple[str, str]]:
    """SQLite: the triggers of `artifacts` in the order they were made; PostgreSQL: its audit
    function's definition."""
    with instance.engine.connect() as conn:
        if instance.dialect == "sqlite":
            found = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'artifacts' ORDER BY rowid"
            )
        else:
            found = conn.exec_driver_sql(
                "SELECT p.proname::text, pg_get_functiondef(p.oid) FROM pg_proc p "
                "WHERE p.proname = 'lakeline_audited_artifacts'"
            )
        return [(str(name), str(sql)) for name, sql in found.all()]


def _rows(instance: Instance) -> list[dict[str, Any]]:
    with instance.engine.connect() as conn:
        result = conn.exec_driver_sql("SELECT * FROM artifacts ORDER BY id")
        return [dict(row._mapping) for row in result]


def _inserted(instance: Instance, key: str) -> dict[str, Any]:
    """The audit log's insert entry of the record with `key`."""
    with instance.engine.connect() as conn:
        for (changes,) in conn.exec_driver_sql(
            "SELECT changes FROM audit_log WHERE tbl = 'artifacts' AND action = 'insert'"
        ):
            entry = changes if isinstance(changes, dict) else json.loads(changes)
            if entry.get("key") == key:
                return dict(entry)
    raise AssertionError(f"no insert of {key} in the audit log")


def test_0028_marks_new_records_and_leaves_older_ones_unknown(
    instance: Instance, tmp_path: Path
) -> None:
    made = _triggers(instance), _columns(instance)  # a catalog made at 0028
    assert made[1][-1] == "through_link"
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw\n")
    (root / "data" / "new.txt").write_text("new\n")
    (root / "out" / "link.txt").symlink_to("../data/raw.txt")
    (root / "out" / "new.txt").symlink_to("../data/new.txt")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    mklink = rec.start_step(wf, key="mklink", kind="rule", engine_task_id="1")
    rec.produce(mklink, "out/link.txt", key="out/link.txt")
    rec.finish_step(mklink)
    rec.finish_workflow(wf, "completed")

    _to(instance, "0027")  # the catalog as 0027 had it: a link's record, unmarked
    at_0027 = _triggers(instance), _columns(instance)
    assert "through_link" not in at_0027[1] and at_0027[1] == made[1][:-1]
    before = _rows(instance)
    assert [row["key"] for row in before] == ["out/link.txt"]
    if instance.dialect == "sqlite":
        assert [name for name, _ in at_0027[0]] == [name for name, _ in made[0]]
        assert all("through_link" not in sql for _, sql in at_0027[0])
    else:
        assert "through_link" not in at_0027[0][0][1]

    upgrade(instance.engine)
    with instance.engine.connect() as conn:
        assert current_revision(conn) == "0028"
    assert (_triggers(instance), _columns(instance)) == made
    after = _rows(instance)
    assert [row.pop("through_link") for row in after] == [None]  # unknown: recorded before
    assert after == before
    assert ll.Artifact.get(key="out/link.txt").through_link is None
    # a new save is marked, and the audit logs its mark (as every column)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="wf", engine_run_id="r2")
    step = rec.start_step(wf, key="again", kind="rule", engine_task_id="2")
    rec.produce(step, "out/new.txt", key="out/new.txt")
    rec.produce(step, "data/new.txt", key="kept/new.txt")
    rec.finish_step(step)
    marks = {a.key: a.through_link for a in ll.Artifact.filter()}
    assert marks == {"out/link.txt": None, "out/new.txt": True, "kept/new.txt": False}
    assert _inserted(instance, "out/new.txt")["through_link"] in (True, 1)
    assert _inserted(instance, "kept/new.txt")["through_link"] in (False, 0)
    # a record from before is asked of the file system (the link is there: not the file's)
    use = rec.start_step(wf, key="use", kind="rule", engine_task_id="3")
    rec.use(use, "data/raw.txt")
    rec.finish_step(use)
    run = ll.Run.get(engine="toy", transform__key="use")
    assert [(a.key, a.run_id) for a in run.inputs.all()] == [("data/raw.txt", None)]

    _to(instance, "0027")
    assert (_triggers(instance), _columns(instance)) == at_0027
    kept = _rows(instance)
    assert [row["key"] for row in kept] == [
        "out/link.txt",
        "out/new.txt",
        "kept/new.txt",
        "data/raw.txt",
    ]
    assert kept[0] == before[0]
    upgrade(instance.engine)
    assert (_triggers(instance), _columns(instance)) == made
    assert [row["through_link"] for row in _rows(instance)] == [None] * 4


def test_0028_refuses_an_audit_trigger_changed_by_hand(instance: Instance) -> None:
    """SQLite: an audit trigger of `artifacts` not as lakeline made it (it would be made again
    for the new column list, losing the change): UnexpectedSchema names it, nothing migrated."""
    if instance.dialect != "sqlite":
        pytest.skip("PostgreSQL's audit function is made from the columns (install_audits)")
    _to(instance, "0027")
    with instance.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER lakeline_audit_artifacts_delete")
        conn.exec_driver_sql(
            "CREATE TRIGGER lakeline_audit_artifacts_delete AFTER DELETE ON artifacts "
            "BEGIN SELECT 1; END"
        )
    before = _triggers(instance), _columns(instance)
    with pytest.raises(UnexpectedSchema, match="lakeline_audit_artifacts_delete"):
        upgrade(instance.engine)
    with instance.engine.connect() as conn:
        assert current_revision(conn) == "0027"
    assert (_triggers(instance), _columns(instance)) == before
