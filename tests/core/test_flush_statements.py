"""What one BatchRecorder flush sends: the same statements whatever its number of steps (a
few: up to `RETURNING` files), on PostgreSQL the same texts too, so psycopg converts and
prepares each once (a multi-row VALUES was a new text for every row count, re-parsed at every
call beyond 50 parameters)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from statements import recorded

LONG = 600_000.0  # ms: never due by age in a test


def _flushes(instance: Instance, root: Path, n: int) -> tuple[list[str], list[str]]:
    """The SQL of two flushes of `n` steps each: steps started and finished in one batch
    (inserted finished), then steps started in one batch and finished in the next."""
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

    for step in steps(0):
        rec.finish_step(step)  # type: ignore[arg-type]
    with recorded(instance.engine) as new:
        rec.flush()
    later = steps(n)
    rec.flush()  # written as started
    for step in later:
        rec.finish_step(step)  # type: ignore[arg-type]
    with recorded(instance.engine) as finished:
        rec.flush()
    assert ll.Run.filter(engine=rec.engine, status="completed").count() == 2 * n
    assert ll.Artifact.filter(key__startswith="").count() >= 4 * n
    return [sql for sql, _ in new], [sql for sql, _ in finished]


def test_a_flush_sends_as_many_statements_whatever_its_steps(
    instance: Instance, tmp_path: Path
) -> None:
    few = _flushes(instance, tmp_path / "few", 2)
    more = _flushes(instance, tmp_path / "more", 7)  # 14 files: within RETURNING
    assert [len(s) for s in few] == [len(s) for s in more]
    assert all(len(s) <= 6 for s in few)
    if instance.dialect == "postgresql":
        assert few == more  # the same texts: converted and prepared once
