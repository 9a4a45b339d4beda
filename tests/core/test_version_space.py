"""A new version of an artifact stays in its previous version's space, on both databases
(PostgreSQL: 0008's `lakeline_version_space` trigger; SQLite: 0023's). Before, on SQLite a
new version of an artifact moved to another space landed in `all`."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.access import spaces
from lakeline.instance import Instance


def _saved(tmp_path: Path, name: str, content: str, key: str) -> ll.Artifact:
    path = tmp_path / name
    path.write_text(content)
    return ll.Artifact(path, key=key).save()


def test_a_new_version_lands_where_its_previous_version_is(
    instance: Instance, tmp_path: Path
) -> None:
    v1 = _saved(tmp_path, "one.txt", "one", "k.txt")
    other = _saved(tmp_path, "other.txt", "other", "other.txt")
    spaces.create(instance, "b")
    assert spaces.move(instance, "b", keys=["k.txt"]) == 1
    v2 = _saved(tmp_path, "two.txt", "two", "k.txt")
    assert v2.uid[:-4] == v1.uid[:-4] and v2.uid != v1.uid
    assert spaces.space_of(instance, "artifacts", v2.uid) == "b"
    # a first version, and a new version of one left in `all`: `all`
    assert spaces.space_of(instance, "artifacts", _saved(tmp_path, "n.txt", "n", "n.txt").uid) == (
        "all"
    )
    assert spaces.space_of(
        instance, "artifacts", _saved(tmp_path, "o2.txt", "o2", "other.txt").uid
    ) == ("all")
    assert spaces.space_of(instance, "artifacts", other.uid) == "all"


def test_new_versions_saved_in_a_batch_land_in_their_spaces(
    instance: Instance, tmp_path: Path
) -> None:
    """One save of new versions of keys in two spaces and of new keys: each lands where its
    previous version is (SQLite: one multi-row INSERT; PostgreSQL: the statement's rows)."""
    for i in range(6):
        _saved(tmp_path, f"v1-{i}.txt", f"one {i}", f"k/{i}.txt")
    spaces.create(instance, "b")
    spaces.create(instance, "c")
    spaces.move(instance, "b", keys=["k/0.txt", "k/1.txt"])
    spaces.move(instance, "c", keys=["k/2.txt"])
    paths = []
    for i in range(8):
        path = tmp_path / f"v2-{i}.txt"
        path.write_text(f"two {i}")
        paths.append(path)
    saved = ll.save([ll.Artifact(p, key=f"k/{i}.txt") for i, p in enumerate(paths)])
    where = [spaces.space_of(instance, "artifacts", a.uid) for a in saved]
    assert where == ["b", "b", "c", "all", "all", "all", "all", "all"]
    assert all(a.is_latest for a in saved)
