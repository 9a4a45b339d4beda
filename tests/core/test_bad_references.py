"""A save naming a record that does not exist (a producing run never saved, a storage deleted
since this process loaded it): refused at once with an error naming the reference, nothing
written. Before, every IntegrityError counted as a concurrent writer's: the transaction ran
five times, then the raw driver error reached the caller."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import MissingReference
from lakeline.instance import Instance
from sqlalchemy import func, select, text
from statements import recorded
from test_bulk_pipeline import Batches, files, small_batches  # noqa: F401  (a fixture)
from test_bulk_worker import jobs  # noqa: F401  (a fixture)


def _inserts(seen: list[tuple[str, object]]) -> int:
    """Transactions that tried to write artifacts' rows (INSERT or COPY)."""
    return sum(
        1
        for sql, _ in seen
        if sql.lstrip().upper().startswith(("INSERT INTO ARTIFACTS", "COPY ARTIFACTS"))
    )


def _artifacts(instance: Instance) -> int:
    with instance.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(text("artifacts"))).scalar_one())


def test_a_run_that_does_not_exist_is_named_and_not_retried(
    instance: Instance, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    artifact = ll.Artifact(tmp_path / "a.txt", key="a.txt")
    artifact.run_id = 999_999
    count = _artifacts(instance)
    with recorded(instance.engine) as seen, pytest.raises(MissingReference) as caught:
        artifact.save()
    assert _inserts(seen) == 1, seen
    message = str(caught.value)
    assert "run" in message and "999999" in message and "a.txt" in message, message
    assert _artifacts(instance) == count
    artifact.run_id = None
    assert artifact.save().run_id is None


def _bulk(instance: Instance, tmp_path: Path) -> None:
    artifacts = [ll.Artifact(p, key=f"k/{p.name}") for p in files(tmp_path / "src", 30)]
    artifacts[17].run_id = 999_998
    count = _artifacts(instance)
    with pytest.raises(MissingReference, match=r"'k/f17\.txt' names run id 999998"):
        ll.save(artifacts)
    assert _artifacts(instance) == count
    artifacts[17].run_id = None
    assert len(ll.save(artifacts)) == 30


def test_a_bulk_save_names_the_artifact_with_the_bad_run(
    instance: Instance,
    tmp_path: Path,
    jobs: list[object],  # noqa: F811
) -> None:
    """A large save, its files stored by the worker process in batches: the error names the
    one artifact of 30 that names the missing run."""
    _bulk(instance, tmp_path)
    assert jobs[0] is not None


def test_a_pipelined_save_names_the_artifact_with_the_bad_run(
    instance: Instance,
    tmp_path: Path,
    small_batches: Batches,  # noqa: F811
) -> None:
    """PostgreSQL's two-thread save: the writer thread's refusal, named the same way."""
    _bulk(instance, tmp_path)
