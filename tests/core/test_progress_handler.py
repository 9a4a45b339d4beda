"""SQLite: a progress handler set on lakeline's connections (an application's interrupt or
watchdog) keeps working through the limited queries whose plan lakeline chooses by counting
virtual-machine steps with a progress handler of its own (`query_plans._budget`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance, init
from sqlalchemy import event

COUNT = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "


@pytest.fixture
def catalog(lakeline_home: Path, tmp_path: Path) -> Instance:
    instance = init(str(tmp_path / "storage"), name="progress")
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.txt").write_text(str(i))
    ll.save([ll.Artifact(folder / f"{i}.txt", key=f"a/{i}.txt") for i in range(5)])
    return instance


def _with_handler(instance: Instance, handler: Any, every: int) -> list[Any]:
    """Every connection the engine opens from now on gets `handler`; the connections."""
    opened: list[Any] = []

    @event.listens_for(instance.engine, "connect")
    def _set(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(handler, every)
        opened.append(dbapi_conn)

    instance.engine.dispose()
    return opened


def test_the_handler_is_back_after_a_planned_query(catalog: Instance) -> None:
    """Before: the planned query left the connection with no progress handler at all."""
    calls: list[int] = []
    opened = _with_handler(catalog, lambda: calls.append(1) or 0, 100)
    assert [a.key for a in ll.Artifact.filter(key__startswith="a/").limit(2)] == [
        "a/0.txt",
        "a/1.txt",
    ]
    assert len(opened) == 1  # one connection, used for the query and below
    calls.clear()
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql(COUNT + "SELECT count(*) FROM n").scalar() == 5000
    assert calls  # the application's handler runs again
    assert len(opened) == 1


def test_the_handler_still_interrupts_a_planned_query(catalog: Instance) -> None:
    """Before: lakeline's step counter replaced it for the query, which ran to the end."""
    armed = [False]
    _with_handler(catalog, lambda: 1 if armed[0] else 0, 10)
    query = ll.Artifact.filter(key__startswith="a/").limit(2)
    assert len(query.all()) == 2  # not armed: the rows
    armed[0] = True
    with pytest.raises(Exception, match="interrupt"):
        query.all()
    armed[0] = False
    assert len(query.all()) == 2


def test_a_handler_set_by_keyword_is_kept(catalog: Instance) -> None:
    """Before: lakeline's connection class took `set_progress_handler(handler, n)` only, so
    sqlite3's own keywords (`progress_handler=`, `n=`) were a TypeError on its connections."""
    calls: list[int] = []

    @event.listens_for(catalog.engine, "connect")
    def _set(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(progress_handler=lambda: calls.append(1) or 0, n=100)

    catalog.engine.dispose()
    assert len(ll.Artifact.filter(key__startswith="a/").limit(2).all()) == 2
    calls.clear()
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql(COUNT + "SELECT count(*) FROM n").scalar() == 5000
    assert calls


@pytest.mark.parametrize("every", [0, -1])
def test_a_disabled_handler_stays_uncalled_by_a_planned_query(
    catalog: Instance, every: int
) -> None:
    """SQLite never calls a handler set with n < 1 (disabled). Before: a planned query called
    it at each of its own ticks, and so stopped when it asked to."""
    calls: list[int] = []
    _with_handler(catalog, lambda: calls.append(1) or 1, every)
    assert len(ll.Artifact.filter(key__startswith="a/").limit(2).all()) == 2
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql(COUNT + "SELECT count(*) FROM n").scalar() == 5000
    assert calls == []
