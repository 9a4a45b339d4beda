"""Registering a storage root: the instance's storages hold the new record as a reload of
them would, without reading them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
from lakeline.instance import Instance
from lakeline.models import Storage
from statements import recorded


def _columns(storage: Storage) -> tuple[Any, ...]:
    return tuple(getattr(storage, c.key) for c in Storage.__table__.columns)


def test_a_new_root_is_in_the_storages_as_loaded_without_reading_them(
    instance: Instance, tmp_path: Path
) -> None:
    before = instance.storages_by_id()
    folder = tmp_path / "workflow"
    folder.mkdir()
    with recorded(instance.sessions.engine) as sent:
        record = instance.register_storage(folder)
    assert record.id is not None and record.root == str(folder)
    reads = [sql for sql, _ in sent if sql.lstrip().upper().startswith("SELECT")]
    assert not [sql for sql in reads if "storages" in sql], reads  # one INSERT, no reload
    held = instance.storages_by_id()
    assert held is not before and set(held) == {*before, record.id}  # a new dict, as a reload
    mine = {storage_id: _columns(storage) for storage_id, storage in held.items()}
    instance.load_storages()
    loaded = {storage_id: _columns(s) for storage_id, s in instance.storages_by_id().items()}
    assert mine == loaded  # every column as the database holds it

    with recorded(instance.sessions.engine) as again:
        assert instance.register_storage(folder).id == record.id  # known: nothing written
    assert not again

    (folder / "a.txt").write_text("a\n")
    saved = ll.Artifact(folder / "a.txt").save()
    assert saved.in_place and saved.storage_id == record.id and saved.key == "a.txt"


def test_a_root_another_process_registered_meanwhile_is_its_record(
    instance: Instance, tmp_path: Path
) -> None:
    """The INSERT meets the other's row (unique root): the record returned is that row, the
    storages are loaded again with it, and nothing else was written."""
    from lakeline.db.engine import make_engine

    folder = tmp_path / "raced"
    folder.mkdir()
    count = len(instance.storages_by_id())  # loaded before the other one registers it
    other = Instance(instance.config, make_engine(instance.config.db, create=False))
    try:
        theirs = other.register_storage(folder)
    finally:
        other.engine.dispose()
    mine = instance.register_storage(folder)
    assert (mine.id, mine.uid, mine.root) == (theirs.id, theirs.uid, str(folder))
    assert len(instance.storages_by_id()) == count + 1
    assert instance.storages_by_id()[mine.id].uid == theirs.uid
    assert Storage.filter(root=str(folder)).count() == 1
