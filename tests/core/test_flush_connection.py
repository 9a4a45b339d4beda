"""A BatchRecorder's flush on a pooled PostgreSQL connection whose server session ended since
the last flush: the pool's check sees it at checkout (no ping round trip while the connection
was used recently) and the flush writes its batch; a session lost without a sign on the
socket fails the flush, whose batch stays queued, and the next flush writes it."""

from __future__ import annotations

import time
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.db import engine as engine_module
from lakeline.errors import LakelineError
from lakeline.instance import current
from lakeline.lineage.recorder import BatchRecorder
from sqlalchemy import text

pytestmark = pytest.mark.postgres

LONG = 600_000.0  # ms: never due by age in a test


def _end_sessions(url: str) -> int:
    """End every other session of the database and wait until they are gone: how many."""
    from lakeline.db.engine import make_engine

    other = make_engine(url)
    try:
        with other.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            others = "datname = current_database() AND pid <> pg_backend_pid()"
            end = f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {others}"
            ended = connection.execute(text(end)).scalar_one()
            for _ in range(500):
                left = text(f"SELECT count(*) FROM pg_stat_activity WHERE {others}")
                if connection.execute(left).scalar_one() == 0:
                    return int(ended)
                time.sleep(0.01)
        raise AssertionError("the sessions are still there")
    finally:
        other.dispose()


def _step(rec: BatchRecorder, wf: object, root: Path, name: str) -> object:
    (root / f"in-{name}.txt").write_text(f"in {name}")
    (root / f"out-{name}.txt").write_text(f"out {name}")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id=name)  # type: ignore[arg-type]
    rec.use(step, f"in-{name}.txt")
    rec.produce(step, f"out-{name}.txt")
    rec.finish_step(step)
    return step


def _written(rec: BatchRecorder, name: str) -> bool:
    run = ll.Run.filter(engine=rec.engine, engine_ref__endswith=f"/{name}").one_or_none()
    return run is not None and run.status == "completed" and len(run.inputs) == 1


def test_a_flush_after_the_server_ended_its_session_writes_its_batch(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ll.init(storage=tmp_path / "data", db=postgres_url, name="ended")
    root = tmp_path / "files"
    root.mkdir()
    rec = BatchRecorder("toy", root=root, steps=1000, ms=LONG, started_ms=LONG)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    url = current().engine.url.render_as_string(hide_password=False)

    _step(rec, wf, root, "seen")
    assert _end_sessions(url) >= 1  # the pool's connection, idle in it
    rec.flush()  # its socket showed the end: connected again, no error
    assert _written(rec, "seen")

    # a session lost without a sign on the socket (a dropped route), used recently: no ping
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 1e9)
    monkeypatch.setattr(engine_module, "_server_closed", lambda _conn: False)
    _step(rec, wf, root, "lost")
    assert _end_sessions(url) >= 1
    with pytest.raises(LakelineError):
        rec.flush()
    assert not _written(rec, "lost")
    rec.flush()  # the failed flush's batch, queued again, on a new connection
    assert _written(rec, "lost")
    assert _written(rec, "seen")
