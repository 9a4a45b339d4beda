"""Saves are all-or-nothing, and concurrent writers lose nothing."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.artifacts import transfer
from lakeline.artifacts.save import Plan, save_artifacts
from lakeline.db.rows import insert_rows
from lakeline.instance import Instance
from lakeline.models import Artifact
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


def stored_objects(instance: Instance) -> list[str]:
    fs = instance.fs(instance.storage)
    root = instance.storage.root
    base = f"{root}/.lakeline/objects"
    path = base if "://" not in base else base.split("://", 1)[1]
    return [p for p in fs.find(path) if not p.endswith("storage.json")] if fs.exists(path) else []


def make_files(tmp_path: Path, n: int) -> list[Path]:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"f{i}.txt"
        p.write_text(f"payload {i}")
        paths.append(p)
    return paths


@pytest.mark.parametrize("step", ["stage", "place"])
def test_failure_during_upload_leaves_nothing(
    any_instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """A transfer failing mid-batch, while copying (and hashing) or while placing a copy at
    its content address: no record, no object, no temporary copy left."""
    paths = make_files(tmp_path, 20)
    calls: list[int] = []

    def failing(real: Callable[..., object]) -> Callable[..., object]:
        def fail(*args: object, **kwargs: object) -> object:
            calls.append(1)
            if len(calls) == 7:
                raise OSError("disk went away (injected)")
            return real(*args, **kwargs)

        return fail

    # a new object of a small file in local storage is placed by place_new
    for name in [step, "place_new"] if step == "place" else [step]:
        monkeypatch.setattr(transfer, name, failing(getattr(transfer, name)))
    with pytest.raises(OSError, match="injected"):
        ll.save([ll.Artifact(p, key=f"k/{p.name}") for p in paths])
    assert ll.Artifact.filter().count() == 0
    assert stored_objects(any_instance) == []
    spool = Path(os.environ["LAKELINE_CACHE_DIR"]) / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_failure_inside_the_transaction_removes_stored_bytes(
    any_instance: Instance, tmp_path: Path
) -> None:
    keep = ll.Artifact(make_files(tmp_path, 1)[0], key="keep/f0.txt").save()
    before = stored_objects(any_instance)
    paths = make_files(tmp_path, 6)  # f0 has the same bytes as `keep`: shared, must survive
    inserted: list[int] = []

    def fail_after_insert(session: Session, plans: Sequence[Plan]) -> None:
        # the new rows are in the table, inside the transaction: now the transaction fails
        count = select(func.count()).where(Artifact.key.startswith("new/"))
        inserted.append(session.execute(count).scalar_one())
        raise RuntimeError("database failed mid-transaction (injected)")

    artifacts = [ll.Artifact(p, key=f"new/{p.name}") for p in paths]
    with pytest.raises(RuntimeError, match="injected"):
        save_artifacts(artifacts, any_instance, also=fail_after_insert)
    assert inserted == [6]
    assert all(a.id is None and not a.created for a in artifacts)
    assert ll.Artifact.filter(key__startswith="new/").count() == 0
    assert ll.Artifact.filter().count() == 1
    assert stored_objects(any_instance) == before
    assert Path(ll.Artifact.get(keep.uid).cache()).read_text() == "payload 0"


def _save_in_child(args: tuple[str, str, int, int]) -> list[str]:
    home, name, worker, n = args
    os.environ["LAKELINE_HOME"] = home
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    import lakeline as ll

    ll.connect(name)
    folder = Path(home) / f"w{worker}"
    folder.mkdir(exist_ok=True)
    uids = []
    for i in range(n):
        p = folder / f"{i}.txt"
        p.write_text(f"worker {worker} file {i}")
        uids.append(ll.Artifact(p, key=f"w{worker}/{i}.txt").save().uid)
        # every worker also writes new versions of one shared key
        p.write_text(f"shared by {worker} #{i}")
        ll.Artifact(p, key="shared.txt").save()
    return uids


def test_concurrent_processes_lose_nothing(instance: Instance) -> None:
    home = os.environ["LAKELINE_HOME"]
    workers, per_worker = 4, 15
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.map(
            _save_in_child, [(home, instance.name, w, per_worker) for w in range(workers)]
        )
    uids = [u for r in results for u in r]
    assert len(set(uids)) == workers * per_worker
    assert ll.Artifact.filter(key__startswith="w").count() == workers * per_worker
    versions = ll.Artifact.filter(key="shared.txt", is_latest=None).all()
    assert len(versions) == workers * per_worker
    assert sum(v.is_latest for v in versions) == 1
    assert len({v.uid for v in versions}) == len(versions)


def test_locking_many_keys_fits_postgres_lock_table(instance: Instance) -> None:
    """A save of tens of thousands of keys holds a bounded number of advisory locks
    (one lock per key exhausted PostgreSQL's shared lock table at ~15k keys)."""
    from lakeline.db.locks import BUCKETS, buckets, lock_keys

    keys = [f"raw/sample{i:06d}.fastq.gz" for i in range(40_000)]
    assert len(buckets("artifact", keys)) <= BUCKETS
    with instance.sessions.write() as session:
        lock_keys(session, "artifact", keys)
        lock_keys(session, "transform", keys[:5])


def test_bulk_insert_reports_unique_violations_as_integrity_errors(
    instance: Instance, tmp_path: Path
) -> None:
    """A conflicting row in the bulk insert (executemany, or COPY on PostgreSQL) raises
    SQLAlchemy's IntegrityError, the error save() retries on."""
    saved = ll.Artifact(make_files(tmp_path, 1)[0], key="taken.txt").save()
    table = Artifact.__table__
    assert isinstance(table, Table)
    row = {c.key: getattr(saved, c.key) for c in table.columns if not c.primary_key}
    fresh = {**row, "uid": "x" * 16, "stem": "x" * 12, "key": "other.txt"}
    with pytest.raises(IntegrityError), instance.sessions.write() as session:
        insert_rows(session, table, [fresh, row], unique="uid")  # `row` repeats saved's uid
    assert ll.Artifact.filter().count() == 1
    with instance.sessions.write() as session:
        (new_id,) = insert_rows(session, table, [fresh], unique="uid")
    assert ll.Artifact.get("x" * 16).id == new_id
