"""Instances: init, connect, joining, storage checks and the errors of bad set-ups."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.config import current_name, list_instances, load_config
from lakeline.errors import (
    DatabaseUnreachable,
    InstanceNotFound,
    LakelineError,
    NotConnected,
    StorageError,
)
from lakeline.instance import Instance, connect, current, disconnect, init
from lakeline.testing_servers import S3Server


def test_init_sqlite_default(lakeline_home: Path, tmp_path: Path) -> None:
    inst = init(storage=tmp_path / "data")
    assert inst.name == "data" and inst.dialect == "sqlite" and inst.created
    assert (tmp_path / "data" / ".lakeline" / "data.db").exists()
    marker = json.loads((tmp_path / "data" / ".lakeline" / "storage.json").read_text())
    assert marker["instance_uid"] == inst.uid
    assert list_instances() == ["data"] and current_name() == "data"
    assert inst.storage.root == str((tmp_path / "data").resolve())
    assert inst.user.handle == getpass.getuser()  # SQLite: the OS user, never $LAKELINE_USER
    # init again on the same storage joins the existing instance
    again = init(storage=tmp_path / "data")
    assert again.uid == inst.uid and not again.created


def test_init_sqlite_in_memory(lakeline_home: Path, tmp_path: Path) -> None:
    """An in-memory SQLite catalog (`sqlite://`) lives in its engine's one connection: the
    migrations made at init stay (no pool disposed after them), and a save works."""
    init(storage=tmp_path / "data", db="sqlite://", name="mem")
    path = tmp_path / "data" / "x.txt"
    path.write_text("x")
    saved = ll.Artifact(str(path), key="x.txt").save()
    assert ll.Artifact.get(key="x.txt").id == saved.id


def test_connect_by_name_and_current(lakeline_home: Path, tmp_path: Path) -> None:
    first = init(storage=tmp_path / "one", name="one")
    second = init(storage=tmp_path / "two", name="two")
    assert current().uid == second.uid
    ll.Artifact({"x": 1}, key="x.json").save()
    assert connect("one").uid == first.uid
    assert ll.Artifact.filter().count() == 0  # queries follow the connected instance
    disconnect()
    assert current().uid == second.uid  # reconnects to the current one on first use
    assert ll.Artifact.filter().count() == 1


def test_postgres_init_and_join(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    created = init(storage=tmp_path / "data", db=empty_postgres_url, name="team")
    assert created.dialect == "postgresql" and created.created
    ll.Artifact({"a": 1}, key="a.json").save()
    # a colleague on another machine: another home, same database and storage
    (lakeline_home / "instances" / "team.json").unlink()
    joined = init(
        storage=tmp_path / "data", db=empty_postgres_url.replace("+psycopg", ""), name="team"
    )
    assert joined.uid == created.uid and not joined.created
    assert ll.Artifact.get(key="a.json").load() == {"a": 1}
    assert load_config("team").db.startswith("postgresql+psycopg://")


def test_s3_storage_init(lakeline_home: Path, s3_server: S3Server, s3_bucket: str) -> None:
    inst = init(
        storage=f"s3://{s3_bucket}/lake/", name="s3", storage_options=s3_server.storage_options
    )
    assert inst.storage.root == f"s3://{s3_bucket}/lake" and inst.storage.type == "s3"
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["lake/.lakeline/storage.json"]


def test_wrong_s3_credentials_are_reported(
    lakeline_home: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    options = {**s3_server.storage_options, "key": "wrong"}
    missing = f"nonexistent-{s3_bucket}"
    with pytest.raises(StorageError, match=f"cannot write to storage s3://{missing}/lake"):
        init(storage=f"s3://{missing}/lake", name="bad", storage_options=options)
    assert "bad" not in list_instances()


def test_unknown_instance(lakeline_home: Path) -> None:
    with pytest.raises(InstanceNotFound, match=r"no instance named .nope.*lakeline init"):
        connect("nope")


def test_nothing_current(lakeline_home: Path) -> None:
    with pytest.raises(NotConnected, match="lakeline init"):
        current()


def test_unreachable_database(lakeline_home: Path, tmp_path: Path) -> None:
    from lakeline.testing_servers import free_port

    url = f"postgresql://someone:secret@127.0.0.1:{free_port()}/db"
    with pytest.raises(DatabaseUnreachable, match="cannot reach the database") as info:
        init(storage=tmp_path / "data", db=url, name="down")
    assert "secret" not in str(info.value)  # passwords never reach messages
    assert "down" not in list_instances()
    with pytest.raises(DatabaseUnreachable, match="supports sqlite"):
        init(storage=tmp_path / "data", db="mysql://x/y", name="down")


def test_bad_names_and_storage(lakeline_home: Path, tmp_path: Path) -> None:
    with pytest.raises(LakelineError, match="instance name"):
        init(storage=tmp_path / "data", name="bad name!")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot create the storage folder"):
        init(storage=blocker / "data", name="x")


def test_malformed_config_is_named(lakeline_home: Path, instance: Instance) -> None:
    path = lakeline_home / "instances" / "test.json"
    path.write_text("{not json")
    with pytest.raises(LakelineError, match=r"test\.json is malformed"):
        connect("test")
