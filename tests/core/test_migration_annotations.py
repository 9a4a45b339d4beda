"""0005 (features, labels, schemas): a populated database at the head before it upgrades on
SQLite (by itself, after a backup) and PostgreSQL (`lakeline migrate`), keeps its rows, and
takes annotations afterwards."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from lakeline.db.engine import make_engine
from lakeline.db.migrate import HEAD_REVISION, alembic_config, upgrade
from lakeline.instance import connect, migrate
from sqlalchemy import MetaData, insert, text


def _previous_head() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    down = script.get_revision("0005").down_revision  # the revision that adds features
    assert isinstance(down, str)
    return down


def _fill(url: str, storage_root: Path) -> None:
    """A database at the revision before 0005 with a user, a storage, a transform, a run and
    an artifact the run produced, written through the tables as reflected."""
    engine = make_engine(url)
    try:
        upgrade(engine, _previous_head())
        with engine.begin() as conn:
            meta = MetaData()
            meta.reflect(conn)
            assert "features" not in meta.tables
            now = datetime.now(UTC).replace(tzinfo=None)
            t = meta.tables
            conn.execute(
                insert(t["settings"]),
                [
                    {"key": "instance_uid", "value": "inst00000001"},
                    {"key": "instance_name", "value": "old"},
                    {"key": "default_storage_uid", "value": "stor00000001"},
                ],
            )
            conn.execute(
                insert(t["storages"]),
                {"id": 1, "uid": "stor00000001", "root": str(storage_root), "type": "local",
                 "instance_uid": "inst00000001", "created_at": now},
            )  # fmt: skip
            conn.execute(
                insert(t["users"]),
                {"id": 1, "uid": "user0001", "handle": "testuser", "created_at": now},
            )
            conn.execute(
                insert(t["transforms"]),
                {"id": 1, "uid": "oldtransform0000", "stem": "oldtransform", "is_latest": True,
                 "key": "old/script.py", "kind": "script", "created_at": now},
            )  # fmt: skip
            conn.execute(
                insert(t["runs"]),
                {"id": 1, "uid": "oldrun1000000000", "transform_id": 1, "status": "completed",
                 "created_at": now},
            )  # fmt: skip
            conn.execute(
                insert(t["artifacts"]),
                {"id": 1, "uid": "oldartifact10000", "stem": "oldartifact1", "is_latest": True,
                 "key": "old/file1.txt", "suffix": ".txt", "size": 5, "hash": f"{1:064x}",
                 "hash_type": "sha256", "storage_id": 1, "store_key": "old/file1.txt",
                 "in_place": True, "run_id": 1, "created_at": now, "created_by_id": 1},
            )  # fmt: skip
            if conn.dialect.name == "postgresql":
                for table in ("artifacts", "storages", "users", "transforms", "runs"):
                    conn.exec_driver_sql(f"SELECT setval('{table}_id_seq', 1)")
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_upgrade_populated_database_to_features(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import lakeline as ll
    from lakeline.config import InstanceConfig, set_current

    request.getfixturevalue("lakeline_home")
    storage = tmp_path / "data"
    (storage / "old").mkdir(parents=True)
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("empty_postgres_url")
    )
    _fill(url, storage)
    InstanceConfig(name="old", db=url, storage=str(storage), uid="inst00000001").write()
    set_current("old")
    if dialect == "postgres":
        assert migrate("old") == (_previous_head(), HEAD_REVISION, None)
    instance = connect("old")  # SQLite: migrates itself
    with instance.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
        )
    old = ll.Artifact.get(key="old/file1.txt")
    assert (old.uid, old.run_id) == ("oldartifact10000", 1)
    assert old.features.get_values() == {}
    ll.ULabel(name="Tissue", is_type=True).save()
    ll.save(
        [
            ll.Feature(name="temperature", dtype=float, unit="°C"),
            ll.Feature(name="tissue", dtype="cat[ULabel[Tissue]]"),
        ]
    )
    ll.ULabel(name="liver", type=ll.ULabel.get(name="Tissue")).save()
    old.features.add_values({"temperature": 37.5, "tissue": "liver"})
    assert old.features.get_values() == {"temperature": 37.5, "tissue": "liver"}
    assert [a.uid for a in ll.Artifact.filter(temperature__gt=30, tissue="liver")] == [old.uid]
