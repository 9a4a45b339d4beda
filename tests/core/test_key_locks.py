"""Deletes and space moves against saves of the same key, each held inside its transaction in
another process (tests/core/faults.py): every writer of a key takes the key's lock first
(db/locks.py), so whatever the order, a key keeps exactly one latest version, every version
moves, and no deadlock or unique violation reaches the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from faults import second_while_held
from lakeline.access import spaces
from lakeline.instance import Instance


def _save_held(pause: Any, path: str, key: str) -> None:
    """In a child process: save `path` under `key`, held with its records written."""
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at("save.written", pause.hold):
        ll.Artifact(path, key=key).save()


def _delete_held(pause: Any, uid: str) -> None:
    """In a child process: delete version `uid`, held with its row deleted."""
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at("delete.deleted", pause.hold):
        ll.Artifact.get(uid).delete()


def _versions(tmp_path: Path, key: str, *contents: str) -> list[ll.Artifact]:
    saved = []
    for i, content in enumerate(contents):
        path = tmp_path / f"v{i}.txt"
        path.write_text(content)
        saved.append(ll.Artifact(path, key=key).save())
    return saved


def _stored(key: str) -> list[tuple[str, bool]]:
    """(uid, is_latest) of every version of `key`, oldest first."""
    rows = ll.Artifact.filter(key=key, is_latest=None).order_by("uid").all()
    return [(a.uid, bool(a.is_latest)) for a in rows]


def _waits(instance: Instance) -> bool:
    return instance.dialect == "postgresql"  # SQLite: the held one has the write lock


def test_a_delete_waits_for_a_save_of_its_key(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save of version 3 holds its records written; version 2 (loaded as the latest) is
    deleted meanwhile. Before: the delete waited for the save's row lock, then made version 1
    the latest beside version 3 (PostgreSQL: a unique violation raised to the caller)."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    v1, v2 = _versions(tmp_path, "k.txt", "one", "two")
    (tmp_path / "three.txt").write_text("three")
    exitcode, outcome = second_while_held(
        _save_held,
        (str(tmp_path / "three.txt"), "k.txt"),
        v2.delete,
        instance.engine,
        "the delete",
        waits=_waits(instance),
    )
    assert exitcode == 0 and outcome == [None], outcome
    latest = ll.Artifact.get(key="k.txt")
    assert Path(latest.cache()).read_text() == "three"
    assert _stored("k.txt") == [(v1.uid, False), (latest.uid, True)]


def test_a_save_waits_for_a_delete_of_its_key(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the delete of version 2 holds its row deleted while version 3 is
    saved: the save becomes the next version of version 1, the only latest."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    v1, v2 = _versions(tmp_path, "k.txt", "one", "two")
    (tmp_path / "three.txt").write_text("three")

    def save_three() -> ll.Artifact:
        return ll.Artifact(tmp_path / "three.txt", key="k.txt").save()

    exitcode, outcome = second_while_held(
        _delete_held, (v2.uid,), save_three, instance.engine, "the save", waits=_waits(instance)
    )
    assert exitcode == 0 and len(outcome) == 1 and isinstance(outcome[0], ll.Artifact), outcome
    assert _stored("k.txt") == [(v1.uid, False), (outcome[0].uid, True)]
    assert Path(ll.Artifact.get(key="k.txt").cache()).read_text() == "three"


def test_two_deletes_of_one_key_leave_a_latest_version(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 2 is deleted (held, not committed) while the latest, version 3, is deleted.
    Before: the second made version 2 the latest again, which the first deleted: version 1
    was left with no latest version at all."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    v1, v2, v3 = _versions(tmp_path, "k.txt", "one", "two", "three")
    exitcode, outcome = second_while_held(
        _delete_held,
        (v2.uid,),
        v3.delete,
        instance.engine,
        "the second delete",
        waits=_waits(instance),
    )
    assert exitcode == 0 and outcome == [None], outcome
    assert _stored("k.txt") == [(v1.uid, True)]
    assert Path(ll.Artifact.get(key="k.txt").cache()).read_text() == "one"


def test_a_move_waits_for_a_save_of_the_key(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`space add KEY` while a new version of KEY is written (not committed). Before: the
    move waited for the save's row lock and moved the versions its statement saw: the new
    version stayed in the old space (PostgreSQL)."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    _versions(tmp_path, "k.txt", "one")
    spaces.create(instance, "b")
    (tmp_path / "two.txt").write_text("two")
    exitcode, outcome = second_while_held(
        _save_held,
        (str(tmp_path / "two.txt"), "k.txt"),
        lambda: spaces.move(instance, "b", keys=["k.txt"]),
        instance.engine,
        "the move",
        waits=_waits(instance),
    )
    assert exitcode == 0 and outcome == [2], outcome
    uids = [uid for uid, _ in _stored("k.txt")]
    assert len(uids) == 2
    assert [spaces.space_of(instance, "artifacts", uid) for uid in uids] == ["b", "b"]


def test_a_move_and_a_delete_of_one_key_do_not_deadlock(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete of the latest version holds its row deleted while the key is moved; then it
    makes version 1 the latest. Before: the move held version 1's row waiting for the
    deleted one, the delete waited for version 1: a deadlock, one of them failed
    (PostgreSQL)."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    v1, v2 = _versions(tmp_path, "k.txt", "one", "two")
    spaces.create(instance, "b")
    exitcode, outcome = second_while_held(
        _delete_held,
        (v2.uid,),
        lambda: spaces.move(instance, "b", keys=["k.txt"]),
        instance.engine,
        "the move",
        waits=_waits(instance),
    )
    assert exitcode == 0 and outcome == [1], outcome
    assert _stored("k.txt") == [(v1.uid, True)]
    assert spaces.space_of(instance, "artifacts", v1.uid) == "b"


def test_a_delete_under_repeatable_read_waits_and_is_retried(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the first test with the database's transactions REPEATABLE READ (a role's or
    database's setting lakeline does not choose): the delete's snapshot predates the save's
    commit it waited for, its DELETE meets a serialization failure and runs again (before: the
    failure reached the caller)."""
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
    test_a_delete_waits_for_a_save_of_its_key(instance, tmp_path, monkeypatch)
