"""PostgreSQL connections: a pooled connection the server ended is replaced before use, and
one handed out again right away is used without a ping round trip."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from lakeline.db import engine as engine_module
from lakeline.db.engine import make_engine
from sqlalchemy import Engine, text

pytestmark = pytest.mark.postgres


PINGS: list[int] = []


@pytest.fixture
def engine(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    made = make_engine(postgres_url)
    do_ping = made.dialect.do_ping

    def counted(dbapi_conn: object) -> bool:
        PINGS.append(1)
        return do_ping(dbapi_conn)

    monkeypatch.setattr(made.dialect, "do_ping", counted)
    PINGS.clear()
    yield made
    made.dispose()


def pings(engine: Engine) -> int:
    return len(PINGS)  # every ping is of this engine


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(engine: Engine, pid: int) -> None:
    """End backend `pid` from another connection, and wait until it is gone."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:  # autocommit: each query sees pg_stat_activity anew (not a transaction's snapshot)
        with other.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(500):
                gone = connection.execute(
                    text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                ).scalar_one()
                if gone:
                    return
                time.sleep(0.01)
        raise AssertionError(f"backend {pid} is still there")
    finally:
        other.dispose()


def test_a_connection_back_from_the_pool_at_once_needs_no_ping(engine: Engine) -> None:
    first = backend_pid(engine)
    for _ in range(5):
        assert backend_pid(engine) == first  # the same pooled connection
    assert pings(engine) == 0


def test_an_idle_connection_is_pinged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = backend_pid(engine)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    assert backend_pid(engine) == first
    assert pings(engine) == 1


def test_a_connection_the_server_ended_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 1e9)  # never idle long enough:
    first = backend_pid(engine)
    terminate(engine, first)  # the end is seen on the connection's socket
    second = backend_pid(engine)  # no error: the pool connected again
    assert second != first
    assert pings(engine) == 1
