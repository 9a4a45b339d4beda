"""A save mixing a loaded record's edits and new records is one transaction: when a new record
fails (at planning, at its INSERT, in the worker process, an interrupt inside the transaction)
the stored record keeps its old fields and the Python object its edits, pending, so that the
same save again writes them. On the one-thread path, the two-thread path (PostgreSQL) and the
worker process's (tests/core/test_bulk_worker.py's `jobs`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from faults import InjectedFailure, fail_at, raise_once_at, second_while_held
from lakeline.artifacts import offload, pipeline
from lakeline.errors import InvalidKey, MissingReference, PathNotFound
from lakeline.instance import Instance
from sqlalchemy import inspect
from test_bulk_pipeline import files, objects
from test_bulk_worker import jobs

__all__ = ["jobs"]  # a fixture

OLD = {"key": "raw/a.txt", "description": "old"}
NEW = {"key": "renamed/a.txt", "description": "new"}


def _edited(tmp_path: Path) -> ll.Artifact:
    """A saved record, loaded and edited (its key and description)."""
    (tmp_path / "a.txt").write_text("alpha")
    saved = ll.Artifact(tmp_path / "a.txt", **OLD).save()
    loaded = ll.Artifact.get(saved.uid)
    loaded.key, loaded.description = NEW["key"], NEW["description"]
    return loaded


def _fields(artifact: ll.Artifact) -> dict[str, Any]:
    return {name: getattr(artifact, name) for name in OLD}


def _kept(loaded: ll.Artifact) -> None:
    """The stored record as before the failed save, the object with its edits pending."""
    assert _fields(ll.Artifact.get(loaded.uid)) == OLD
    assert _fields(loaded) == NEW
    attrs = inspect(loaded).attrs
    assert attrs.key.history.has_changes() and attrs.description.history.has_changes()


def _retried(loaded: ll.Artifact, new: list[ll.Artifact], count: int) -> None:
    """The same objects saved again once the fault is gone: every edit and record written."""
    ll.save([loaded, *new])
    assert _fields(ll.Artifact.get(loaded.uid)) == NEW
    assert not inspect(loaded).attrs.key.history.has_changes()
    assert ll.Artifact.filter().count() == count and all(a.id is not None for a in new)


def _interrupt(point: str) -> AbstractContextManager[Any]:
    return raise_once_at(point, KeyboardInterrupt())


ONE_THREAD: dict[str, tuple[type[BaseException], Callable[[], AbstractContextManager[Any]]]] = {
    "planning": (PathNotFound, nullcontext),  # a file removed since its Artifact was made
    "insert": (MissingReference, nullcontext),  # a producing run that does not exist
    "in the transaction": (InjectedFailure, lambda: fail_at("save.written")),
    "ctrl-c before": (KeyboardInterrupt, lambda: _interrupt("save.stored")),
    "ctrl-c inside": (KeyboardInterrupt, lambda: _interrupt("save.written")),
}


@pytest.mark.parametrize("fault", ONE_THREAD)
def test_a_failing_new_record_leaves_the_edits_unwritten(
    instance: Instance, tmp_path: Path, fault: str
) -> None:
    """One thread (3 new files: below `pipeline.MIN_FILES`)."""
    loaded = _edited(tmp_path)
    paths = files(tmp_path / "src", 3)
    new = [ll.Artifact(p, key=f"new/{p.name}") for p in paths]
    if fault == "planning":
        paths[1].unlink()
    if fault == "insert":
        new[2].run_id = 10**9
    error, context = ONE_THREAD[fault]
    with context(), pytest.raises(error):
        ll.save([loaded, *new])
    _kept(loaded)
    assert ll.Artifact.filter().count() == 1 and all(a.id is None for a in new)
    assert len(objects(instance)) == 1  # the edited record's
    if fault == "planning":
        paths[1].write_text("back")
    if fault == "insert":
        new[2].run_id = None
    _retried(loaded, new, 4)


def test_edits_and_new_records_commit_together(instance: Instance, tmp_path: Path) -> None:
    """The edit first, in the same transaction: a new record under the edited key is its next
    version; the object's edits are no longer pending."""
    loaded = _edited(tmp_path)
    (tmp_path / "b.txt").write_text("beta")
    new = ll.Artifact(tmp_path / "b.txt", key=NEW["key"])
    ll.save([loaded, new])
    assert not inspect(loaded).attrs.key.history.has_changes() and not loaded._created
    assert ll.Artifact.get(key=NEW["key"]).uid == new.uid and new.stem == loaded.stem
    assert ll.Artifact.get(loaded.uid).description == "new" and new.description == "new"


@pytest.fixture
def two_threads(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """PostgreSQL's two-thread save of 30 files (batches of 10) without the worker; returns
    the threads the batches were written by (`Writer`: not the main one)."""
    if instance.dialect != "postgresql":
        pytest.skip("saves are pipelined in two threads on PostgreSQL only")
    import threading

    monkeypatch.setattr(pipeline, "BATCH", 10)
    monkeypatch.setattr(pipeline, "FIRST", 10)
    monkeypatch.setattr(pipeline, "MIN_FILES", 20)
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)  # the test machine is busy
    monkeypatch.setattr(pipeline, "OFFLOAD", False)
    threads: list[str] = []
    real = pipeline.Writer._write

    def spied(writer: pipeline.Writer) -> None:
        threads.append(threading.current_thread().name)
        real(writer)

    monkeypatch.setattr(pipeline.Writer, "_write", spied)
    return threads


