"""PostgreSQL: a step's finish (`run_rows`' UPDATE of the run, one run or a batch's) calls
pg_catalog's functions by name. `jsonb_build_array` is variadic "any": a writer's
`public.jsonb_build_array(jsonb)` is a better match for the status log's entry, picked over
pg_catalog's whatever the search path, and ran as whoever finished a step (the owner too);
so did a `public.<>(varchar, varchar)` for the run's status test."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import connect
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from sqlalchemy import text
from test_helper_schema_ops import _spy, planted_writer

pytestmark = pytest.mark.postgres

LONG = 600_000.0  # ms: never due by age in a test


def test_a_finish_calls_no_writers_function(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _, writer = planted_writer(owner, login_roles)
    with writer.engine.begin() as conn:
        body = "pg_catalog.jsonb_build_array(a)"
        conn.execute(text(_spy("jsonb_build_array", "a jsonb", "jsonb", body)))
        body = "a::text OPERATOR(pg_catalog.<>) b::text"
        conn.execute(text(_spy("ne_vv", "a varchar, b varchar", "boolean", body)))
        conn.execute(
            text(
                "CREATE OPERATOR public.<> (LEFTARG = varchar, RIGHTARG = varchar, "
                "FUNCTION = public.ne_vv)"
            )
        )
    owner = connect("owner")
    rec = Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="wf", engine_run_id="r1")
    rec.finish_step(rec.start_step(wf, key="s", kind="rule", engine_task_id="1"))
    rec.finish_workflow(wf)
    batch = BatchRecorder("toy", root=tmp_path, steps=1000, ms=LONG, started_ms=LONG)
    wf = batch.start_workflow(key="wf", engine_run_id="r2")
    steps = [batch.start_step(wf, key="s", kind="rule", engine_task_id=str(i)) for i in range(3)]
    batch.flush()  # started: their finishes are UPDATEs of rows written
    for step in steps:
        batch.finish_step(step)
    batch.finish_workflow(wf)
    with owner.engine.connect() as conn:
        assert conn.execute(text("SELECT who, what, q FROM public.ran")).all() == []
    assert ll.Run.filter(engine="toy", status="completed").count() == 6  # (its own `=`: last)
