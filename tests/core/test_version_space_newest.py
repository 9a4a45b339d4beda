"""A new version lands in the space of its stem's newest other version (not `all`), on both
databases, when its versions were moved one by one. Before, PostgreSQL's trigger (0008) and
SQLite's (0023) took whichever version the plan met first: a new version of an artifact whose
latest was moved into `c` landed in `b`, an older version's space (seen by `b`'s members,
not by `c`'s)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.access import spaces
from lakeline.instance import Instance


def _file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(name)
    return path


def test_a_new_version_lands_in_the_newest_versions_space(
    instance: Instance, tmp_path: Path
) -> None:
    spaces.create(instance, "b")
    spaces.create(instance, "c")
    v1 = ll.Artifact(_file(tmp_path, "1.txt"), key="k.txt").save()
    other = ll.Artifact(_file(tmp_path, "o1.txt"), key="o.txt").save()
    spaces.move(instance, "b", keys=[v1.uid, other.uid])
    v2 = ll.Artifact(_file(tmp_path, "2.txt"), key="k.txt").save()
    assert spaces.space_of(instance, "artifacts", v2.uid) == "b"
    spaces.move(instance, "c", keys=[v2.uid])  # the latest alone
    v3 = ll.Artifact(_file(tmp_path, "3.txt"), key="k.txt").save()
    assert spaces.space_of(instance, "artifacts", v3.uid) == "c"
    # several in one save (one statement on PostgreSQL): each its own stem's newest
    spaces.move(instance, "b", keys=[v3.uid])
    both = ll.save(
        [
            ll.Artifact(_file(tmp_path, "4.txt"), key="k.txt"),
            ll.Artifact(_file(tmp_path, "o2.txt"), key="o.txt"),
        ]
    )
    assert [spaces.space_of(instance, "artifacts", a.uid) for a in both] == ["b", "b"]
    spaces.move(instance, "c", keys=[both[1].uid])
    spaces.move(instance, "all", keys=[both[0].uid])  # the newest in `all`: the next newest's
    more = ll.save(
        [
            ll.Artifact(_file(tmp_path, "5.txt"), key="k.txt"),
            ll.Artifact(_file(tmp_path, "o3.txt"), key="o.txt"),
        ]
    )
    assert [spaces.space_of(instance, "artifacts", a.uid) for a in more] == ["b", "c"]
