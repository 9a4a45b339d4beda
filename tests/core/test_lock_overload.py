"""PostgreSQL: the per-key lock statement (`db/locks.py`, taken by every save and flush)
calls its functions schema-qualified. A role that may CREATE in the catalog's schema could
otherwise define `public.unnest(integer[])`: an exact match of the call's argument type,
chosen over `pg_catalog`'s polymorphic `unnest(anyarray)` whatever the search path, run with
the privileges of whoever saves next (as tests/core/test_recordset_overload.py for
`jsonb_populate_recordset`)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import connect
from lakeline.lineage.recorder import BatchRecorder
from lakeline.testing import LoginRoles
from sqlalchemy import text
from test_helper_schema_ops import writer_may_create

pytestmark = pytest.mark.postgres

LONG = 600_000.0  # ms: never due by age in a test


def test_a_writers_unnest_in_public_never_runs(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A writer defines `public.unnest(integer[])`; the owner then saves files and flushes
    steps (each takes the key locks): all written, and the writer's function never ran."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _, writer = writer_may_create(owner, login_roles)
    with writer.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION public.unnest(integer[]) RETURNS SETOF integer "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'a writer''s function ran'; END $$"
            )
        )
    connect("owner")
    root = tmp_path / "files"
    root.mkdir()
    for i in range(3):
        (root / f"in-{i}.txt").write_text(f"in {i}")
    saved = ll.save([ll.Artifact(str(root / f"in-{i}.txt"), key=f"k/{i}.txt") for i in range(3)])
    assert len(saved) == 3
    rec = BatchRecorder("toy", root=root, steps=1000, ms=LONG, started_ms=LONG)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="0")
    rec.use(step, "in-0.txt")
    rec.finish_step(step)
    rec.flush()
    later = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    rec.flush()  # written as started, finished by the next flush's UPDATE
    rec.finish_step(later)
    rec.flush()
    assert ll.Run.filter(engine=rec.engine, status="completed").count() == 2
