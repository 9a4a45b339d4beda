"""A key edit of a copy loaded as its key's latest version, saved after another save made a
new version under that key: the edit would rename what is now an old version, leaving the
new key with no latest version (`get(key=)` finds nothing there) and the old key's history
split. It is refused as an EditConflict naming the new version; nothing is written."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import EditConflict
from lakeline.instance import Instance
from sqlalchemy import text


def _keys(instance: Instance) -> list[tuple[str, str, bool]]:
    with instance.engine.connect() as conn:
        rows = conn.execute(text("SELECT key, uid, is_latest FROM artifacts ORDER BY uid"))
        return [(str(k), str(u), bool(latest)) for k, u, latest in rows]


def test_a_key_edit_of_a_copy_no_longer_the_latest_is_refused(
    instance: Instance, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha\n")
    first = ll.Artifact(tmp_path / "a.txt", key="raw/a.txt").save()
    loaded = ll.Artifact.get(key="raw/a.txt")  # the latest, as this copy was loaded
    assert loaded.is_latest
    (tmp_path / "a.txt").write_text("alpha, version 2\n")
    second = ll.Artifact(tmp_path / "a.txt", key="raw/a.txt").save()  # another save's
    assert second.uid != first.uid
    before = _keys(instance)
    loaded.key = "raw/renamed.txt"
    loaded.description = "renamed"  # nothing of the refused save is written
    with pytest.raises(EditConflict, match=rf"{first.uid}.*no longer the latest.*{second.uid}"):
        loaded.save()
    assert _keys(instance) == before
    assert ll.Artifact.get(key="raw/a.txt").uid == second.uid
    latest = ll.Artifact.get(key="raw/a.txt")  # loaded again: renaming the latest is fine
    latest.key = "raw/renamed.txt"
    latest.save()
    assert ll.Artifact.get(key="raw/renamed.txt").uid == second.uid


def test_a_description_edit_of_a_copy_no_longer_the_latest_is_written(
    instance: Instance, tmp_path: Path
) -> None:
    """Only the key names the latest: other metadata of an old version is its own."""
    (tmp_path / "a.txt").write_text("alpha\n")
    first = ll.Artifact(tmp_path / "a.txt", key="raw/a.txt").save()
    loaded = ll.Artifact.get(key="raw/a.txt")
    (tmp_path / "a.txt").write_text("alpha, version 2\n")
    ll.Artifact(tmp_path / "a.txt", key="raw/a.txt").save()
    loaded.description = "the first version"
    loaded.save()
    assert ll.Artifact.get(first.uid).description == "the first version"
