"""The save's one look-up statement (`artifacts/places.py`, `_lookup`): the records with the
batch's keys and those at its places, each once, read through indexes; on SQLite without a
temporary b-tree per list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.artifacts.places import _json, _lookup
from lakeline.instance import Instance
from lakeline.storage.keys import REFERENCE_STORAGE

# keys, then a storage by id (unavailable records only), a storage by id, one by its root
SHAPE = ((True, False), (False, False), (False, True))


def _params(instance: Instance, keys: list[str], storage_id: int, store_keys: list[str]) -> Any:
    pack: Any = list if instance.dialect == "postgresql" else _json
    return {
        "keys": pack(keys),
        "s0": storage_id,
        "v0": pack(store_keys),
        "s1": storage_id,
        "v1": pack(store_keys),
        "s2": "/no/such/root",
        "v2": pack(store_keys),
        "ref_type": REFERENCE_STORAGE,
    }


def test_a_record_found_by_its_key_and_its_place_comes_once(
    instance: Instance, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    a = ll.Artifact(tmp_path / "a.txt", key="data/a.txt").save()
    b = ll.Artifact(tmp_path / "b.txt", key="data/b.txt").save()
    statement = _lookup(instance.dialect == "postgresql", True, SHAPE)
    params = _params(instance, ["data/a.txt", "data/none.txt"], a.storage_id, [a.store_key])
    with instance.engine.connect() as conn:
        rows = conn.execute(statement, params).all()
        assert [row.id for row in rows] == [a.id]  # by its key, and at its place: once
        params = _params(instance, ["data/none.txt"], b.storage_id, [b.store_key, a.store_key])
        assert sorted(row.id for row in conn.execute(statement, params)) == sorted([a.id, b.id])


def test_sqlite_look_up_reads_indexes_with_one_temporary_btree(
    instance: Instance, tmp_path: Path
) -> None:
    """Before: `IN (SELECT value FROM json_each(...))` ORed, a temporary b-tree built and
    dropped for each list and one for the root's storage (4 here, ~15k instructions each).
    Now one (the ids' list), and every list's `json_each` drives an index: no table is read
    whole, whatever the planner's statistics say (`CROSS JOIN` fixes the order)."""
    if instance.dialect != "sqlite":
        pytest.skip("SQLite's statement")
    (tmp_path / "a.txt").write_text("a\n")
    a = ll.Artifact(tmp_path / "a.txt", key="data/a.txt").save()
    statement = _lookup(False, True, SHAPE)
    params = _params(instance, ["data/a.txt"], a.storage_id, [a.store_key])
    with instance.engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        sql = compiled.string
        values = tuple(params[name] for name in compiled.positiontup or ())
        program = conn.exec_driver_sql(f"EXPLAIN {sql}", values).all()
        plan = [str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", values)]
    assert sum(1 for op in program if op[1] == "OpenEphemeral") == 1, plan
    scans = [step for step in plan if step.startswith("SCAN")]
    assert scans and all(step.startswith("SCAN j VIRTUAL TABLE") for step in scans), plan
    assert any("ix_artifacts_key" in step for step in plan), plan
    assert any("ix_artifacts_unavailable" in step for step in plan), plan
    assert any("ix_artifacts_storage_id_store_key" in step for step in plan), plan
