"""One alembic tree: it matches the models, and schema mismatches give clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from lakeline.db.engine import make_engine
from lakeline.db.migrate import (
    HEAD_REVISION,
    alembic_config,
    ensure_schema,
    include_object,
    upgrade,
)
from lakeline.errors import SchemaOutOfDate
from lakeline.instance import Instance, connect, migrate
from lakeline.models import Base
from sqlalchemy import text


def test_head_revision_constant_matches_the_tree() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [HEAD_REVISION]


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migrations_match_models(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
        upgrade(make_engine(url))
    else:
        url = request.getfixturevalue("postgres_url")
    assert _diff(url) == []


def test_downgrade_and_upgrade_roundtrip(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).all()
    assert [t for (t,) in tables if t != "alembic_version"] == []
    upgrade(engine)


def test_schema_newer_than_code_and_missing_schema(instance: Instance) -> None:
    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match=r"newer than this lakeline knows.*upgrade lakeline"):
        ensure_schema(instance.engine, auto_migrate=True)
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(SchemaOutOfDate, match="no lakeline schema"):
        connect("test")


def test_migrate_is_idempotent(instance: Instance) -> None:
    assert migrate("test") == (HEAD_REVISION, HEAD_REVISION, None)
