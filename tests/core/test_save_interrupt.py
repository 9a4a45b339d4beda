"""Ctrl-C (or any error) landing just after a save's transaction committed: the save is
whole, so its records are what a finished save returns — detached, with their ids — and the
interrupt is raised once they are. Before, they were made unsaved again (id None,
transient) while the database held them: the caller, or a BatchRecorder's next step, took
saved files for unsaved ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from sqlalchemy import event
from sqlalchemy import inspect as state
from sqlalchemy.engine import Engine


@contextmanager
def interrupted_after_commit(engine: Engine, times: int = 1) -> Iterator[list[int]]:
    """KeyboardInterrupt raised right after the first `times` COMMITs succeed, as their
    connection goes back to the pool (after SQLAlchemy's own after-commit events), or, a
    connection kept across a BatchRecorder's flushes (`db.session.KeptConnection`), as it is
    handed back for the next flush (`db.engine.return_kept`, its check-in)."""
    from lakeline.db import engine as engines

    raised: list[int] = []
    armed: list[int] = []
    return_kept = engines.return_kept

    def arm(conn: object) -> None:  # the COMMIT is about to be sent
        armed.append(1)

    def interrupt(*args: object) -> None:
        if armed and len(raised) < times:
            armed.clear()
            raised.append(1)
            raise KeyboardInterrupt

    def returned(*args: Any) -> None:
        return_kept(*args)
        interrupt()

    event.listen(engine, "commit", arm)
    event.listen(engine.pool, "checkin", interrupt)
    engines.return_kept = returned  # (looked up at each call: session.KeptConnection.give_back)
    try:
        yield raised
    finally:
        engines.return_kept = return_kept
        event.remove(engine, "commit", arm)
        event.remove(engine.pool, "checkin", interrupt)


def _saved_as_in_the_database(artifacts: list[ll.Artifact]) -> None:
    for artifact in artifacts:
        assert artifact.id is not None and state(artifact).detached, artifact.key
        assert not state(artifact).modified
        assert ll.Artifact.get(artifact.uid).id == artifact.id


@pytest.mark.parametrize("n", [1, 3])
def test_an_interrupt_after_the_commit_leaves_the_records_saved(
    instance: Instance, tmp_path: Path, n: int
) -> None:
    paths = []
    for i in range(n):
        paths.append(tmp_path / f"f{i}.txt")
        paths[-1].write_text(f"file {i}")
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in paths]
    with interrupted_after_commit(instance.engine) as raised, pytest.raises(KeyboardInterrupt):
        ll.save(artifacts)
    assert raised == [1]
    assert ll.Artifact.filter(key__startswith="k/").count() == n
    _saved_as_in_the_database(artifacts)
    root = Path(instance.storage.root)
    for artifact, path in zip(artifacts, paths, strict=True):
        assert (root / artifact.store_key).read_bytes() == path.read_bytes()
    again = ll.save(artifacts)  # a second save: nothing new, nothing refused
    assert [a.id for a in again] == [a.id for a in artifacts]
    assert ll.Artifact.filter(key__startswith="k/").count() == n


def test_an_interrupt_after_a_flush_committed_leaves_its_files_usable(
    instance: Instance, tmp_path: Path
) -> None:
    """A BatchRecorder's flush interrupted just after its commit: the Artifact `produce`
    returned is the saved record, which a later step can use without a rehash."""
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    (tmp_path / "out.txt").write_text("out")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="0")
    out = rec.produce(step, "out.txt")
    assert out is not None
    rec.finish_step(step)
    with interrupted_after_commit(instance.engine), pytest.raises(KeyboardInterrupt):
        rec.flush()
    _saved_as_in_the_database([out])
    later = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    rec.use_saved(later, out)  # refused before: "its id is None and it is not queued"
    rec.finish_step(later)
    rec.flush()
    assert [a.id for a in ll.Run.get(engine="toy", engine_ref="r/1").inputs.all()] == [out.id]
    assert ll.Run.get(engine="toy", engine_ref="r/0").status == "completed"
    assert ll.Artifact.filter(key="out.txt").count() == 1
