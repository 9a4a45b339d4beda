"""Migration 0027 on SQLite catalogs holding what lakeline did not make: rows whose foreign keys
point nowhere (a run deleted in the sqlite3 shell, where foreign keys are off by default), a
view over a rebuilt table, a trigger of another table that names one. The rebuild keeps them as
they were and migrates; it must neither take old dangling rows for violations it made nor fail
on, or lose, a view or trigger that names a table it rebuilds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from lakeline.db.migrate import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    migrating,
    upgrade,
)
from lakeline.db.sqlite_functions import register
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder

pytestmark = pytest.mark.parametrize("instance", ["sqlite"], indirect=True)

VIEW = (
    "CREATE VIEW my_outputs AS SELECT a.key, r.engine_ref "
    "FROM artifacts a JOIN runs r ON r.id = a.run_id"
)
TRIGGER = (
    "CREATE TRIGGER my_touch AFTER INSERT ON run_inputs BEGIN "
    "UPDATE runs SET status = status WHERE id = NEW.run_id; END"
)


def _recorded(root: Path) -> None:
    (root / "in.txt").write_text("in")
    (root / "out.txt").write_text("out")
    rec = BatchRecorder("mig", root=root, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="pipeline", engine_run_id="w")
    step = rec.start_step(workflow, key="align", kind="rule", engine_task_id="s")
    rec.use(step, root / "in.txt")
    rec.produce(step, root / "out.txt")
    rec.finish_step(step)
    rec.finish_workflow(workflow)
    rec.flush()


def _at_0026(instance: Instance) -> Path:
    """The catalog taken back to 0026; its file (no connection of the engine left open)."""
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0026")
    instance.engine.dispose()
    return Path(instance.engine.url.database or "")


def _shell(db: Path, *statements: str) -> None:
    """`statements` as the sqlite3 shell runs them: foreign keys off, autocommit."""
    raw = sqlite3.connect(db, isolation_level=None)
    try:
        register(raw)  # the functions lakeline's triggers call
        for statement in statements:
            raw.execute(statement)
    finally:
        raw.close()


def _violations(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return sorted(map(tuple, conn.execute("PRAGMA foreign_key_check").fetchall()), key=repr)


def _at_head(instance: Instance) -> bool:
    with instance.engine.connect() as conn:
        return current_revision(conn) == HEAD_REVISION


def test_0027_migrates_a_catalog_with_dangling_references_made_before_it(
    instance: Instance, tmp_path: Path
) -> None:
    _recorded(tmp_path)
    db = _at_0026(instance)
    _shell(
        db,
        "DELETE FROM runs WHERE engine_ref = 'w/s'",
        "DELETE FROM transforms WHERE key = 'pipeline'",
        "DELETE FROM users",
    )
    before = _violations(db)
    assert {row[0] for row in before} >= {"artifacts", "run_inputs", "runs"}, before
    upgrade(instance.engine)
    assert _at_head(instance)
    assert _violations(db) == before


def test_0027_keeps_a_view_and_a_trigger_that_name_a_rebuilt_table(
    instance: Instance, tmp_path: Path
) -> None:
    _recorded(tmp_path)
    db = _at_0026(instance)
    _shell(db, VIEW, TRIGGER)
    with sqlite3.connect(db) as conn:
        seen = sorted(conn.execute("SELECT * FROM my_outputs").fetchall())
    assert seen == [("out.txt", "w/s")], seen
    upgrade(instance.engine)  # failed: "error in view my_outputs: no such table: main.runs"
    assert _at_head(instance)
    with sqlite3.connect(db) as conn:
        made = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'my_%'"))
        assert made == {"my_outputs": VIEW, "my_touch": TRIGGER}, made
        assert sorted(conn.execute("SELECT * FROM my_outputs").fetchall()) == seen
