"""pytest fixtures other distributions reuse: isolated homes, real PostgreSQL, real S3.

Enable with `pytest_plugins = ["lakeline.testing"]` in a conftest. Database-parametrized
fixtures run each test on SQLite and on a PostgreSQL server the session starts itself.
Missing servers skip locally and fail when `CI=true`.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lakeline.testing_servers import PostgresServer, S3Server

if TYPE_CHECKING:
    from lakeline.instance import Instance

IN_CI = os.environ.get("CI", "").lower() == "true"
TEMPLATE_DB = "lakeline_template"


def unavailable(reason: str) -> None:
    """Skip the test outside CI; fail it in CI, where every part must be present."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the whole session, with a migrated template database."""
    ok, reason = PostgresServer.available()
    if not ok:
        unavailable(reason)
    if importlib.util.find_spec("psycopg") is None:
        unavailable("psycopg is not installed (pip install 'lakeline[postgres]')")
    parent = os.environ.get("LAKELINE_PG_TMPDIR")
    if parent is None and os.access("/dev/shm", os.W_OK):
        parent = "/dev/shm"  # tmpfs: initdb and CREATE DATABASE are several times faster
    server = PostgresServer(parent_dir=parent).start()
    try:
        from lakeline.db.engine import make_engine
        from lakeline.db.migrate import upgrade

        engine = make_engine(server.create_database(TEMPLATE_DB))
        upgrade(engine)
        engine.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with lakeline's schema, dropped after the test."""
    from lakeline.instance import disconnect

    name = f"t_{uuid.uuid4().hex[:16]}"
    yield postgres_server.create_database(name, template=TEMPLATE_DB)
    disconnect()
    postgres_server.drop_database(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database (no schema), dropped after the test."""
    from lakeline.instance import disconnect

    name = f"e_{uuid.uuid4().hex[:16]}"
    yield postgres_server.create_database(name)
    disconnect()
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 for the whole session."""
    for module in ("moto", "boto3", "s3fs", "flask"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (needs moto[server,s3], boto3, s3fs)")
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket; returns its name."""
    name = f"lakeline-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


@pytest.fixture
def lakeline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated settings folder and cache; no entry-point plugins; no instance connected."""
    from lakeline import plugins
    from lakeline.instance import disconnect

    home = tmp_path / "lakeline-home"
    monkeypatch.setenv("LAKELINE_HOME", str(home))
    monkeypatch.setenv("LAKELINE_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "")
    monkeypatch.delenv("LAKELINE_INSTANCE", raising=False)
    monkeypatch.setenv("LAKELINE_USER", "testuser")
    plugins.reset()
    disconnect()
    yield home
    disconnect()
    plugins.reset()


def _db(request: pytest.FixtureRequest, kind: str) -> str | None:
    if kind == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


def _make_instance(request: pytest.FixtureRequest, db: str, storage: str) -> Instance:
    from lakeline.instance import init

    request.getfixturevalue("lakeline_home")
    url = _db(request, db)
    if storage == "local":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        return init(storage=tmp_path / "data", db=url, name="test")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return init(
        storage=f"s3://{bucket}/lake", db=url, name="tests3", storage_options=server.storage_options
    )


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """None (the embedded SQLite default) or the URL of a fresh PostgreSQL database."""
    return _db(request, request.param)


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request: pytest.FixtureRequest) -> Instance:
    """A connected instance with local storage (tmp_path/"data"), on SQLite and PostgreSQL."""
    return _make_instance(request, request.param, "local")


@pytest.fixture(params=["sqlite", "postgres"])
def s3_instance(request: pytest.FixtureRequest) -> Instance:
    """A connected instance whose default storage is a bucket on the moto S3 server."""
    return _make_instance(request, request.param, "s3")


@pytest.fixture(
    params=[("sqlite", "local"), ("sqlite", "s3"), ("postgres", "local"), ("postgres", "s3")],
    ids=["sqlite-local", "sqlite-s3", "postgres-local", "postgres-s3"],
)
def any_instance(request: pytest.FixtureRequest) -> Instance:
    """An instance for each database and storage kind."""
    db, storage = request.param
    return _make_instance(request, db, storage)
