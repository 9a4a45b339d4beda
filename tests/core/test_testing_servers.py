"""Tests for lakeline.testing_servers: real PostgreSQL and real moto S3, no mocks."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lakeline.testing_servers import GCSServer, PostgresServer, S3Server, free_port

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    """Skip locally, but fail in CI, where a missing server is a broken setup."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def _require_postgres() -> None:
    ok, reason = PostgresServer.available()
    if not ok:
        _unavailable(reason)
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("psycopg is not installed (install lakeline[postgres])")


def _require_s3() -> None:
    for mod in ("moto", "boto3", "s3fs", "flask"):
        if importlib.util.find_spec(mod) is None:
            _unavailable(f"{mod} is not installed (needs moto[server,s3], boto3, s3fs)")


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    _require_postgres()
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    _require_s3()
    with S3Server() as server:
        yield server


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_available_explains_missing_binaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKELINE_PG_BINDIR", str(tmp_path))
    ok, reason = PostgresServer.available()
    assert not ok
    assert str(tmp_path) in reason and "initdb" in reason
    with pytest.raises(RuntimeError, match="not found"):
        PostgresServer().start()


# -- PostgreSQL ---------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_template_roundtrip(pg: PostgresServer) -> None:
    import psycopg
    import sqlalchemy as sa

    template = _unique("tmpl")
    assert pg.create_database(template) == pg.url(template)
    engine = sa.create_engine(pg.url(template))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL)"))
        conn.execute(sa.text("INSERT INTO item VALUES (1, 'from-template')"))
    engine.dispose()  # a template with open connections cannot be copied

    name = _unique("copy")
    url = pg.create_database(name, template=template)
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/{name}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO item VALUES (2, 'ünïcode ✓')"))
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, name FROM item ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(1, "from-template"), (2, "ünïcode ✓")]
    finally:
        engine.dispose()
    # drop_database uses WITH (FORCE): works while a connection is still open.
    assert pg.port is not None
    held = psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=name)
    try:
        pg.drop_database(name)
    finally:
        held.close()
    pg.drop_database(name)  # idempotent
    pg.drop_database(template)


@pytest.mark.postgres
def test_create_database_reports_busy_template(pg: PostgresServer) -> None:
    import psycopg

    template = _unique("busy")
    pg.create_database(template)
    assert pg.port is not None
    with (
        psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=template),
        pytest.raises(RuntimeError, match="open connections"),
    ):
        pg.create_database(_unique("never"), template=template)  # PostgreSQL waits ~5 s
    pg.drop_database(template)


@pytest.mark.postgres
@pytest.mark.parametrize("bad", ["Upper", "x;drop", "1abc", "", "a-b", "a" * 64])
def test_create_database_rejects_unsafe_names(pg: PostgresServer, bad: str) -> None:
    with pytest.raises(ValueError, match="safe database name"):
        pg.create_database(bad)
    with pytest.raises(ValueError):
        pg.create_database("ok_name", template=bad)


@pytest.mark.postgres
def test_stop_removes_everything() -> None:
    _require_postgres()
    server = PostgresServer().start()
    base, port = server.base_dir, server.port
    assert base is not None and base.is_dir() and port is not None
    server.stop()
    assert not base.exists()
    assert server.port is None
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    server.stop()  # second stop is a no-op


