"""A bulk save of new versions of existing keys: the next version indexes of their stems are
read with one statement per chunk of stems, and the previous latest records are marked with
one UPDATE per chunk of ids (not a statement each: ~0.4 ms a file on SQLite). The rows are
those of a save a key at a time: one latest record a key, each version's index after its
stem's highest, each new version in the space of its newest other version not in `all`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.access import spaces
from lakeline.artifacts import pipeline
from lakeline.ids import suffix_index
from lakeline.instance import Instance
from sqlalchemy import text
from statements import recorded

N = 1_100  # keys: 3 chunks of stems and of ids (db/rows.py CHUNK)


def _files(folder: Path, texts: list[str]) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i, content in enumerate(texts):
        path = folder / f"f{i:05d}.txt"
        path.write_text(content)
        paths.append(path)
    return paths


def _save(folder: Path, texts: list[str], keys: list[str]) -> list[ll.Artifact]:
    paths = _files(folder, texts)
    return ll.save([ll.Artifact(p, key=k) for p, k in zip(paths, keys, strict=True)])


def _rows(instance: Instance) -> list[Any]:
    with instance.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT a.key, a.uid, a.stem, a.is_latest, a.hash, s.name FROM artifacts a "
                    "JOIN spaces s ON s.id = a.space_id WHERE a.key LIKE 'k/%'"
                )
            )
        )


@pytest.mark.parametrize("path", ["one-thread", "pipelined"])
def test_a_bulk_save_of_new_versions_leaves_one_latest_per_key(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    if path == "pipelined":  # batches of 300 (SQLite: the file worker; PostgreSQL: 2 threads)
        monkeypatch.setattr(pipeline, "BATCH", 300)
        monkeypatch.setattr(pipeline, "FIRST", 300)
        monkeypatch.setattr(pipeline, "MIN_FILES", 600)
        monkeypatch.setattr(pipeline, "spare_core", lambda: True)  # the test machine is busy
    keys = [f"k/{i:05d}.txt" for i in range(N)]
    first = _save(tmp_path / "v0", [f"zero {i}" for i in range(N)], keys)
    _save(tmp_path / "v1", [f"one {i}" for i in range(10)], keys[:10])  # keys 0-9: 2 versions
    spaces.create(instance, "b")
    spaces.create(instance, "c")
    spaces.move(instance, "b", keys=keys[:5])
    spaces.move(instance, "c", keys=keys[5:7])
    old = {(r.key, suffix_index(r.uid[-4:])): r.uid for r in _rows(instance)}
    spaces.move(instance, "b", keys=[old[(keys[7], 0)]])  # versions moved one by one: the
    spaces.move(instance, "c", keys=[old[(keys[7], 1)]])  # newest's space
    spaces.move(instance, "c", keys=[old[(keys[8], 0)]])  # the newest not in `all`
    # new bytes for every key but 9 (its first version's again: that record) and 10 (the same
    # bytes: that record), and 3 new keys
    texts = [f"two {i}" for i in range(N)] + [f"new {i}" for i in range(3)]
    texts[9], texts[10] = "zero 9", "zero 10"
    given = [*keys, "k/new0.txt", "k/new1.txt", "k/new2.txt"]
    with recorded(instance.engine) as seen:
        saved = _save(tmp_path / "v2", texts, given)
    indexes = [suffix_index(a.uid[-4:]) for a in saved]
    assert indexes == [2] * 9 + [0, 0] + [1] * (N - 11) + [0, 0, 0]
    assert saved[9].uid == old[(keys[9], 0)] and saved[10].uid == first[10].uid
    rows = _rows(instance)
    latest = {r.key: r for r in rows if r.is_latest}
    assert len(latest) == N + 3 and sum(r.is_latest for r in rows) == N + 3
    assert len(rows) == 2 * N + 10 + 3 - 2  # keys 9 and 10: no new version
    for artifact in saved:
        row = latest[artifact.key] if artifact.key != keys[9] else None
        if row is not None:
            assert (row.uid, row.hash) == (artifact.uid, artifact.hash)
    assert latest[keys[9]].uid == old[(keys[9], 1)]  # an older version's bytes: still v1
    assert len({r.stem for r in rows}) == N + 3  # versions of a key share its stem
    where = {r.key: r.name for r in latest.values()}
    assert [where[k] for k in keys[:9]] == ["b"] * 5 + ["c"] * 4
    assert {where[k] for k in given[9:]} == {"all"}
    # a statement per chunk (3 chunks a batch), not one per key
    maxima = [sql for sql, _ in seen if "max(artifacts.uid)" in sql]
    retired = [sql for sql, _ in seen if sql.startswith("UPDATE artifacts SET is_latest")]
    assert 1 <= len(maxima) <= 6 and 1 <= len(retired) <= 6, (len(maxima), len(retired))


def test_one_new_version_at_a_time_sends_the_same_sql(instance: Instance, tmp_path: Path) -> None:
    """A save of one file that is a new version (a re-run's task output, saved as the task
    ends): its version index is read and its previous record marked with one SQL text for
    every such save, the value bound (PostgreSQL's driver prepares a statement run often; an
    inlined value is a new text, parsed and planned each time)."""
    keys = ["k/a.txt", "k/b.txt"]
    _save(tmp_path / "v0", ["a0", "b0"], keys)
    sent = []
    for i, key in enumerate(keys):
        with recorded(instance.engine) as seen:
            _save(tmp_path / f"v1-{i}", [f"{key} 1"], [key])
        read = [sql for sql, _ in seen if "max(artifacts.uid)" in sql]
        marked = [sql for sql, _ in seen if sql.startswith("UPDATE artifacts SET is_latest")]
        assert len(read) == len(marked) == 1, seen
        sent.append((read[0], marked[0]))
    assert sent[0] == sent[1]
    assert [suffix_index(a.uid[-4:]) for a in ll.Artifact.filter(key__in=keys, is_latest=True)] == [
        1,
        1,
    ]
