"""A save of up to a chunk of files reads its keys and the records at its places with one
statement (`Places.lookup`, each list one bound parameter), and finds what the separate
statements found: references its files fill in, keys it makes new versions of, records at
its locations."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.models import Artifact
from statements import recorded


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _reads(seen: list[tuple[str, object]]) -> list[str]:
    """The SELECTs of artifacts a save sent before its INSERT (its look-ups)."""
    reads = []
    for sql, _ in seen:
        words = " ".join(sql.split())
        if words.startswith("INSERT INTO artifacts"):
            break
        if words.startswith("SELECT") and " FROM artifacts" in words and "max(" not in words:
            reads.append(words)
    return reads


def test_a_save_of_forty_files_reads_once_and_finds_every_match(instance: Instance) -> None:
    root = Path(instance.storage.root)
    (root / "runs").mkdir()
    # earlier records the batch must find: a reference at an in-place location (filled in),
    # a keyed reference (filled in by hash), a keyed file (a new version), a located record
    waiting = ll.Artifact.reference(
        root / "runs" / "f0.txt", key="tables/f0.txt", hash=sha("text 0"), hash_type="sha256"
    ).save()
    keyed = ll.Artifact.reference(
        "lid://9f/k1.txt", key="k/1.txt", hash=sha("text 1"), hash_type="sha256"
    ).save()
    (root / "old.txt").write_text("old")
    versioned = ll.Artifact(root / "old.txt", key="k/2.txt").save()
    (root / "runs" / "f3.txt").write_text("text 3")
    located = ll.Artifact(root / "runs" / "f3.txt").save()
    batch = []
    for i in range(40):
        path = root / "runs" / f"f{i}.txt"
        path.write_text(f"text {i}")
        key = {1: "k/1.txt", 2: "k/2.txt"}.get(i)
        batch.append(ll.Artifact(path, key=key))
    saved = ll.save(batch)
    assert saved[0].uid == waiting.uid and saved[0].available and not saved[0].created
    assert saved[0].key == "tables/f0.txt"  # a location keeps its record's key
    assert saved[1].uid == keyed.uid and saved[1].available and not saved[1].created
    assert saved[2].stem == versioned.stem and saved[2].uid != versioned.uid
    assert saved[2].created and not ll.Artifact.get(versioned.uid).is_latest
    assert saved[3].uid == located.uid and not saved[3].created  # same bytes, same place
    assert all(a.created for a in saved[4:])
    assert [a.key for a in saved[4:]] == [f"runs/f{i}.txt" for i in range(4, 40)]
    assert ll.Artifact.filter(available=False).count() == 0
    # the same files again, in place without keys: each its record at that place
    again = ll.save([ll.Artifact(root / "runs" / f"f{i}.txt") for i in range(40)])
    assert [a.uid for a in again] == [a.uid for a in saved] and not any(a.created for a in again)
    with instance.sessions.read() as session:
        assert session.query(Artifact).filter(Artifact.key.like("runs/%")).count() == 37


def test_forty_new_files_and_the_same_again_take_one_read_each(instance: Instance) -> None:
    root = Path(instance.storage.root)
    (root / "new").mkdir()
    for i in range(40):
        (root / "new" / f"n{i}.txt").write_text(f"new {i}")
    for round_ in ("new", "again"):
        with recorded(instance.engine) as seen:
            saved = ll.save([ll.Artifact(root / "new" / f"n{i}.txt") for i in range(40)])
        assert len(_reads(seen)) == 1, (round_, _reads(seen))  # keys and places at once
        assert all(a.created for a in saved) == (round_ == "new")
    assert ll.Artifact.filter(key__startswith="new/").count() == 40
