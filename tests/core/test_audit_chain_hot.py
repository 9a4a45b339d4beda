"""The audit chaining at commit after bulk saves (migration 0017 on PostgreSQL: entries read in id
order, the chain a running aggregate from the head, each entry filled in place, HOT at
fillfactor 45): every entry's hash and link as `access/audit.py` documents them, recomputed in
Python; single and concurrent bulk saves, a rollback after the chaining ran, the upgrade from
0016 of a populated catalog and back."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from alembic import command
from lakeline.access.audit import GENESIS, anchor, entries, entry_hash, verify
from lakeline.artifacts import pipeline
from lakeline.db.migrate import HEAD_REVISION, alembic_config, migrating, upgrade
from lakeline.db.pg_helpers import LOCATE
from lakeline.instance import Instance
from sqlalchemy import text
from test_access_audit import run
from test_bulk_pipeline import files

PG_ROWS = (
    "SELECT seq, prev_hash, hash, "
    """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), actor, tbl, uid, """
    "action, changes::text FROM audit_log WHERE seq IS NOT NULL ORDER BY seq"
)
SQLITE_ROWS = (
    "SELECT seq, prev_hash, hash, at, actor, tbl, uid, action, changes FROM audit_log "
    "WHERE seq IS NOT NULL ORDER BY seq"
)


def chained_in_python(instance: Instance) -> int:
    """Every entry's hash and link recomputed with `entry_hash` (not the database's functions),
    the head at the last entry and no entry outside the chain; returns how many entries."""
    postgres = instance.dialect == "postgresql"
    with instance.engine.connect() as conn:
        rows = conn.execute(text(PG_ROWS if postgres else SQLITE_ROWS)).all()
        head = tuple(conn.execute(text("SELECT seq, hash FROM audit_head")).one())
        outside = conn.execute(text("SELECT count(*) FROM audit_log WHERE seq IS NULL")).scalar()
    last_seq, last_hash = 0, GENESIS
    for seq, prev, digest, at, actor, tbl, uid, action, changes in rows:
        assert (seq, prev) == (last_seq + 1, last_hash)
        assert digest == entry_hash(prev, seq, at, actor, tbl, uid, action, changes), seq
        last_seq, last_hash = seq, digest
    assert head == (last_seq, last_hash) and outside == 0
    return len(rows)


def _chain_settings(instance: Instance) -> dict[str, Any]:
    with instance.engine.connect() as conn:
        return {
            "definition": conn.execute(
                text(
                    "SELECT pg_get_functiondef(to_regprocedure(("
                    + LOCATE
                    + ") || '.lakeline_audit_chain()'))"
                )
            ).scalar_one(),
            "options": conn.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'audit_log'")
            ).scalar_one(),
            "from": conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'lakeline\\_chain\\_from%'")
            ).scalar_one(),
        }


def _bulk_labels(instance: Instance, name: str, n: int = 30) -> None:
    """As `_bulk`, of labels (one deleted by its row): this code cannot save artifacts into a
    catalog older than their columns (0028)."""
    saved = ll.save([ll.ULabel(name=f"{name}-{i:02d}") for i in range(n)])
    saved[0].description = f"about {name}"
    saved[0].save()
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM ulabels WHERE id = :id"), {"id": saved[1].id})


def _bulk(tmp_path: Path, name: str, n: int = 50) -> list[ll.Artifact]:
    paths = files(tmp_path / name, n, name)
    saved = ll.save([ll.Artifact(p, key=f"{name}/{p.name}") for p in paths])
    saved[0].description = f"about {name}"
    saved[0].save()
    saved[1].delete()
    return saved


@pytest.fixture
def pipelined(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: saves of 20 files or more in two threads, batches of 10 (SQLite: one)."""
    monkeypatch.setattr(pipeline, "BATCH", 10)
    monkeypatch.setattr(pipeline, "FIRST", 10)
    monkeypatch.setattr(pipeline, "MIN_FILES", 20)
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)  # the test machine is busy


def test_bulk_saves_chain_every_entry_as_documented(
    instance: Instance, tmp_path: Path, pipelined: None
) -> None:
    """Pipelined bulk saves (PostgreSQL: 5 batches of 10 in one transaction), an update and a
    delete: each entry's hash is sha256 of `prev|digest` (checked in Python), the links unbroken,
    `lakeline audit verify` says so."""
    _bulk(tmp_path, "one")
    before = chained_in_python(instance)
    _bulk(tmp_path, "two")
    assert chained_in_python(instance) == before + 50 + 2
    assert verify(instance).ok and "intact" in run("audit", "verify").output
    assert run("audit", "verify", "--anchor", anchor(instance)).exit_code == 0


