"""PostgreSQL: the rows-as-JSON INSERT (`db/recordset.py`) calls `jsonb_populate_recordset`
schema-qualified. A role that may CREATE in the catalog's schema could otherwise define
`public.jsonb_populate_recordset(runs, jsonb)`: an exact match of the call's argument types,
chosen over `pg_catalog`'s polymorphic one whatever the search path, run with the privileges
of whoever flushes or saves next (see tests/core/test_helper_schema.py for lakeline's own)."""

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


def test_a_writers_jsonb_populate_recordset_in_public_never_runs(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A writer defines `public.jsonb_populate_recordset` for the runs' and the artifacts'
    row types; the owner then flushes steps (a few and more than 16) and saves files: all
    written, and the writer's functions never ran."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _, writer = writer_may_create(owner, login_roles)
    with writer.engine.begin() as conn:
        for table in ("runs", "artifacts"):
            conn.execute(
                text(
                    f"CREATE FUNCTION public.jsonb_populate_recordset({table}, jsonb) "
                    f"RETURNS SETOF {table} LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'a writer''s function ran'; END $$"
                )
            )
    connect("owner")
    root = tmp_path / "files"
    root.mkdir()
    rec = BatchRecorder("toy", root=root, steps=1000, ms=LONG, started_ms=LONG)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    for n in (3, 20):
        for i in range(n):
            name = f"{n}-{i}"
            (root / f"in-{name}.txt").write_text(f"in {name}")
            step = rec.start_step(wf, key="s", kind="rule", engine_task_id=name)
            rec.use(step, f"in-{name}.txt")
            rec.finish_step(step)
        rec.flush()
    saved = ll.save([ll.Artifact(str(root / f"in-3-{i}.txt"), key=f"k/{i}.txt") for i in range(3)])
    assert len(saved) == 3
    assert ll.Run.filter(engine=rec.engine, status="completed").count() == 23
