"""`settle.detach` makes saved records detached with SQLAlchemy's per-class work done once a
batch: the state it leaves is the state `make_transient_to_detached` leaves, attribute by
attribute (it sets SQLAlchemy's state itself, so an upgrade that changes what the ORM keeps
fails here), for new records and for re-saved ones that adopt a record found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
from lakeline.artifacts.settle import detach
from lakeline.instance import Instance
from sqlalchemy import event, inspect
from sqlalchemy.orm import make_transient_to_detached


def _state(artifact: ll.Artifact) -> dict[str, Any]:
    state = inspect(artifact)
    return {
        "key": state.key,
        "flags": (state.transient, state.pending, state.detached, state.persistent),
        "modified": state.modified,
        "expired_flag": state.expired,
        "strong": state._strong_obj is not None,
        "pending_mutations": "_pending_mutations" in state.__dict__,
        "committed": dict(state.committed_state),
        "expired": set(state.expired_attributes),
        "unloaded": set(state.unloaded),
        "dict": {k: v for k, v in state.dict.items() if not k.startswith("_sa_")},
    }


def _twins(tmp_path: Path, n: int) -> tuple[list[ll.Artifact], list[ll.Artifact]]:
    """Pairs of records as a save leaves them before detaching: the same values, with ids."""
    ours, theirs = [], []
    for i in range(n):
        path = tmp_path / f"f{i}.txt"
        path.write_text(f"file {i}\n")
        saved = ll.Artifact(path, key=f"detach/f{i}.txt").save()
        for side in (ours, theirs):
            twin = ll.Artifact(path, key=f"detach/f{i}.txt")
            for name in ("id", "uid", "stem", "hash", "size", "storage_id", "store_key"):
                setattr(twin, name, getattr(saved, name))
            side.append(twin)
    return ours, theirs


def test_detach_leaves_the_state_sqlalchemy_leaves(instance: Instance, tmp_path: Path) -> None:
    ours, theirs = _twins(tmp_path, 3)
    detach(ours)
    for artifact in theirs:
        make_transient_to_detached(artifact)
    for mine, reference in zip(ours, theirs, strict=True):
        assert _state(mine) == _state(reference)
        assert inspect(mine).detached and inspect(mine).key[1] == (mine.id,)


def test_detach_of_records_filled_without_events_leaves_sqlalchemys_state(
    instance: Instance, tmp_path: Path
) -> None:
    """As a flush makes them: values set without attribute events (`fill_new`: nothing in
    the committed state, the expired set empty), some columns never set."""
    from lakeline.db.rows import fill_new

    ours, theirs = [], []
    for i in range(3):
        for side in (ours, theirs):
            record = ll.Artifact.__mapper__.class_manager.new_instance()
            fill_new(record, {"id": 1000 + i, "uid": f"u{i:015d}", "key": f"k{i}", "hash": None})
            side.append(record)
    detach(ours)
    for artifact in theirs:
        make_transient_to_detached(artifact)
    for mine, reference in zip(ours, theirs, strict=True):
        assert _state(mine) == _state(reference)


def test_detached_records_load_what_they_lack_and_save_edits(
    instance: Instance, tmp_path: Path
) -> None:
    ours, _ = _twins(tmp_path, 1)
    detach(ours)
    artifact = ours[0]
    assert "created_at" in inspect(artifact).expired_attributes
    artifact.description = "edited after the save"
    artifact.save()
    again = ll.Artifact.get(artifact.uid)
    assert again.description == "edited after the save"
    assert again.created_at is not None and again.hash == artifact.hash


def test_a_listener_on_expire_gets_sqlalchemys_own_call(instance: Instance, tmp_path: Path) -> None:
    heard: list[Any] = []

    def on_expire(target: Any, attrs: Any) -> None:
        heard.append((target, attrs))

    ours, _ = _twins(tmp_path, 2)
    event.listen(ll.Artifact, "expire", on_expire)
    try:
        detach(ours)
    finally:
        event.remove(ll.Artifact, "expire", on_expire)
    assert [target for target, _ in heard] == ours  # SQLAlchemy's call fires it, ours would not