def _bulk_in_child(args: tuple[str, str, int]) -> int:
    import os

    home, folder, worker = args
    os.environ["LAKELINE_HOME"] = home
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    pipeline.BATCH = pipeline.FIRST = 10
    pipeline.MIN_FILES = 20
    pipeline.spare_core = lambda: True
    ll.connect("owner")
    for round_ in range(2):
        paths = files(Path(folder) / f"w{worker}-{round_}", 40, f"{worker} {round_}")
        ll.save([ll.Artifact(p, key=f"w{worker}/{round_}/{p.name}") for p in paths])
    return worker


@pytest.mark.postgres
def test_concurrent_bulk_saves_extend_one_chain(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Three processes, two pipelined saves of 40 files each: their transactions run at once
    and queue only for the chaining at commit; one chain, in commit order, every hash as
    documented."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    (tmp_path / "src").mkdir()
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        done = pool.map(
            _bulk_in_child, [(str(lakeline_home), str(tmp_path / "src"), w) for w in range(3)]
        )
    assert done == [0, 1, 2]
    log = entries(instance)
    assert len([e for e in log if e.action == "insert" and e.table == "artifacts"]) == 240
    assert chained_in_python(instance) == len(log) and verify(instance).ok


def test_a_transaction_rolled_back_after_its_chaining_leaves_the_chain_as_it_was(
    instance: Instance, tmp_path: Path
) -> None:
    """PostgreSQL: the chaining run early (`SET CONSTRAINTS ... IMMEDIATE`), then a rollback:
    no entry, the head as before, and the next save chains after it. SQLite chains as it
    writes: the rollback takes the entries and the head back alike."""
    saved = _bulk(tmp_path, "kept", 20)
    head = anchor(instance)
    with instance.engine.connect() as conn:
        conn.execute(text("UPDATE artifacts SET description = 'gone' WHERE key LIKE 'kept/%'"))
        if instance.dialect == "postgresql":
            conn.execute(text("SET CONSTRAINTS lakeline_audit_chain IMMEDIATE"))
            assert conn.execute(text("SELECT seq FROM audit_head")).scalar() == (
                int(head.split(":")[0]) + 19
            )
        conn.rollback()
    assert anchor(instance) == head and verify(instance).ok
    assert not [e for e in entries(instance) if e.changes.get("description") == [None, "gone"]]
    saved[2].description = "after"
    saved[2].save()
    assert chained_in_python(instance) == int(head.split(":")[0]) + 1


@pytest.mark.postgres
def test_the_chaining_fills_entries_in_place(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Every UPDATE of the chaining is HOT (no new row version on another page, no new index
    entries) for entries of an artifact's size: at fillfactor 70 most were not."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _bulk(tmp_path, "hot", 60)
    with instance.engine.connect() as conn:
        conn.execute(
            text("UPDATE artifacts SET description = repeat('d', 500) WHERE key LIKE 'hot/%'")
        )
        conn.execute(text("SET CONSTRAINTS lakeline_audit_chain IMMEDIATE"))
        updated, hot = conn.execute(
            text(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                "WHERE relname = 'audit_log'"
            )
        ).one()
        conn.commit()
    assert updated >= 59 and hot == updated  # the artifacts' entries and those they lead to
    assert chained_in_python(instance) and verify(instance).ok


@pytest.mark.postgres
def test_a_populated_catalog_at_0016_is_upgraded_and_downgraded_in_place(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _bulk(tmp_path, "head", 30)
    at_head = _chain_settings(instance)
    assert at_head["options"] == ["fillfactor=45"] and at_head["from"] == 2
    assert "enable_bitmapscan=off" in str(at_head["definition"]).replace(" TO 'off'", "=off")

    def downgrade() -> dict[str, Any]:
        cfg = alembic_config()
        with migrating(instance.engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0016")
        instance.engine.dispose()  # pooled connections cache defaults (a migration changes)
        return _chain_settings(instance)

    at_0016 = downgrade()
    assert at_0016["options"] == ["fillfactor=70"] and at_0016["from"] == 0
    assert "lakeline_chain(d) OVER (ORDER BY seq)" in at_0016["definition"]
    _bulk_labels(instance, "old")  # chained by 0014's function
    assert verify(instance).ok
    upgrade(instance.engine)
    with instance.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == HEAD_REVISION
    assert _chain_settings(instance) == at_head
    _bulk(tmp_path, "new", 30)
    count = chained_in_python(instance)
    assert verify(instance).ok
    assert downgrade() == at_0016  # 0014's function again, as it was
    _bulk_labels(instance, "again")
    assert chained_in_python(instance) > count
    upgrade(instance.engine)
    assert verify(instance).ok
