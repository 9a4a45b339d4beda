"""Deletes racing other writers that reference the artifact (PostgreSQL: each in its own
transaction, the other held in another process before its COMMIT; SQLite: one writer at a
time, the held one first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from faults import second_while_held
from lakeline.errors import PermissionDenied
from lakeline.instance import Instance
from lakeline.testing import LoginRoles
from test_access_roles import team  # noqa: F401  (a fixture)


def _collection_held(pause: Any, uid: str) -> None:
    """In a child process: a collection of artifact `uid`, held before its COMMIT."""
    from lakeline.instance import current
    from sqlalchemy import event

    ll.connect()
    member = ll.Artifact.get(uid)
    event.listen(current().engine, "commit", lambda conn: pause.hold())
    ll.Collection([member], key="c").save()


def test_a_delete_racing_a_collection_of_its_artifact(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection of the artifact is saved (not committed) while it is deleted: the delete
    refuses as for a committed collection, and the collection keeps it. Before, the delete
    checked membership before the collection committed, and its DELETE then failed on the
    foreign key: a raw ForeignKeyViolation reached the caller (PostgreSQL)."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    (tmp_path / "a.txt").write_text("a")
    artifact = ll.Artifact(tmp_path / "a.txt", key="a.txt").save()
    exitcode, outcome = second_while_held(
        _collection_held,
        (artifact.uid,),
        artifact.delete,
        instance.engine,
        "the delete",
        waits=instance.dialect == "postgresql",
    )
    assert exitcode == 0
    assert len(outcome) == 1 and isinstance(outcome[0], ll.errors.LakelineError), outcome
    assert "belongs to a collection" in str(outcome[0])
    assert ll.Artifact.get(artifact.uid).id == artifact.id
    assert [a.uid for a in ll.Collection.get(key="c").artifacts] == [artifact.uid]


def test_deleting_a_renamed_latest_whose_old_key_was_taken(
    instance: Instance, tmp_path: Path
) -> None:
    """Version 2 of `a.txt` renamed `b.txt`, then new content saved as `a.txt` (another
    artifact): deleting version 2 would make version 1 a second latest `a.txt`. Before: a raw
    unique violation (both databases); now a clear refusal, nothing changed."""
    for i, content in enumerate(["one", "two", "three"]):
        (tmp_path / f"{i}.txt").write_text(content)
    v1 = ll.Artifact(tmp_path / "0.txt", key="a.txt").save()
    v2 = ll.Artifact(tmp_path / "1.txt", key="a.txt").save()
    v2.key = "b.txt"
    v2.save()
    other = ll.Artifact(tmp_path / "2.txt", key="a.txt").save()
    with pytest.raises(ll.errors.LakelineError, match="names artifact"):
        v2.delete()
    assert ll.Artifact.get(key="b.txt").uid == v2.uid
    assert ll.Artifact.get(key="a.txt").uid == other.uid
    assert Path(ll.Artifact.get(v2.uid).cache()).read_text() == "two"
    assert not ll.Artifact.get(v1.uid).is_latest
    other.delete()
    v2.delete()  # its key free again: version 1 is the latest `a.txt`
    assert ll.Artifact.get(key="a.txt").uid == v1.uid


@pytest.mark.postgres
def test_a_reader_deleting_or_editing_is_told_it_needs_the_write_role(
    team: dict[str, str],  # noqa: F811
    tmp_path: Path,
    login_roles: LoginRoles,
) -> None:
    """A delete (and an edit) first reads its record FOR UPDATE, which needs the UPDATE
    privilege: the refusal names the write role. Before: "may not read table artifacts:
    needs the lakeline 'read' role", to a role that reads."""
    (tmp_path / "a.txt").write_text("a")
    saved = ll.Artifact(tmp_path / "a.txt", key="a.txt").save()
    login_roles.connect_as(team["reader"], "reader")
    loaded = ll.Artifact.get(saved.uid)
    with pytest.raises(PermissionDenied, match="needs the lakeline 'write' role"):
        loaded.delete()
    loaded.description = "edited"
    with pytest.raises(PermissionDenied, match="needs the lakeline 'write' role"):
        loaded.save()
    assert ll.Artifact.get(saved.uid).description is None


def test_a_delete_racing_a_collection_under_repeatable_read(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the first test with the database's transactions REPEATABLE READ (a role's or
    database's setting lakeline does not choose): the delete's snapshot predates the
    collection's commit it waited for, so it saw no membership and its DELETE met the foreign
    key (before: a raw ForeignKeyViolation); now it reads again and refuses."""
    from sqlalchemy import text

    if instance.dialect != "postgresql":
        pytest.skip("SQLite transactions are serializable")
    with instance.engine.begin() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar()
        conn.execute(
            text(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'")
        )
    instance.engine.dispose()
    with instance.engine.connect() as conn:
        assert conn.execute(text("SHOW transaction_isolation")).scalar() == "repeatable read"
    test_a_delete_racing_a_collection_of_its_artifact(instance, tmp_path, monkeypatch)
