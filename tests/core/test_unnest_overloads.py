"""PostgreSQL: the key locks of every save and flush (`db.locks.lock_buckets`) expand the
buckets with `unnest(integer[])`. pg_catalog's takes `anyarray`: a writer's
`public.unnest(integer[])` (a role that may CREATE in `public`: PostgreSQL < 15 unless
revoked) is an exact match, picked whatever the search path, and ran as whoever saved or
flushed (the owner too). The statement names pg_catalog's functions. (`unnest` of several
arrays in FROM, the flush's edges and finishes, is expanded to pg_catalog's by the parser:
planted for text[] too, neither was reached.)"""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import connect
from lakeline.lineage.batching import BatchRecorder
from lakeline.testing import LoginRoles
from sqlalchemy import text
from test_helper_schema_ops import planted_writer

pytestmark = pytest.mark.postgres

LONG = 600_000.0  # ms: never due by age in a test


def _unnest_spy(element: str) -> str:
    return (
        f"CREATE FUNCTION public.unnest(a {element}[]) RETURNS SETOF {element} "
        "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ran VALUES (session_user, "
        f"'unnest {element}'); RETURN QUERY SELECT pg_catalog.unnest(a); END $$"
    )


def test_no_writers_unnest_runs_in_a_flush_or_a_save(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _, writer = planted_writer(owner, login_roles)
    with writer.engine.begin() as conn:
        for element in ("integer", "text"):
            conn.execute(text(_unnest_spy(element)))
    owner = connect("owner")
    (tmp_path / "in.txt").write_text("in")
    (tmp_path / "out.txt").write_text("out")
    ll.Artifact(tmp_path / "in.txt", key="in.txt").save()
    batch = BatchRecorder("toy", root=tmp_path, steps=1000, ms=LONG, started_ms=LONG)
    wf = batch.start_workflow(key="wf", engine_run_id="r1")
    steps = [batch.start_step(wf, key="s", kind="rule", engine_task_id=str(i)) for i in range(3)]
    batch.flush()  # started: their finishes are UPDATEs of rows written
    for step in steps:
        batch.use(step, "in.txt")
        batch.produce(step, "out.txt") if step is steps[0] else None
        batch.finish_step(step)
    batch.finish_workflow(wf)
    with owner.engine.connect() as conn:
        ran = conn.execute(text("SELECT DISTINCT who, what, q FROM public.ran ORDER BY 2")).all()
    assert ran == []
    assert ll.Run.filter(engine="toy", status="completed").count() == 4
