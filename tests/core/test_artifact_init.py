"""What `Artifact(path, key=)` makes (its constructor fills the new record's dict in one
update, models/artifact.py and artifacts/describe.py): a plain transient record a session
writes, and init listeners still hear every construction and every failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.errors import InvalidKey, PathNotFound
from lakeline.ids import new_stem
from lakeline.instance import Instance
from sqlalchemy import event, inspect


def test_a_constructed_artifact_is_a_transient_record_a_session_writes(
    instance: Instance, tmp_path: Path
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a\n1\n")
    artifact = ll.Artifact(path, key="raw/a.csv", description="one row")
    state = inspect(artifact)
    assert state.transient and state.obj() is artifact and not state.committed_state
    assert (artifact.key, artifact.suffix, artifact.description) == ("raw/a.csv", ".csv", "one row")
    assert artifact._source == str(path.resolve()) and artifact._source_size == 4
    stem = new_stem()
    artifact.uid, artifact.stem, artifact.store_key = stem + "0000", stem, "raw/a.csv"
    artifact.storage_id = instance.storage.id
    with instance.sessions.write() as session:  # the ORM's own unit of work, not ll.save
        session.add(artifact)
        assert inspect(artifact).pending
        session.flush()
        session.refresh(artifact)
        assert artifact.id is not None and inspect(artifact).persistent
        assert artifact.is_latest and artifact.available and artifact.suffix == ".csv"
    assert ll.Artifact.get(artifact.uid).description == "one row"


def test_init_listeners_hear_every_construction(instance: Instance, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a\n1\n")
    heard: list[tuple[str, Any, Any]] = []

    def on_init(target: Any, args: Any, kwargs: Any) -> None:
        heard.append(("init", args, kwargs.get("key")))

    def on_failure(target: Any, args: Any, kwargs: Any) -> None:
        heard.append(("failure", args, kwargs.get("key")))

    event.listen(ll.Artifact, "init", on_init)
    event.listen(ll.Artifact, "init_failure", on_failure)
    try:
        artifact = ll.Artifact(str(path), key="raw/a.csv")
        with pytest.raises(InvalidKey):
            ll.Artifact(str(path), key="raw/a.txt")
        with pytest.raises(PathNotFound):
            ll.Artifact(str(tmp_path / "none.csv"))
    finally:
        event.remove(ll.Artifact, "init", on_init)
        event.remove(ll.Artifact, "init_failure", on_failure)
    assert heard == [
        ("init", (str(path),), "raw/a.csv"),
        ("init", (str(path),), "raw/a.txt"),
        ("failure", (str(path),), "raw/a.txt"),
        ("init", (str(tmp_path / "none.csv"),), None),
        ("failure", (str(tmp_path / "none.csv"),), None),
    ]
    assert inspect(artifact).transient and artifact.key == "raw/a.csv"
    ll.Artifact(str(path), key="raw/b.csv")  # none listens any more
    assert len(heard) == 5


def test_a_subclass_is_constructed_by_sqlalchemy(instance: Instance, tmp_path: Path) -> None:
    """An unmapped subclass of Artifact (its own class manager, no mapper) is built by the
    instrumented constructor, as before."""
    path = tmp_path / "a.csv"
    path.write_text("a\n1\n")

    class Mine(ll.Artifact):
        __abstract__ = True

    mine = Mine(path, key="raw/a.csv")
    assert type(mine) is Mine and mine.key == "raw/a.csv" and mine._source == str(path.resolve())
