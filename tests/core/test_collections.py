"""Collections: ordered, versioned sets of artifacts."""

from __future__ import annotations

import lakeline as ll
import pytest
from lakeline.errors import LakelineError
from lakeline.instance import Instance


def saved(n: int, prefix: str = "f") -> list[ll.Artifact]:
    return ll.save([ll.Artifact({"i": i}, key=f"{prefix}/{i}.json") for i in range(n)])


def test_collection_keeps_order_and_versions(instance: Instance) -> None:
    files = saved(4)
    first = ll.Collection(
        [files[2], files[0], files[1]], key="datasets/trio", description="3"
    ).save()
    assert first.uid.endswith("0000") and first.is_latest
    assert [a.key for a in first.artifacts] == ["f/2.json", "f/0.json", "f/1.json"]
    same = ll.Collection([files[2], files[0], files[1]], key="datasets/trio").save()
    assert same.uid == first.uid  # same members, same order: the existing record
    second = ll.Collection(files, key="datasets/trio").save()
    assert second.stem == first.stem and second.uid.endswith("0001")
    assert second.description == "3"  # carried over from the previous version
    assert [c.uid for c in second.versions] == [first.uid, second.uid]
    assert ll.Collection.get(key="datasets/trio").uid == second.uid
    second.delete()
    assert ll.Collection.get(key="datasets/trio").uid == first.uid
    assert ll.Artifact.filter(key__startswith="f/").count() == 4  # artifacts stay


def test_member_artifacts_cannot_vanish(instance: Instance) -> None:
    files = saved(2)
    ll.Collection(files, key="datasets/pair").save()
    with pytest.raises(LakelineError, match="belongs to a collection"):
        files[0].delete()
    assert ll.Artifact.filter(key__startswith="f/").count() == 2


def test_bad_members(instance: Instance) -> None:
    with pytest.raises(LakelineError, match="at least one"):
        ll.Collection([], key="datasets/empty")
    with pytest.raises(TypeError, match="hold Artifacts"):
        ll.Collection(["f/0.json"], key="datasets/x")  # type: ignore[list-item]
    unsaved = ll.Artifact({"x": 1}, key="x.json")
    with pytest.raises(LakelineError, match=r"save artifact x\.json"):
        ll.Collection([unsaved], key="datasets/x")
    assert ll.Collection.filter().count() == 0


def test_an_older_copy_of_a_collection_writes_only_its_own_edits(instance: Instance) -> None:
    """A collection loaded (or pickled into a task) before a new version was saved, then
    edited and saved: its description is written, nothing else of what it loaded (before,
    the whole stale row was merged back: the old version became latest again beside the new
    one, and the other copy's description was reverted; a deleted one was inserted again)."""
    files = saved(2)
    first = ll.Collection([files[0]], key="datasets/c", description="one").save()
    stale, other = ll.Collection.get(first.uid), ll.Collection.get(first.uid)
    second = ll.Collection(files, key="datasets/c").save()
    other.version = "v1"
    other.save()
    stale.description = "the first version"
    stale.save()
    old = ll.Collection.get(first.uid)
    assert (old.description, old.version, old.is_latest) == ("the first version", "v1", False)
    assert ll.Collection.get(key="datasets/c").uid == second.uid
    assert ll.Collection.filter(key="datasets/c", is_latest=True).count() == 1
    second_copy = ll.Collection.get(second.uid)
    second.delete()  # a copy of a deleted collection is not inserted again
    second_copy.description = "ghost"
    with pytest.raises(ll.errors.DoesNotExist, match=second.uid):
        second_copy.save()
    assert ll.Collection.filter(key="datasets/c").count() == 1