PIPELINED = {
    "a file missing": PathNotFound,
    "ctrl-c between batches": KeyboardInterrupt,
    "ctrl-c before the commit": KeyboardInterrupt,
}


def _pipelined_fault(fault: str, paths: list[Path]) -> AbstractContextManager[Any]:
    if fault == "a file missing":
        paths[25].unlink()
        return nullcontext()
    if fault == "ctrl-c between batches":
        return _interrupt("save.batch")
    return _interrupt("save.stored")


@pytest.mark.parametrize("fault", PIPELINED)
def test_a_failing_two_thread_save_leaves_the_edits_unwritten(
    instance: Instance, tmp_path: Path, two_threads: list[str], fault: str
) -> None:
    loaded = _edited(tmp_path)
    paths = files(tmp_path / "src", 30)
    new = [ll.Artifact(p, key=f"new/{p.name}") for p in paths]
    with _pipelined_fault(fault, paths), pytest.raises(PIPELINED[fault]):
        ll.save([loaded, *new])
    assert len(two_threads) == 1 and two_threads[0] != "MainThread"
    _kept(loaded)
    assert ll.Artifact.filter().count() == 1 and all(a.id is None for a in new)
    paths[25].write_text("back")
    _retried(loaded, new, 31)
    assert len(two_threads) == 2


@pytest.mark.parametrize("fault", PIPELINED)
def test_a_failing_save_by_the_worker_leaves_the_edits_unwritten(
    instance: Instance, tmp_path: Path, jobs: list[object], fault: str
) -> None:
    """The worker process stores the files (SQLite: this thread writes the records, PostgreSQL:
    the writer thread)."""
    loaded = _edited(tmp_path)
    paths = files(tmp_path / "src", 30)
    new = [ll.Artifact(p, key=f"new/{p.name}") for p in paths]
    with _pipelined_fault(fault, paths), pytest.raises(PIPELINED[fault]):
        ll.save([loaded, *new])
    assert len(jobs) == 1 and isinstance(jobs[0], offload.Job)
    _kept(loaded)
    assert ll.Artifact.filter().count() == 1 and all(a.id is None for a in new)
    paths[25].write_text("back")
    _retried(loaded, new, 31)
    assert len(jobs) == 2 and isinstance(jobs[1], offload.Job)


def _save_held(pause: Any, path: str, key: str) -> None:
    """In a child process: save `path` under `key`, held with its records written."""
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at("save.written", pause.hold):
        ll.Artifact(path, key=key).save()


def test_a_key_edit_waits_for_a_save_under_the_new_key(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new record under `renamed/a.txt` is held written (not committed) while a loaded record
    is renamed to it: the edit waits for the save's key lock, then refuses the taken key with
    its clear error (before: no key lock, its UPDATE ran into the new row's unique index
    entry and raised a bare unique violation)."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    loaded = _edited(tmp_path)
    (tmp_path / "b.txt").write_text("beta")
    exitcode, outcome = second_while_held(
        _save_held,
        (str(tmp_path / "b.txt"), NEW["key"]),
        lambda: ll.save([loaded]),
        instance.engine,
        "the edit",
        waits=instance.dialect == "postgresql",
    )
    assert exitcode == 0 and len(outcome) == 1
    assert isinstance(outcome[0], InvalidKey), outcome
    assert "already names artifact" in str(outcome[0])
    _kept(loaded)


def test_a_save_under_the_old_key_waits_for_a_key_edit(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key edit is held written (with a new record in its save) while new content is saved
    under the old key: the save waits for the edit's lock of the old key, then finds no record
    under it (a new artifact); the renamed one stays the latest under its new key."""
    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    loaded = _edited(tmp_path)
    (tmp_path / "b.txt").write_text("beta")
    (tmp_path / "c.txt").write_text("gamma")
    exitcode, outcome = second_while_held(
        _edit_held,
        (loaded, str(tmp_path / "c.txt")),
        lambda: ll.Artifact(tmp_path / "b.txt", key=OLD["key"]).save(),
        instance.engine,
        "the save",
        waits=instance.dialect == "postgresql",
    )
    assert exitcode == 0 and len(outcome) == 1 and isinstance(outcome[0], ll.Artifact), outcome
    renamed = ll.Artifact.get(key=NEW["key"])
    assert renamed.uid == loaded.uid and renamed.is_latest
    assert outcome[0].stem != loaded.stem and ll.Artifact.get(key=OLD["key"]).uid == outcome[0].uid


def _edit_held(pause: Any, loaded: ll.Artifact, path: str) -> None:
    """In a child process: save the edits of `loaded` with a new file, held with its records
    written."""
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at("save.written", pause.hold):
        ll.save([loaded, ll.Artifact(path, key="other/c.txt")])
