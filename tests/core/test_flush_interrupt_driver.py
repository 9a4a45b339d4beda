"""Ctrl-C landing while one of a flush's statements runs (a long INSERT, a lock wait): the
interrupt surfaces as the driver's call returns, inside SQLAlchemy's execution, which then
drops (invalidates) the connection. The flush must raise that KeyboardInterrupt, not another
error, hold no lock, and leave its batch queued for the next flush, whichever way the
statement is run (`exec_driver_sql`, or `db.driver.driver_rows`). On SQLite the statement's
cursor is closed before the connection is dropped: else sqlite3 keeps the closed connection
holding the write lock until the garbage collector finds that cursor."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from sqlalchemy import event


@pytest.mark.parametrize("first_word", ["INSERT INTO runs", "INSERT INTO run_inputs", "BEGIN"])
def test_an_interrupt_during_a_statement_of_the_flush_is_raised_as_it_is(
    instance: Instance, tmp_path: Path, first_word: str
) -> None:
    if first_word == "BEGIN" and instance.dialect != "sqlite":
        pytest.skip("PostgreSQL's BEGIN is the driver's own, not a statement lakeline runs")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    (tmp_path / "in.txt").write_text("in")
    (tmp_path / "out.txt").write_text("out")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="0")
    rec.use(step, "in.txt")
    rec.produce(step, "out.txt")
    rec.finish_step(step)
    armed = [True]

    def interrupted(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        """Run the statement, then the interrupt lands (as the driver's call returns)."""
        if not (armed[0] and statement.startswith(first_word)):
            return False
        armed[0] = False
        cursor.execute(statement, parameters)
        raise KeyboardInterrupt

    event.listen(instance.engine, "do_execute", interrupted)
    gc.disable()  # as between two collections: only closing the cursor may release the lock
    try:
        with pytest.raises(KeyboardInterrupt):
            rec.flush()
        if instance.dialect == "sqlite":  # no connection left holding the write lock
            other = sqlite3.connect(str(instance.engine.url.database), timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" while one holds it
                other.rollback()
            finally:
                other.close()
    finally:
        gc.enable()
        event.remove(instance.engine, "do_execute", interrupted)
    assert not armed[0]
    assert step.run.id is None  # rolled back: queued again, unsaved
    rec.flush()
    (run,) = ll.Run.filter(engine="toy", engine_ref="r/0")
    assert run.id == step.run.id and run.status == "completed"
    assert [a.key for a in run.inputs.all()] == ["in.txt"]
    assert [a.key for a in run.outputs.all()] == ["out.txt"]
