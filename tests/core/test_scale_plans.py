"""What bench/scale.py showed growing with the catalog (1M -> 10M artifacts), pinned by the
SQL or the plan each fix changed, on SQLite and PostgreSQL. Times are the bench's; these
assert what the database is asked to do."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import Any

import lakeline as ll
from lakeline.instance import Instance
from lakeline.ui.server import create_app
from ui_catalog import build

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_the_first_overview_counts_nothing_in_the_request(
    instance: Instance, tmp_path: Path
) -> None:
    """The overview's counts are counted in the background, never while a page waits: the
    first view of a fresh server counted every table in the request (1 s at 1M artifacts on
    SQLite, 10x that at 10M), so the page says it is counting, and the figures come on a
    later view."""
    from sqlalchemy import event

    build(tmp_path)
    in_request: list[str] = []
    counted = threading.Event()

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if "count(" in sql.lower():
            if threading.current_thread().name == "lakeline-ui-counts":
                counted.set()
            else:
                in_request.append(sql)

    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        with TestClient(create_app(instance.name), base_url="http://127.0.0.1") as client:
            first = client.get("/")
            assert first.status_code == 200
            assert "Counting the catalog" in first.text
            assert counted.wait(30)
            for _ in range(500):
                later = client.get("/").text
                if "Counting the catalog" not in later:
                    break
                time.sleep(0.01)
            assert "Counting the catalog" not in later and ">4</div>" in later  # 4 artifacts
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
    assert in_request == []


def test_counts_come_from_the_background(instance: Instance, tmp_path: Path) -> None:
    from lakeline.ui.queries import Counts

    build(tmp_path)
    counts = Counts(ttl=60.0)
    assert counts.get() == {}  # counting has started, nothing waited for it
    for _ in range(500):
        if counts.get():
            break
        time.sleep(0.01)
    assert counts.get()["artifacts"] == 4 and counts.get()["failed runs"] == 2
    assert ll.Artifact.filter().count() == 4


def test_postgres_queries_are_never_jit_compiled(instance: Instance, tmp_path: Path) -> None:
    """lakeline's PostgreSQL connections run with `jit = off`. At 3M artifacts the planner's
    cost of the exhaustive search of a rare word (6 matches, 3 ms of work) passed
    `jit_above_cost` and the query compiled itself to machine code first: 16-50 ms more
    (search_rare 6.9 -> 32.6 ms from 1M to 3M in bench/scale.py). Here JIT is forced for every
    plan (`jit_above_cost = 0`): the plan must show no JIT."""
    import pytest

    if instance.dialect != "postgresql":
        pytest.skip("SQLite compiles no query to machine code")
    build(tmp_path)
    stmt = ll.Artifact.search("reads").statement
    sql = str(stmt.compile(dialect=instance.engine.dialect, compile_kwargs={"literal_binds": True}))
    with instance.engine.begin() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
        conn.exec_driver_sql("SET LOCAL jit_above_cost = 0")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN (ANALYZE) {sql}"))
    assert "JIT:" not in plan, plan
    assert ll.Artifact.search("reads").all()  # the search still finds what the catalog holds
