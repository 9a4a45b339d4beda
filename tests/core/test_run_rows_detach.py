"""The run records a flush builds from the rows its statements return (`run_rows._loaded`:
finished runs, `Finish.row`) and the runs it inserts (`insert_new_runs`) leave the state
SQLAlchemy's own per-column `set_committed_value` and `make_transient_to_detached` leave,
attribute by attribute, and behave as loaded records (a relationship loads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.run_rows import Finish, _loaded, _table
from sqlalchemy import inspect, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value


def _state(run: ll.Run) -> dict[str, Any]:
    state = inspect(run)
    return {
        "key": state.key,
        "flags": (state.transient, state.pending, state.detached, state.persistent),
        "modified": state.modified,
        "committed": dict(state.committed_state),
        "expired": set(state.expired_attributes),
        "unloaded": set(state.unloaded),
        "dict": {k: v for k, v in state.dict.items() if not k.startswith("_")},
    }


def _reference(row: Any) -> ll.Run:
    """A record of `row` built the ORM's way (what run_rows did before)."""
    record: ll.Run = ll.Run.__mapper__.class_manager.new_instance()
    for column, value in zip(_table().columns, row, strict=True):
        set_committed_value(record, column.key, value)
    make_transient_to_detached(record)
    return record


def _workflow(tmp_path: Path, n: int) -> tuple[BatchRecorder, list[Any]]:
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    steps = [rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i)) for i in range(n)]
    rec.flush()  # inserted (insert_new_runs): finished in a later batch
    return rec, steps


def test_records_from_rows_leave_sqlalchemys_state(instance: Instance, tmp_path: Path) -> None:
    _, steps = _workflow(tmp_path, 3)
    with instance.sessions.read() as session:
        table = _table()
        rows = session.execute(select(*table.columns).where(table.c.engine == "toy")).all()
    assert len(rows) == 4
    for mine, row in zip(_loaded(rows), rows, strict=True):
        reference = _reference(row)
        assert _state(mine) == _state(reference)
        assert inspect(mine).detached and inspect(mine).key[1] == (mine.id,)
    for step in steps:  # inserted by the flush: the same state as a record loaded so
        assert _state(step.run) == _state(_reference([vars(step.run)[c.key] for c in table.c]))


def test_runs_finished_by_a_later_flush_are_usable_records(
    instance: Instance, tmp_path: Path
) -> None:
    rec, steps = _workflow(tmp_path, 2)
    for step in steps:
        rec.finish_step(step, exit_code=0)
    rec.flush()  # finish_found: one UPDATE ... RETURNING, records built from its rows
    run = steps[0].run
    assert inspect(run).detached and run.status == "completed" and run.exit_code == 0
    assert run.transform.key == "s"  # a relationship: loaded on first use
    again = ll.Run.get(run.uid)
    assert (again.status, again.finished_at, again.status_log) == (
        run.status,
        run.finished_at,
        run.status_log,
    )
    with instance.sessions.write() as session:  # Finish.row: the single-run statement
        record = Finish("errored", error="boom").row(session, steps[1].run.id)
    assert record is not None and inspect(record).detached
    assert (record.status, record.error) == ("errored", "boom")
    assert [e["status"] for e in record.status_log] == ["started", "completed", "errored"]
