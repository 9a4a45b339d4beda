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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lakeline.testing_servers import GCSServer, PostgresServer, S3Server

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
    postgres_server.drop_roles(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database (no schema), dropped after the test."""
    from lakeline.instance import disconnect

    name = f"e_{uuid.uuid4().hex[:16]}"
    yield postgres_server.create_database(name)
    disconnect()
    postgres_server.drop_database(name)
    postgres_server.drop_roles(name)


@dataclass
class LoginRoles:
    """Makes PostgreSQL login roles for one test database (dropped after the test)."""

    url: str
    made: list[str]

    def admin_execute(self, *statements: str) -> None:
        """Run `statements` as the superuser in the test database (autocommit)."""
        import psycopg
        from sqlalchemy.engine import make_url

        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def create(self, prefix: str) -> tuple[str, str]:
        """A new login role named `<prefix>_<random>`: (its name, the database URL as it)."""
        from sqlalchemy.engine import make_url

        role = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.admin_execute(f"CREATE ROLE {role} LOGIN")
        self.made.append(role)
        return role, make_url(self.url).set(username=role).render_as_string(False)

    def connect_as(self, role_url: str, name: str) -> Instance:
        """Register the connected instance under `name` with `role_url` and connect as it."""
        from lakeline.config import InstanceConfig
        from lakeline.instance import connect, current, disconnect

        instance = current()
        InstanceConfig(
            name=name,
            db=role_url,
            storage=instance.config.storage,
            uid=instance.uid,
            storage_options=dict(instance.config.storage_options),
        ).write()
        disconnect()
        return connect(name)


@pytest.fixture
def login_roles(postgres_url: str) -> Iterator[LoginRoles]:
    """Create login roles in the test's PostgreSQL database (`postgres_url`)."""
    from lakeline.instance import disconnect

    roles = LoginRoles(postgres_url, [])
    yield roles
    disconnect()
    for role in roles.made:
        roles.admin_execute(f"DROP OWNED BY {role}", f"DROP ROLE {role}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 for the whole session."""
    for module in ("moto", "boto3", "s3fs", "flask"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (needs moto[server,s3], boto3, s3fs)")
    with S3Server() as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """A GCS emulator (gcp-storage-emulator) on 127.0.0.1 for the whole session."""
    for module in ("gcp_storage_emulator", "gcsfs"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (needs gcp-storage-emulator, lakeline[gcs])")
    with GCSServer() as server:
        yield server


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    """A new, empty bucket on the GCS emulator; returns its name."""
    name = f"lakeline-{uuid.uuid4().hex[:12]}"
    gcs_server.create_bucket(name)
    return name


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
    monkeypatch.setenv("LAKELINE_USER", "mallory")  # ignored: identity is never the environment
    monkeypatch.setenv("COLUMNS", "200")  # CLI tables never wrap, whatever the terminal
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
    if storage == "gcs":
        gcs: GCSServer = request.getfixturevalue("gcs_server")
        gcs_bucket: str = request.getfixturevalue("gcs_bucket")
        return init(
            storage=f"gs://{gcs_bucket}/lake",
            db=url,
            name="testgcs",
            storage_options=gcs.storage_options,
        )
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


@pytest.fixture(params=["sqlite", "postgres"])
def gcs_instance(request: pytest.FixtureRequest) -> Instance:
    """A connected instance whose default storage is a bucket on the GCS emulator."""
    return _make_instance(request, request.param, "gcs")


@pytest.fixture(
    params=[("sqlite", "local"), ("sqlite", "s3"), ("postgres", "local"), ("postgres", "s3")],
    ids=["sqlite-local", "sqlite-s3", "postgres-local", "postgres-s3"],
)
def any_instance(request: pytest.FixtureRequest) -> Instance:
    """An instance for each database and storage kind."""
    db, storage = request.param
    return _make_instance(request, db, storage)


# -- Recorder conformance kit ---------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedStep:
    """A step an adapter must have recorded: its transform key, inputs, outputs and status."""

    key: str
    inputs: frozenset[str] = frozenset()
    outputs: frozenset[str] = frozenset()
    status: str = "completed"


def lineage_snapshot(engine: str) -> dict[str, Any]:
    """Everything one engine recorded, as comparable data (for idempotency checks)."""
    from sqlalchemy import func, select

    from lakeline.instance import current
    from lakeline.models import Artifact, Run, RunInput, Transform

    with current().sessions.read() as session:
        runs = session.execute(
            select(Run.engine_ref, Run.status, Run.parent_id, Run.transform_id, Run.cached_from_id)
            .where(Run.engine == engine)
            .order_by(Run.engine_ref)
        ).all()
        return {
            "runs": [tuple(r) for r in runs],
            "transforms": session.scalar(select(func.count()).select_from(Transform)),
            "artifacts": session.scalar(select(func.count()).select_from(Artifact)),
            "inputs": session.scalar(select(func.count()).select_from(RunInput)),
        }


def recorded_steps(engine: str, workflow_id: int | None = None) -> list[ExpectedStep]:
    """The steps of one workflow run of `engine` (default: its only one) as ExpectedSteps."""
    from sqlalchemy import select

    from lakeline.instance import current
    from lakeline.models import Artifact, Run, RunInput, Transform

    with current().sessions.read() as session:
        if workflow_id is None:
            workflows = session.scalars(
                select(Run).where(Run.engine == engine, Run.parent_id.is_(None))
            ).all()
            assert len(workflows) == 1, (
                f"expected one {engine} workflow run, found {len(workflows)}"
            )
            workflow = workflows[0]
        else:
            found = session.get(Run, workflow_id)
            assert found is not None, f"no workflow run with id {workflow_id}"
            workflow = found
        pipeline = session.get(Transform, workflow.transform_id)
        assert pipeline is not None
        steps = []
        for run in session.scalars(select(Run).where(Run.parent_id == workflow.id)):
            transform = session.get(Transform, run.transform_id)
            assert transform is not None and transform.parent_id == pipeline.id, (
                f"step transform {transform} is not a child of the pipeline {pipeline.key}"
            )
            used = session.scalars(
                select(Artifact.key)
                .join(RunInput, RunInput.artifact_id == Artifact.id)
                .where(RunInput.run_id == run.id)
            ).all()
            made = session.scalars(select(Artifact.key).where(Artifact.run_id == run.id)).all()
            steps.append(
                ExpectedStep(
                    transform.key,
                    frozenset(k for k in used if k),
                    frozenset(k for k in made if k),
                    run.status,
                )
            )
    return steps


def _ordered(steps: list[ExpectedStep]) -> list[ExpectedStep]:
    return sorted(steps, key=lambda s: (s.key, sorted(s.inputs), sorted(s.outputs), s.status))


class RecorderConformance:
    """The Recorder contract, checked against an integration's adapter.

    Subclass it in a test module of the integration (the subclass's name must start with
    `Test`), set `engine`, and implement:
    - `run_workflow(tmp_path)`: run a small workflow for real through the adapter, return the
      steps it must have recorded (transform key, input and output artifact keys, status);
    - `replay(tmp_path)`: record the same run again (replay its events, or import it again).
    Each test runs on SQLite and on PostgreSQL (through the `instance` fixture).
    """

    engine: str = ""

    def run_workflow(self, tmp_path: Path) -> list[ExpectedStep]:
        raise NotImplementedError

    def replay(self, tmp_path: Path) -> None:
        raise NotImplementedError

    def test_conformance_steps_edge_by_edge(self, instance: Instance, tmp_path: Path) -> None:
        expected = self.run_workflow(tmp_path)
        assert _ordered(recorded_steps(self.engine)) == _ordered(expected)

    def test_conformance_outputs_point_to_their_step(
        self, instance: Instance, tmp_path: Path
    ) -> None:
        from lakeline.models import Artifact

        for step in self.run_workflow(tmp_path):
            for key in step.outputs:
                run = Artifact.get(key=key).run
                assert run is not None and run.engine == self.engine, key
                assert run.transform.key == step.key, key
                assert run.parent is not None, f"{key}: its run has no workflow run"

    def test_conformance_replay_changes_nothing(self, instance: Instance, tmp_path: Path) -> None:
        self.run_workflow(tmp_path)
        before = lineage_snapshot(self.engine)
        self.replay(tmp_path)
        assert lineage_snapshot(self.engine) == before
