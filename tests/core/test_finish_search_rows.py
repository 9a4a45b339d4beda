"""Finishing a run leaves its search text alone unless its error text changes: on SQLite the
runs' search trigger (`AFTER UPDATE OF engine, engine_ref, host, error`, migration 0015) runs
whenever the UPDATE's SET names `error`, changed or not, tokenizing both texts in Python and
rewriting the run's FTS5 row and vocabulary counts. PostgreSQL has no such trigger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder
from lakeline.search_vocab import tokens_json
from sqlalchemy import event


@contextmanager
def tokenized(instance: Instance) -> Iterator[list[tuple[Any, ...]]]:
    """The texts the search triggers tokenize (`lakeline_tokens(...)`) meanwhile."""
    if instance.dialect == "postgresql":
        pytest.skip("SQLite's search triggers tokenize in Python; PostgreSQL has none")
    calls: list[tuple[Any, ...]] = []

    def counted(*values: Any) -> str:
        calls.append(values)
        return tokens_json(*values)

    def register(conn: Any, cursor: Any, *args: Any) -> None:
        cursor.connection.create_function("lakeline_tokens", -1, counted, deterministic=True)

    event.listen(instance.engine, "before_cursor_execute", register)
    try:
        yield calls
    finally:
        event.remove(instance.engine, "before_cursor_execute", register)
        with instance.engine.connect() as conn:  # the pooled connections as they were
            conn.connection.driver_connection.create_function(  # type: ignore[union-attr]
                "lakeline_tokens", -1, tokens_json, deterministic=True
            )


def _runs(rec: Recorder, n: int) -> tuple[Any, list[Any]]:
    wf = rec.start_workflow(key="p", engine_run_id="r")
    steps = [rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i)) for i in range(n)]
    return wf, steps


def test_a_plain_finish_does_not_rewrite_the_search_row(instance: Instance) -> None:
    rec = Recorder("toy")
    _, steps = _runs(rec, 2)
    with tokenized(instance) as calls:
        rec.finish_step(steps[0], "completed")
        assert calls == []  # no error given: the SET names no error
        rec.finish_step(steps[1], "errored", error="it broke")
        assert {c[1] for c in calls} == {"r/1"} and ("toy", "r/1", "vm", "it broke") in calls
    assert [r.id for r in ll.Run.search("broke")] == [steps[1].run.id]


def test_a_batched_finish_does_not_rewrite_the_search_row(instance: Instance) -> None:
    rec = BatchRecorder("toy", steps=100, ms=600_000)
    wf, early = _runs(rec, 3)
    rec.flush()  # runs of an earlier batch: finished by finish_found
    with tokenized(instance) as calls:
        late = [rec.start_step(wf, key="s", kind="rule", engine_task_id=i) for i in "ab"]
        for step in [*early[:2], *late]:
            rec.finish_step(step, "completed")
        rec.finish_step(early[2], "errored", error="it broke")
        rec.flush()
    # the new runs' inserts and the error's update, not the other finishes
    assert sorted({c[1] for c in calls}) == ["r/2", "r/a", "r/b"]
    assert sorted(c[1] for c in calls if c[1] != "r/2") == ["r/a", "r/b"]
    statuses = {
        r.engine_ref: r.status for r in ll.Run.filter(engine="toy", parent_id__isnull=False)
    }
    assert statuses == {"r/0": "completed", "r/1": "completed", "r/2": "errored"} | {
        "r/a": "completed",
        "r/b": "completed",
    }
    assert [r.id for r in ll.Run.search("broke")] == [early[2].run.id]
