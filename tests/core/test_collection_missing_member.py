"""A collection naming an artifact deleted since it was loaded: its foreign key refuses every
attempt. Before, the save ran five times (every IntegrityError counted as a concurrent
writer's) and the raw ForeignKeyViolation reached the caller; now one attempt and a
MissingReference naming the member, nothing written."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import MissingReference
from lakeline.instance import Instance
from sqlalchemy import text
from statements import recorded


def test_a_collection_of_a_deleted_artifact_names_it(instance: Instance, tmp_path: Path) -> None:
    saved = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text(name)
        saved.append(ll.Artifact(tmp_path / f"{name}.txt", key=f"{name}.txt").save())
    gone = ll.Artifact.get(saved[1].uid)
    with instance.engine.begin() as conn:  # another process deletes it meanwhile
        conn.execute(text("DELETE FROM artifacts WHERE id = :i"), {"i": gone.id})
    with recorded(instance.engine) as seen, pytest.raises(MissingReference) as caught:
        ll.Collection(saved, key="pair").save()
    assert f"artifact {gone.uid}" in str(caught.value) and "b.txt" in str(caught.value)
    inserts = [s for s, _ in seen if s.lstrip().upper().startswith("INSERT INTO COLLECTIONS")]
    assert len(inserts) == 1, seen
    with instance.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM collections")).scalar() == 0
    assert ll.Collection(saved[:1], key="pair").save().id is not None
