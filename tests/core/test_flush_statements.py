"""What one BatchRecorder flush sends: as many statements whatever its number of steps (its
runs one INSERT, not a look-up and a COPY beyond 16), on PostgreSQL the same texts too for up
to `RETURNING` files, so psycopg converts and prepares each once (a multi-row VALUES was a new
text for every row count, re-parsed at every call beyond 50 parameters)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from statements import recorded

LONG = 600_000.0  # ms: never due by age in a test


def _flushes(instance: Instance, root: Path, n: int) -> tuple[list[str], list[str]]:
    """The SQL of two later flushes of `n` steps each: steps started and finished in one
    batch (inserted finished), then steps started in one batch and finished in the next."""
    root.mkdir()
    rec = BatchRecorder(f"toy{n}", root=root, steps=1000, ms=LONG, started_ms=LONG)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()

    def steps(first: int) -> list[object]:
        made = []
        for i in range(first, first + n):
            name = f"{n}-{i}.txt"  # keys of their own: no clash with another call's
            (root / f"in{name}").write_text(f"in {i}")
            (root / f"out{name}").write_text(f"out {i}")
            step = rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i))
            rec.use(step, f"in{name}")
            rec.produce(step, f"out{name}")
            made.append(step)
        return made

    for first in (0, n):  # a first flush (what a connection reads once), then a later one
        for step in steps(first):
            rec.finish_step(step)  # type: ignore[arg-type]
        with recorded(instance.engine) as new:
            rec.flush()
    later = steps(2 * n)
    rec.flush()  # written as started
    for step in later:
        rec.finish_step(step)  # type: ignore[arg-type]
    with recorded(instance.engine) as finished:
        rec.flush()
    assert ll.Run.filter(engine=rec.engine, status="completed").count() == 3 * n
    assert ll.Artifact.filter(key__startswith="").count() >= 6 * n
    return [sql for sql, _ in new], [sql for sql, _ in finished]


def test_a_flush_sends_as_many_statements_whatever_its_steps(
    instance: Instance, tmp_path: Path
) -> None:
    few = _flushes(instance, tmp_path / "few", 2)
    more = _flushes(instance, tmp_path / "more", 7)  # 14 files: within RETURNING
    many = _flushes(instance, tmp_path / "many", 30)  # 60 files, 30 runs: no COPY nor look-up
    assert [len(s) for s in few] == [len(s) for s in more]
    assert all(len(s) <= 6 for s in few)
    # SQLite (in process: no round trips) inserts more than 16 rows with a read of the last
    # id, the VALUES, and a read of the ids: two statements more, whatever the rows
    assert all(len(s) <= (6 if instance.dialect == "postgresql" else 8) for s in many)
    if instance.dialect == "postgresql":
        assert [len(s) for s in few] == [len(s) for s in many]
        assert few == more  # the same texts: converted and prepared once
        assert few[0][0] == many[0][0]  # the runs' INSERT, however many
