"""A transfer of a stem's version 2 while the target, where the stem's key was edited, saves its
own version 2 under that other key, held inside its transaction in another process
(tests/core/faults.py): the transfer locks the keys of its stems' latest versions too, so it
meets the saved version and refuses with its clear error."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import mesh
import pytest
from lakeline.artifacts.save import save_artifacts
from lakeline.instance import Instance
from test_transfer_races import refused_while_saving

two_instances = mesh.two_instances


def test_transfer_waits_for_a_save_under_the_stems_edited_key(
    two_instances: tuple[Instance, Instance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 1 came from the other instance and was renamed here (`sc/b.csv`); this one's
    save under `sc/b.csv` (its version 2, uid ...0001) is held written while the other
    instance's version 2 (key `sc/a.csv`, the same uid) comes: the transfer waits for the
    key lock of the stem's latest version, then finds the uid holding other content (before:
    it locked `sc/a.csv` only, inserted its version 2 beside the held one's and raised a bare
    unique violation once the save committed; PostgreSQL target)."""
    lab, atlas = two_instances
    monkeypatch.setenv("LAKELINE_INSTANCE", lab.name)
    source = tmp_path / "atlas.csv"
    source.write_text("a,b\n1,2\n")
    first = save_artifacts([ll.Artifact(source, key="sc/a.csv")], atlas)[0]
    here = ll.Artifact.using("atlas").get(first.uid).save()  # version 1 in lab
    mine = ll.Artifact.get(here.uid)
    mine.key = "sc/b.csv"  # renamed in lab
    mine.save()
    source.write_text("a,b\n5,6\n")
    newer = ll.Artifact.using("atlas").get(
        save_artifacts([ll.Artifact(source, key="sc/a.csv")], atlas)[0].uid
    )
    (tmp_path / "lab.csv").write_text("a,b\n3,4\n")
    refused_while_saving(lab, tmp_path / "lab.csv", "sc/b.csv", newer.save)  # lab's own version 2
    assert Path(ll.Artifact.get(key="sc/b.csv").cache()).read_text() == "a,b\n3,4\n"
