"""A save that fails leaves its Artifact objects as the caller gave them: no uid, stem, hash,
store key or producing run from the attempt (they looked saved, and a retry kept the failed
attempt's run), transient; saving them again writes the records a first save would."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from faults import InjectedFailure, fail_at, raise_once_at
from lakeline.access.audit import verify
from lakeline.errors import MissingReference
from lakeline.instance import Instance
from sqlalchemy import inspect
from test_bulk_pipeline import Batches, files, small_batches  # noqa: F401  (a fixture)
from test_bulk_worker import jobs  # noqa: F401  (a fixture)


def _own(artifacts: list[ll.Artifact]) -> list[tuple[dict[str, Any], Any]]:
    """Each object's attributes, as its dict holds them (no ORM read), and its ORM state."""
    return [
        (
            {k: v for k, v in vars(a).items() if k != "_sa_instance_state"},
            (inspect(a).transient, inspect(a).modified, dict(inspect(a).committed_state)),
        )
        for a in artifacts
    ]


def _as_given(artifacts: list[ll.Artifact], before: list[tuple[dict[str, Any], Any]]) -> None:
    assert _own(artifacts) == before
    for artifact in artifacts:
        assert inspect(artifact).transient
        assert "uid" not in vars(artifact) and artifact.id is None and artifact.run_id is None


def _records_of_their_bytes(instance: Instance, saved: list[ll.Artifact]) -> None:
    root = Path(instance.storage.root)
    for artifact in saved:
        stored = ll.Artifact.get(artifact.uid)
        assert (stored.id, stored.hash, stored.run_id) == (artifact.id, artifact.hash, None)
        data = (root / stored.store_key).read_bytes()
        assert stored.hash == hashlib.sha256(data).hexdigest()
    assert verify(instance).ok


@pytest.mark.parametrize("how", ["one", "batch"])
@pytest.mark.parametrize("failure", ["injected", "interrupt"])
def test_a_failed_save_leaves_its_objects_as_given(
    instance: Instance, tmp_path: Path, how: str, failure: str
) -> None:
    """Fails inside its transaction, records written (a fault; Ctrl-C) while a run is
    current; saved again once the run finished: no producer (before: the failed attempt's
    run), the next version of the key, each hash that of its stored bytes."""
    (tmp_path / "first.txt").write_text("first")
    first = ll.Artifact(tmp_path / "first.txt", key="k/0.txt", description="v1").save()
    paths = files(tmp_path / "src", 1 if how == "one" else 3)
    artifacts = [ll.Artifact(p, key=f"k/{i}.txt") for i, p in enumerate(paths)]
    before = _own(artifacts)
    error: BaseException = InjectedFailure() if failure == "injected" else KeyboardInterrupt()
    ll.track(key="failing.py")
    try:
        with raise_once_at("save.written", error), pytest.raises(type(error)):
            ll.save(artifacts)
    finally:
        ll.finish()
    _as_given(artifacts, before)
    saved = ll.save(artifacts)
    assert saved[0].uid[:-4] == first.uid[:-4] and saved[0].description == "v1"
    assert [a.uid for a in ll.Artifact.filter(key="k/0.txt", is_latest=None).order_by("uid")] == [
        first.uid,
        saved[0].uid,
    ]
    _records_of_their_bytes(instance, saved)


def test_a_save_refused_for_a_bad_reference_can_be_saved_once_mended(
    instance: Instance, tmp_path: Path
) -> None:
    """A producing run that does not exist: the foreign key refuses the insert; the object
    keeps only what the caller set (its run id), and saves once that is mended."""
    (tmp_path / "a.txt").write_text("a")
    artifact = ll.Artifact(tmp_path / "a.txt", key="a.txt")
    artifact.run_id = 999_999
    before = _own([artifact])
    with pytest.raises(MissingReference, match="names run id 999999"):
        artifact.save()
    assert _own([artifact]) == before and inspect(artifact).transient
    assert "uid" not in vars(artifact) and artifact.id is None
    artifact.run_id = None
    _records_of_their_bytes(instance, [artifact.save()])


def test_a_failed_bulk_save_leaves_its_objects_as_given(
    instance: Instance,
    tmp_path: Path,
    jobs: list[object],  # noqa: F811
) -> None:
    """A large save whose files a worker process stored fails once every batch was handed
    to the database (SQLite: written in its transaction; PostgreSQL: the writer's)."""
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in files(tmp_path / "src", 30)]
    before = _own(artifacts)
    ll.track(key="failing.py")
    try:
        with fail_at("save.stored"), pytest.raises(InjectedFailure):
            ll.save(artifacts)
    finally:
        ll.finish()
    assert jobs[-1] is not None
    _as_given(artifacts, before)
    _records_of_their_bytes(instance, ll.save(artifacts))


def test_a_failed_pipelined_save_leaves_its_objects_as_given(
    instance: Instance,
    tmp_path: Path,
    small_batches: Batches,  # noqa: F811
) -> None:
    """PostgreSQL's two-thread save (batches prepared by the saving thread, or written by
    `write_batch`) fails once its writer wrote every batch and locked the objects."""
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in files(tmp_path / "src", 30)]
    before = _own(artifacts)
    ll.track(key="failing.py")
    try:
        with fail_at("save.claimed"), pytest.raises(InjectedFailure):
            ll.save(artifacts)
    finally:
        ll.finish()
    assert small_batches[-3:] == ["10", "10", "10"]  # (ll.track saved its own record first)
    _as_given(artifacts, before)
    _records_of_their_bytes(instance, ll.save(artifacts))
