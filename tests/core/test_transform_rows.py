"""`ensure_transform` reads and writes transforms with SQL text: its records are those the
catalog holds (every column, detached, of their instance), versions as before."""

from __future__ import annotations

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.records import ensure_transform
from lakeline.models import Transform
from sqlalchemy import inspect

COLUMNS = [column.key for column in Transform.__table__.columns]


def _row(record: Transform) -> dict[str, object]:
    return {name: vars(record)[name] for name in COLUMNS}


def _stored(record: Transform) -> dict[str, object]:
    return _row(ll.Transform.get(record.uid))


def test_records_are_the_stored_rows_and_versions_follow_the_code(instance: Instance) -> None:
    def ensure(**given: object) -> Transform:
        with instance.sessions.write() as session:
            return ensure_transform(session, key="p.py", kind="script", **given)  # type: ignore[arg-type]

    first = ensure(hash="h1", description="first", created_by_id=instance.user.id)
    nested = ensure(hash="n1", parent_id=first.id)
    same = ensure(hash="h1")
    latest = ensure(hash=None)
    second = ensure(hash="h2")
    again = ensure(hash="h1")  # the code of an older version: that version
    for record in (first, nested, same, latest, second, again):
        state = inspect(record)
        assert state.detached and not state.expired_attributes
        assert record.instance is instance
    assert _row(first) == {**_stored(first), "is_latest": True}  # loaded before `second`
    assert _row(same) == _row(latest) == _row(first)
    assert nested.id != first.id and nested.parent_id == first.id and nested.stem != first.stem
    assert _row(second) == _stored(second)
    assert (second.stem, second.version_number, second.description) == (first.stem, 2, "first")
    assert _row(again) == _stored(first) and again.is_latest is False
    assert ensure(hash=None).id == second.id  # the latest


def test_a_transform_pending_in_the_session_is_found(instance: Instance) -> None:
    """As the ORM's select autoflushed the session: a transform added, not yet flushed, is
    the one found (not a second version beside it)."""
    with instance.sessions.write() as session:
        pending = Transform(
            key="q.py", kind="script", hash="h", stem="pendingstem1", uid="pendingstem10000"
        )
        session.add(pending)
        found = ensure_transform(session, key="q.py", kind="script", hash="h")
        assert found.id == pending.id
    assert ll.Transform.filter(key="q.py", is_latest=None).count() == 1