@pytest.mark.postgres
def test_parent_dir_is_honoured(tmp_path: Path) -> None:
    _require_postgres()
    if os.geteuid() == 0:
        # pytest's tmp_path is 0700 under root; postgres must be able to traverse it.
        with pytest.raises(RuntimeError, match="not traversable"):
            PostgresServer(parent_dir=tmp_path).start()
    parent = Path(tempfile.mkdtemp(prefix="lakeline-test-"))
    parent.chmod(0o755)
    try:
        with PostgresServer(parent_dir=parent) as server:
            assert server.base_dir is not None and server.base_dir.parent == parent
            assert server.create_database("in_parent_dir").endswith("/in_parent_dir")
        assert list(parent.iterdir()) == []
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.postgres
def test_a_kept_cluster_restarts_with_its_data_port_and_settings() -> None:
    """`keep=DIR` (bench/scale.py's cluster on disk): initdb on first start, the given
    settings instead of the test tuning, a clean stop that keeps the data, and a restart on
    the same port with the databases still there."""
    import psycopg

    _require_postgres()
    parent = Path(tempfile.mkdtemp(prefix="lakeline-test-"))
    parent.chmod(0o755)
    keep = parent / "kept" / "pg"

    def show(server: PostgresServer, name: str) -> str:
        with psycopg.connect(server.url().replace("+psycopg", "")) as conn:
            return str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]

    try:
        server = PostgresServer(keep=keep, settings={"shared_buffers": "64MB"}).start()
        port = server.port
        assert server.base_dir == keep and (keep / "data" / "PG_VERSION").is_file()
        assert (show(server, "shared_buffers"), show(server, "fsync")) == ("64MB", "on")
        server.create_database("kept")
        server.stop()
        assert server.port is None and (keep / "data" / "PG_VERSION").is_file()
        again = PostgresServer(keep=keep, settings={"shared_buffers": "64MB"}).start()
        assert again.port == port
        with psycopg.connect(again.url("kept").replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("kept",)
        again.stop()
        with PostgresServer() as plain:  # the default: tuned for tests
            assert show(plain, "fsync") == "off"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


class _BrokenConfServer(PostgresServer):
    """A real cluster whose config postgres rejects, to exercise the failure path."""

    def _initdb(self) -> None:
        super()._initdb()
        with (self.data_dir / "postgresql.conf").open("a") as f:
            f.write("\nlakeline_no_such_setting = 1\n")


@pytest.mark.postgres
def test_failed_start_includes_log_tail() -> None:
    _require_postgres()
    server = _BrokenConfServer()
    with pytest.raises(RuntimeError, match="pg_ctl start failed") as info:
        server.start()
    assert "lakeline_no_such_setting" in str(info.value)
    assert server.base_dir is None and server.port is None


# -- S3 -------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_write_read_list(s3: S3Server) -> None:
    import s3fs

    bucket = _unique("bucket").replace("_", "-")
    s3.create_bucket(bucket)
    fs = s3fs.S3FileSystem(**s3.storage_options)
    with fs.open(f"{bucket}/dir/hello.txt", "wb") as f:
        f.write(b"hello lakeline")
    with fs.open(f"{bucket}/dir/hello.txt", "rb") as f:
        assert f.read() == b"hello lakeline"
    assert fs.ls(f"{bucket}/dir") == [f"{bucket}/dir/hello.txt"]
    assert bucket in {b["Name"] for b in s3.client().list_buckets()["Buckets"]}


@pytest.mark.s3
def test_s3_env_vars_are_enough(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore/aiobotocore honour AWS_ENDPOINT_URL, so env() alone reaches the server."""
    import s3fs

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    bucket = _unique("envbucket").replace("_", "-")
    s3.create_bucket(bucket)
    # skip_instance_cache: fsspec would otherwise reuse an S3FileSystem() created
    # earlier in the process under a different environment.
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.pipe(f"{bucket}/a.bin", b"\x00\x01")
    assert fs.cat(f"{bucket}/a.bin") == b"\x00\x01"
    assert fs.ls(bucket) == [f"{bucket}/a.bin"]


def test_s3_server_lifecycle() -> None:
    _require_s3()
    server = S3Server()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint_url
    with server:
        assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
        assert server.storage_options["client_kwargs"]["endpoint_url"] == server.endpoint_url
        assert server.env()["AWS_ENDPOINT_URL"] == server.endpoint_url
    assert server.port is None


def test_gcs_servers_are_independent_and_stop(gcs_server: GCSServer) -> None:
    """Two emulators hold their own buckets; a stopped one no longer answers."""
    from lakeline.storage.roots import filesystem

    gcs_server.create_bucket("shared-name")
    filesystem("gs://shared-name", gcs_server.storage_options).pipe_file("shared-name/a", b"1")
    with GCSServer() as other:
        other.create_bucket("shared-name")
        fs = filesystem("gs://shared-name", other.storage_options)
        assert fs.ls("shared-name", refresh=True) == []
        port = other.port
    assert other.port is None
    with socket.socket() as sock, pytest.raises(OSError):
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))
