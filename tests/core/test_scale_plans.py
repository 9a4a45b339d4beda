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


# -- SQLite: limited queries in id order choose their plan (lakeline.query_plans) -----------


def _wide_catalog(tmp_path: Path) -> None:
    """ui_catalog's workflow, and 300 artifacts: half under even/, half under odd/, 3 under
    few/; 40 of the even ones carry the label `tagged`."""
    build(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    records = []
    for i in range(300):
        path = folder / f"f{i}.txt"
        path.write_text(f"file {i}\n")
        top = "few" if i % 100 == 7 else ("odd" if i % 2 else "even")
        records.append(ll.Artifact(path, key=f"{top}/f{i:03d}.txt", description=f"file {i}"))
    ll.save(records)
    tagged = ll.ULabel(name="tagged").save()
    for artifact in ll.Artifact.filter(key__startswith="even/").order_by("key").limit(40):
        artifact.labels.add(tagged)


def _queries() -> dict[str, Any]:
    from lakeline.models import RunInput
    from sqlalchemy import func, select

    A = ll.Artifact
    even = A.filter(key__startswith="even/")
    return {
        "prefix": even.limit(10),
        "prefix offset": even.limit(7).offset(5),
        "newest": even.order_by("-id").limit(10),
        "by id": even.order_by("id").limit(10),
        "past the end": even.order_by("id").limit(3).offset(148),
        "few": A.filter(key__startswith="few/").limit(10),
        "none": A.filter(key__startswith="none/").limit(10),
        "none newest": A.filter(key__startswith="none/").order_by("-id").limit(10),
        "run's transform": A.filter(run__transform__key="align").limit(5),
        "label": A.filter(ulabels__name="tagged").limit(10),
        "label newest": A.filter(ulabels__name="tagged").order_by("-id").limit(10).offset(3),
        "excluded": A.filter().exclude(key__startswith="odd/").limit(10),
        "expression": A.filter(A.size > 0, description__contains="1").limit(10),
        "first": A.filter(key__startswith="odd/").limit(1),
        # the walk's EXISTS must keep each term's meaning: an exclude through a join (its
        # subquery holds the table inside a JOIN), NOT IN a subquery yielding NULL (no row),
        # IN a limited or aggregated subquery
        "excluded by relation": even.exclude(run__transform__key="align").limit(10),
        "not in nulls": A.filter(A.id.not_in(select(ll.Run.report_id))).limit(10),
        "in a limited subquery": A.filter(
            A.id.in_(select(RunInput.artifact_id).order_by(RunInput.artifact_id).limit(1))
        ).limit(10),
        "in an aggregate": A.filter(A.id.in_(select(func.max(RunInput.artifact_id)))).limit(10),
    }


def _plain(instance: Instance, query: Any) -> list[int]:
    """The ids the query's own statement returns, run as it is."""
    with instance.sessions.read() as session:
        return [a.id for a in session.scalars(query.statement)]


def test_every_plan_returns_the_same_rows(
    instance: Instance, tmp_path: Path, monkeypatch: Any
) -> None:
    """Forced to answer from the index plan, from the walk in id order, or from the index plan
    after both were stopped, every query returns the rows its statement returns, in the same
    order, with the same limit and offset (on PostgreSQL no plan is chosen: the same rows)."""
    from lakeline import query_plans

    _wide_catalog(tmp_path)
    expected = {name: _plain(instance, q) for name, q in _queries().items()}
    assert len(expected["prefix"]) == 10 and expected["none"] == []
    assert len(expected["run's transform"]) == 1 and len(expected["label"]) == 10
    assert expected["newest"] == sorted(expected["newest"], reverse=True)
    assert len(expected["excluded by relation"]) == 10 and expected["not in nulls"] == []
    assert len(expected["in a limited subquery"]) == len(expected["in an aggregate"]) == 1
    frame = ll.Artifact.filter(key__startswith="even/").limit(50).to_dataframe(columns=["key"])
    for forced in [(10**12, 0), (0, 10**12), (0, 0)]:  # index plan, walk, index plan after both
        monkeypatch.setattr(query_plans, "budgets", lambda needed, max_id, width, f=forced: f)
        got = {name: [a.id for a in q.all()] for name, q in _queries().items()}
        assert got == expected, forced
        again = ll.Artifact.filter(key__startswith="even/").limit(50).to_dataframe(columns=["key"])
        assert again.equals(frame), forced
        if forced == (0, 10**12) and instance.dialect == "sqlite":  # the walk answered
            label = _queries()["label"]
            _, sql, plan = _answered(instance, label.all)
            assert "EXISTS" in sql and plan.startswith("SCAN artifacts"), plan


def _answered(instance: Instance, run: Any) -> tuple[list[Any], str, str]:
    """Run `run()`; return what it returned, the SQL of the last statement on artifacts,
    and that statement's EXPLAIN QUERY PLAN."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "FROM artifacts" in sql:
            seen.append((sql, params))

    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        result = run()
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
    sql, params = seen[-1]
    with instance.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
    return result, sql, "\n".join(str(row[-1]) for row in rows)


def test_sqlite_walks_the_table_when_the_filter_matches_a_share_of_it(
    instance: Instance, tmp_path: Path
) -> None:
    """At 10M artifacts SQLite read a filter's index and sorted every match before taking the
    first n (10k rows of a top-level key prefix: 7.5 s; a run's transform, limit 20: 538 ms).
    A filter matching half the catalog is now answered by a walk in id order (SCAN artifacts,
    no sort), a filter matching 3 rows still by its index. The budgets are the real ones: their
    bound, sqrt(limit x max(id)), is small here (39 rows)."""
    import pytest

    if instance.dialect != "sqlite":
        pytest.skip("PostgreSQL's planner has statistics; lakeline chooses no plan there")
    _wide_catalog(tmp_path)
    A = ll.Artifact
    rows, sql, plan = _answered(instance, lambda: A.filter(key__startswith="even/").limit(5).all())
    assert [a.key for a in rows] == [f"even/f{i:03d}.txt" for i in (0, 2, 4, 6, 8)]
    assert "likely(" in sql and plan.startswith("SCAN artifacts"), plan
    assert "TEMP B-TREE" not in plan, plan
    rows, sql, plan = _answered(instance, lambda: A.filter(key__startswith="few/").limit(5).all())
    assert [a.key for a in rows] == ["few/f007.txt", "few/f107.txt", "few/f207.txt"]
    assert "likely(" not in sql and "ix_artifacts_key" in plan, plan
    _, sql, plan = _answered(instance, lambda: A.filter(key="few/f007.txt").first())
    assert "likely(" not in sql  # a unique field: asked as it is, no budget


def test_postgres_rare_word_fallback_starts_no_parallel_workers(
    instance: Instance, tmp_path: Path
) -> None:
    """A rare word's pool holds fewer matches than the limit, so the search runs again over
    every match. At 6.5M-10M artifacts PostgreSQL planned that query as a Parallel Bitmap Heap
    Scan (it expects ~2% of the table to match): starting the workers took ~11 ms for 5 rows
    (search_rare 27 ms at 10M). Here parallel plans are made free, as they look to the planner
    at that size: the fallback's plan must still start no worker. Not set on the connections:
    the overview's counts of whole tables use the workers (577 -> 847 ms at 3M without)."""
    import pytest
    from sqlalchemy import event

    if instance.dialect != "postgresql":
        pytest.skip("SQLite has no parallel workers")
    build(tmp_path)
    plans: list[str] = []

    def free_parallel(dbapi_conn: Any, record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            for setting in ("parallel_setup_cost", "parallel_tuple_cost"):
                cur.execute(f"SET {setting} = 0")
            for setting in ("min_parallel_table_scan_size", "min_parallel_index_scan_size"):
                cur.execute(f"SET {setting} = 0")
        dbapi_conn.commit()

    def explain(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if "ts_rank" in sql and "search_pool" not in sql:  # the exhaustive fallback
            with cursor.connection.cursor() as cur:
                cur.execute(f"EXPLAIN {sql}", params)
                plans.append("\n".join(row[0] for row in cur.fetchall()))

    event.listen(instance.engine, "connect", free_parallel)
    instance.engine.dispose()
    event.listen(instance.engine, "after_cursor_execute", explain)
    try:
        found = ll.Artifact.search("reads").all()
        with instance.engine.connect() as conn:  # the setting is the transaction's only
            assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() != "0"
            parallel = conn.exec_driver_sql(
                "EXPLAIN SELECT count(*) FROM artifacts WHERE position('x' in key) > 0"
            ).all()
    finally:
        event.remove(instance.engine, "after_cursor_execute", explain)
        event.remove(instance.engine, "connect", free_parallel)
        instance.engine.dispose()
    assert [a.key for a in found] == ["data/reads.csv"]
    assert plans and not any("Gather" in plan for plan in plans), plans
    assert any("Gather" in str(row) for row in parallel)  # parallel plans were free here
