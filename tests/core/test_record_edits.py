"""Re-saving a loaded artifact: identity is immutable, metadata is validated like a new record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.errors import InvalidKey, InvalidValue, ReadOnlyField
from lakeline.instance import Instance


def _two(tmp_path: Path) -> tuple[ll.Artifact, ll.Artifact]:
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("beta\n")
    a = ll.Artifact(tmp_path / "a.txt", key="raw/a.txt", description="first").save()
    b = ll.Artifact(tmp_path / "b.txt", key="raw/b.txt").save()
    return a, b


def _row(uid: str) -> dict[str, Any]:
    record = ll.Artifact.get(uid)
    return {c.key: getattr(record, c.key) for c in ll.Artifact.__table__.columns}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("is_latest", False),
        ("uid", "short"),
        ("stem", "xxxxxxxxxxxx"),
        ("hash", "other"),
        ("store_key", "other"),
        ("size", 1),
        ("storage_id", 999),
        ("in_place", True),
        ("available", False),
        ("run_id", 12345),
        ("created_at", None),
    ],
)
def test_identity_fields_cannot_be_changed(
    instance: Instance, tmp_path: Path, field: str, value: Any
) -> None:
    a, _ = _two(tmp_path)
    before = _row(a.uid)
    loaded = ll.Artifact.get(key="raw/a.txt")
    setattr(loaded, field, value)
    loaded.description = "changed too"  # nothing of an invalid edit is written
    with pytest.raises(ReadOnlyField, match=f"{field} of artifact {a.uid} cannot be changed"):
        ll.save([loaded])
    assert _row(a.uid) == before


def test_pointing_at_another_artifacts_bytes_is_refused(instance: Instance, tmp_path: Path) -> None:
    a, b = _two(tmp_path)
    loaded = ll.Artifact.get(a.uid)
    loaded.hash, loaded.store_key = b.hash, b.store_key
    with pytest.raises(ReadOnlyField, match="hash"):
        loaded.save()
    assert Path(ll.Artifact.get(a.uid).cache()).read_text() == "alpha\n"


def test_an_edited_key_is_validated_like_a_new_one(instance: Instance, tmp_path: Path) -> None:
    a, b = _two(tmp_path)
    loaded = ll.Artifact.get(a.uid)
    for bad, message in (
        ("../../etc/passwd", r"'\.\.'"),
        ("/etc/passwd.txt", "absolute"),
        (".lakeline/objects/x.txt", "internal"),
        ("raw/a\x1b[31m.txt", "control character"),
        ("raw/a.csv", "ends in '.csv'"),
        ("raw/b.txt", "already names artifact " + b.uid),
    ):
        loaded.key = bad
        with pytest.raises(InvalidKey, match=message):
            loaded.save()
        assert ll.Artifact.get(a.uid).key == "raw/a.txt"
    loaded.key = "renamed/a.txt"
    loaded.save()
    assert ll.Artifact.get(key="renamed/a.txt").uid == a.uid
    assert [x.uid for x in ll.Artifact.search("renamed")] == [a.uid]


def test_metadata_edits_are_written_and_checked(instance: Instance, tmp_path: Path) -> None:
    a, _ = _two(tmp_path)
    loaded = ll.Artifact.get(a.uid)
    loaded.description, loaded.kind, loaded.version = "the platypus file", "table", "v1.0"
    ll.save([loaded])
    again = ll.Artifact.get(a.uid)
    assert (again.description, again.kind, again.version) == ("the platypus file", "table", "v1.0")
    assert [x.uid for x in ll.Artifact.search("platypus")] == [a.uid]
    loaded.version = "7"
    with pytest.raises(InvalidValue, match="is a number"):
        loaded.save()
    loaded.version = "v1.0"
    loaded.kind = "k" * 65
    with pytest.raises(InvalidValue, match="kind"):
        loaded.save()
    loaded.kind = "table"
    loaded.description = 42  # type: ignore[assignment]
    with pytest.raises(InvalidValue, match="description"):
        loaded.save()
    assert ll.Artifact.get(a.uid).description == "the platypus file"


def test_resaving_identical_content_with_a_new_description_updates_it(
    instance: Instance, tmp_path: Path
) -> None:
    a, _ = _two(tmp_path)
    again = ll.Artifact(tmp_path / "a.txt", key="raw/a.txt", description="second thoughts").save()
    assert again.uid == a.uid and not again.created
    assert again.description == "second thoughts"
    assert ll.Artifact.get(a.uid).description == "second thoughts"
    assert [x.uid for x in ll.Artifact.search("thoughts")] == [a.uid]
    # no description given: the recorded one stays
    kept = ll.Artifact(tmp_path / "a.txt", key="raw/a.txt").save()
    assert kept.description == "second thoughts"
    bulk = ll.save([ll.Artifact(tmp_path / "a.txt", key="raw/a.txt", kind="notes")])
    assert bulk[0].uid == a.uid and ll.Artifact.get(a.uid).kind == "notes"


def test_a_deleted_record_cannot_be_resaved(instance: Instance, tmp_path: Path) -> None:
    a, _ = _two(tmp_path)
    loaded = ll.Artifact.get(a.uid)
    ll.Artifact.get(a.uid).delete()
    loaded.description = "ghost"
    with pytest.raises(ll.errors.DoesNotExist, match=a.uid):
        loaded.save()


def test_an_older_copy_writes_only_its_own_edits(instance: Instance, tmp_path: Path) -> None:
    """Two copies of one record (two loads, or one pickled into a worker with an unsaved
    edit): each save writes what was edited on that copy, never the other columns it loaded
    before the other's save (before: the older copy's description silently reverted the
    newer one, and a new version saved meanwhile made its is_latest a ReadOnlyField)."""
    import pickle

    a, _ = _two(tmp_path)
    first, second = ll.Artifact.get(a.uid), ll.Artifact.get(a.uid)
    second.kind = "table"
    shipped = pickle.dumps(second)  # a task's argument, with its unsaved edit
    first.description = "newer"
    first.save()
    (tmp_path / "a.txt").write_text("alpha, version 2\n")
    ll.Artifact(tmp_path / "a.txt", key="raw/a.txt").save()  # a's is_latest is now False
    worker = pickle.loads(shipped)
    worker.save()
    row = _row(a.uid)
    assert (row["description"], row["kind"], row["is_latest"]) == ("newer", "table", False)
    second.save()  # the same edit again: nothing to write, nothing refused
    assert _row(a.uid) == row


def test_an_edit_of_a_field_changed_since_the_copy_was_loaded_is_refused(
    instance: Instance, tmp_path: Path
) -> None:
    """Both copies edited the description: the second save would overwrite a value it never
    saw, so it is refused naming both, and nothing of it is written."""
    from lakeline.errors import EditConflict

    a, _ = _two(tmp_path)
    first, second = ll.Artifact.get(a.uid), ll.Artifact.get(a.uid)
    first.description = "newer"
    first.save()
    second.description, second.kind = "older edit", "table"
    with pytest.raises(EditConflict, match=f"description of artifact {a.uid} is now 'newer'"):
        second.save()
    row = _row(a.uid)
    assert (row["description"], row["kind"]) == ("newer", None)
    again = ll.Artifact.get(a.uid)
    again.description = "merged"
    again.save()
    assert ll.Artifact.get(a.uid).description == "merged"
