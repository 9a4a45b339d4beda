"""`storage_containing` remembers, per folder, the storage root holding its files: the same
answer as looking at every root, after a root is registered (nested or not), and per
instance (another catalog has other roots)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.artifacts.locate import _containing, _roots, storage_containing
from lakeline.instance import Instance


def answers(instance: Instance, locations: list[str]) -> list[tuple[str, str] | None]:
    found = []
    for location in locations:
        cached = storage_containing(location, instance, normalized=True)
        every = _containing(location, _roots(instance), normalized=True)
        assert cached == every, location
        found.append(None if cached is None else (cached[0].root, cached[1]))
    return found


def test_the_cached_answer_is_every_roots_after_each_registration(
    instance: Instance, tmp_path: Path
) -> None:
    base = str(tmp_path / "w")
    locations = [
        f"{base}/a/f.txt",
        f"{base}/a/b/f.txt",
        f"{base}/a/b/c/f.txt",
        f"{base}/a/bx/f.txt",  # a sibling whose name starts as b's
        f"{base}/a/b",  # a root itself: in the root above it
        f"{base}/a",
        f"{base}/f.txt",
        "/",
    ]
    (tmp_path / "w" / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "w" / "a" / "bx").mkdir()
    assert answers(instance, locations)[:6] == [None] * 6  # (the default storage elsewhere)
    instance.register_storage(f"{base}/a")
    a = answers(instance, locations)
    assert a[:6] == [
        (f"{base}/a", "f.txt"),
        (f"{base}/a", "b/f.txt"),
        (f"{base}/a", "b/c/f.txt"),
        (f"{base}/a", "bx/f.txt"),
        (f"{base}/a", "b"),
        None,
    ]
    instance.register_storage(f"{base}/a/b")  # nested: the longest root holds its files
    ab = answers(instance, locations)
    assert ab[1:5] == [
        (f"{base}/a/b", "f.txt"),
        (f"{base}/a/b", "c/f.txt"),
        (f"{base}/a", "bx/f.txt"),
        (f"{base}/a", "b"),
    ]
    assert answers(instance, [f"{base}/a/b/c/g.txt"]) == [(f"{base}/a/b", "c/g.txt")]


def test_each_instance_has_its_own_answer(instance: Instance, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    location = str(folder / "f.txt")
    instance.register_storage(folder)
    assert answers(instance, [location]) == [(str(folder), "f.txt")]
    other = ll.init(tmp_path / "other-data", name="other")
    assert other is not instance
    assert answers(other, [location]) == [None]
    assert answers(instance, [location]) == [(str(folder), "f.txt")]
