"""A transfer against a save of the same key in the target, held inside its transaction in another
process (tests/core/faults.py): the transfer takes the keys' locks first, as every writer of a
key (db/locks.py), so it meets the saved record and refuses with its clear error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lakeline as ll
import mesh
import pytest
from faults import second_while_held
from lakeline.artifacts.save import save_artifacts
from lakeline.errors import TransferConflict
from lakeline.instance import Instance

two_instances = mesh.two_instances


def _save_held(pause: Any, path: str, key: str) -> None:
    """In a child process: save `path` under `key` in the current instance, held with its
    records written."""
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at("save.written", pause.hold):
        ll.Artifact(path, key=key).save()


def refused_while_saving(lab: Instance, path: Path, key: str, transfer: Callable[[], Any]) -> None:
    """`transfer()` while `lab`'s save of `path` under `key` is held written in another
    process: it waits for the save's key lock (PostgreSQL) and is refused (TransferConflict)."""
    exitcode, outcome = second_while_held(
        _save_held,
        (str(path), key),
        transfer,
        lab.engine,
        "the transfer",
        waits=lab.dialect == "postgresql",
    )
    assert exitcode == 0 and len(outcome) == 1
    assert isinstance(outcome[0], TransferConflict), outcome


def test_a_transfer_waits_for_a_save_of_its_key(
    two_instances: tuple[Instance, Instance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target's save of `sc/pbmc.csv` is held written while a record with that key comes
    from the other instance: the transfer waits for the save's key lock and then finds the
    key taken (before: no key lock; it inserted its latest record under the key, ran into the
    save's unique index entry and raised a bare unique violation once the save committed)."""
    lab, atlas = two_instances
    monkeypatch.setenv("LAKELINE_INSTANCE", lab.name)
    (tmp_path / "atlas.csv").write_text("a,b\n1,2\n")
    save_artifacts([ll.Artifact(tmp_path / "atlas.csv", key="sc/pbmc.csv")], atlas)
    theirs = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")
    (tmp_path / "lab.csv").write_text("a,b\n3,4\n")
    refused_while_saving(lab, tmp_path / "lab.csv", "sc/pbmc.csv", theirs.save)
    mine = ll.Artifact.get(key="sc/pbmc.csv")
    assert mine.uid != theirs.uid and Path(mine.cache()).read_text() == "a,b\n3,4\n"
    assert ll.Artifact.filter().count() == 1


def test_a_newer_version_waits_for_a_save_of_its_key(
    two_instances: tuple[Instance, Instance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 1 came from the other instance; this one's save of new content under its key
    (version 2 here) is held written while the other instance's version 2 (the same uid)
    comes: the transfer waits for the key lock, then finds the uid holding other content
    (before: it read version 1 as the newest, inserted its version 2 beside the held one's and
    raised a bare unique violation once the save committed)."""
    lab, atlas = two_instances
    monkeypatch.setenv("LAKELINE_INSTANCE", lab.name)
    source = tmp_path / "atlas.csv"
    source.write_text("a,b\n1,2\n")
    first = save_artifacts([ll.Artifact(source, key="sc/pbmc.csv")], atlas)[0]
    ll.Artifact.using("atlas").get(first.uid).save()
    source.write_text("a,b\n5,6\n")
    newer = ll.Artifact.using("atlas").get(
        save_artifacts([ll.Artifact(source, key="sc/pbmc.csv")], atlas)[0].uid
    )
    (tmp_path / "lab.csv").write_text("a,b\n3,4\n")
    refused_while_saving(lab, tmp_path / "lab.csv", "sc/pbmc.csv", newer.save)
    versions = ll.Artifact.filter(stem=first.stem, is_latest=None).order_by("uid").all()
    # this instance's own version 2 holds the uid
    assert [(v.uid, v.is_latest) for v in versions] == [(first.uid, False), (newer.uid, True)]
    assert Path(ll.Artifact.get(key="sc/pbmc.csv").cache()).read_text() == "a,b\n3,4\n"
