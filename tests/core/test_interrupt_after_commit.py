"""A Ctrl-C that lands once a save's records committed, before the save returns: the save
stands (records, their bytes, the objects saved) and the interrupt is raised after it.
Before, it reached the handler meant for a save that failed before its commit, which
removed the stored bytes of the committed records (a record whose bytes were gone)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lakeline as ll
import pytest
from faults import raise_once_at
from lakeline.access.audit import verify
from lakeline.instance import Instance
from sqlalchemy import inspect
from test_bulk_pipeline import files


@pytest.mark.parametrize("count", [1, 3])
def test_an_interrupt_once_committed_keeps_the_save(
    instance: Instance, tmp_path: Path, count: int
) -> None:
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in files(tmp_path / "src", count)]
    with raise_once_at("save.committed", KeyboardInterrupt()), pytest.raises(KeyboardInterrupt):
        ll.save(artifacts)
    root = Path(instance.storage.root)
    stored = ll.Artifact.filter(key__startswith="k/").all()
    assert len(stored) == count
    for record in stored:  # each record's bytes there
        data = (root / record.store_key).read_bytes()
        assert record.hash == hashlib.sha256(data).hexdigest()
    for artifact in artifacts:  # the objects saved, as a save that returned leaves them
        assert inspect(artifact).detached
        assert artifact.hash == ll.Artifact.get(artifact.uid).hash
    assert verify(instance).ok
    again = ll.save(artifacts)  # saved: nothing new
    assert [a.uid for a in again] == [a.uid for a in artifacts]
    assert ll.Artifact.filter(key__startswith="k/").count() == count
