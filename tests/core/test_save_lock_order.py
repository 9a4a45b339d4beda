"""PostgreSQL: two saves in place, each of a file whose location keeps a record under the key
the other one's path gives (`settle_keys`: a location keeps its key, read and locked after
the save's own keys). Each holds its own key's lock and wants the other's: before, they
deadlocked (PostgreSQL found it after `deadlock_timeout` and one was retried); now the later
lock is only tried, and a save that cannot take it at once starts again with every key it
needs locked in order."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.instance import Instance
from sqlalchemy import text

pytestmark = pytest.mark.postgres


def _deadlocks(instance: Instance, closed: bool = False) -> int:
    """The database's deadlocks so far; `closed`: once the instance's other connections are
    closed (a backend's counts reach the view when it is idle a while, or when it exits)."""
    if closed:
        instance.engine.dispose()
    with instance.engine.connect() as conn:
        deadline = time.monotonic() + 30
        while closed and time.monotonic() < deadline:
            others = conn.execute(
                text(
                    "SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity WHERE datname "
                    "OPERATOR(pg_catalog.=) pg_catalog.current_database() "
                    "AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
                )
            ).scalar_one()
            if not others:
                break
            time.sleep(0.05)
        conn.execute(text("SELECT pg_catalog.pg_stat_clear_snapshot()"))
        return int(
            conn.execute(
                text(
                    "SELECT deadlocks FROM pg_catalog.pg_stat_database "
                    "WHERE datname = pg_catalog.current_database()"
                )
            ).scalar_one()
        )


def test_two_saves_reading_each_others_keys_do_not_deadlock(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    root = Path(instance.storage.root)
    for name, other in (("p1.txt", "p2.txt"), ("p2.txt", "p1.txt")):
        (root / name).write_text(name)
        digest = hashlib.sha256(name.encode()).hexdigest()
        ll.Artifact.reference(root / name, key=other, hash=digest, hash_type="sha256").save()
    before = _deadlocks(instance)
    both = threading.Barrier(2, timeout=30)
    waited: list[str] = []

    def meet() -> None:  # each save holds its own key's lock: both go on together
        try:
            both.wait()
        except threading.BrokenBarrierError:
            waited.append("alone")

    saved: dict[str, str] = {}
    errors: list[BaseException] = []

    def save(name: str) -> None:
        try:
            saved[name] = str(ll.Artifact(root / name).save().key)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with checkpoints.at("save.read_keys", meet):
        threads = [threading.Thread(target=save, args=(n,)) for n in ("p1.txt", "p2.txt")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors, errors
    assert saved == {"p1.txt": "p2.txt", "p2.txt": "p1.txt"}  # each location kept its key
    assert not waited  # both met holding their first lock
    assert _deadlocks(instance, closed=True) == before
