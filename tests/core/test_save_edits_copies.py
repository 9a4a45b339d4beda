"""Two loaded copies of one record, edited differently, in one save: refused as the second of
two saves would be (EditConflict), not the first copy's edit silently overwritten while its
object says it was saved."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import EditConflict
from lakeline.instance import Instance
from sqlalchemy import inspect


@pytest.mark.parametrize("field", ["key", "description"])
def test_two_copies_edited_differently_in_one_save_conflict(
    instance: Instance, tmp_path: Path, field: str
) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "n.txt").write_text("new")
    uid = ll.Artifact(tmp_path / "a.txt", key="raw/a.txt", description="old").save().uid
    one, two = ll.Artifact.get(uid), ll.Artifact.get(uid)
    values = {"key": ("b/a.txt", "c/a.txt"), "description": ("one", "two")}[field]
    setattr(one, field, values[0])
    setattr(two, field, values[1])
    new = ll.Artifact(tmp_path / "n.txt", key="new/n.txt")
    with pytest.raises(EditConflict, match="two copies"):
        ll.save([one, two, new])
    stored = ll.Artifact.get(uid)
    assert (stored.key, stored.description) == ("raw/a.txt", "old")
    assert new.id is None and ll.Artifact.filter().count() == 1
    for copy, value in zip((one, two), values, strict=True):
        assert getattr(copy, field) == value
        assert getattr(inspect(copy).attrs, field).history.has_changes()
    ll.save([two])  # one copy alone: saved
    assert getattr(ll.Artifact.get(uid), field) == values[1]
