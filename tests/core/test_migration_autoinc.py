"""Migration 0027: SQLite's record tables rebuilt with AUTOINCREMENT, their rows, indexes,
triggers (audit, search, version space), foreign keys and search results as they were; an id
deleted before the upgrade (the audit log saw it) is not given again after it. PostgreSQL:
nothing changes. Downgrade: the tables as before."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import lakeline as ll
from alembic import command
from lakeline.db.migrate import MIGRATIONS_DIR, alembic_config, migrating, upgrade
from lakeline.db.partial import AUTOINCREMENT_INFO
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.models import Base, load_all
from sqlalchemy import text


def _migration() -> Any:
    path = MIGRATIONS_DIR / "versions" / "0027_sqlite_autoincrement.py"
    spec = importlib.util.spec_from_file_location("_migration_0027", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLES: tuple[str, ...] = _migration().TABLES  # what 0027 rebuilds


def declared() -> set[str]:
    """The core tables the models give AUTOINCREMENT, and `spaces` (0008's, not mapped)."""
    load_all()
    return {
        table.name
        for table in Base.metadata.tables.values()
        if table.info.get(AUTOINCREMENT_INFO) and not table.info.get("lakeline_module")
    } | {"spaces"}


def _fill(root: Path) -> None:
    """A row in every table 0027 rebuilds, and in the tables that point to them."""
    for i in range(3):
        (root / f"f{i}.txt").write_text(f"bytes {i}")
    rec = BatchRecorder("mig", root=root, steps=100, ms=600_000)
    workflow = rec.start_workflow(key="pipeline", engine_run_id="w")
    step = rec.start_step(workflow, key="align", kind="rule", engine_task_id="s")
    rec.use(step, root / "f0.txt")
    rec.produce(step, root / "f1.txt")
    rec.finish_step(step)
    rec.finish_workflow(workflow)
    rec.flush()
    extra = ll.Artifact(root / "f2.txt", key="notes/über.txt", description="Ölfilter reads").save()
    first = ll.Artifact.get(key="f0.txt")
    ll.Collection([first, extra], key="sets/pair", description="a pair").save()
    ll.save([ll.Feature(name="dose", dtype=float), ll.Feature(name="n_reads", dtype=int)])
    ll.Schema(name="assay", features=["dose", "n_reads"]).save()
    ll.save([ll.ULabel(name="treated", description="über 5 µl"), ll.ULabel(name="control")])
    extra.features.add_values({"dose": 1.5})
    extra.labels.add(ll.ULabel.get(name="treated"))


def _rows(instance: Instance) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but alembic's and `sqlite_sequence`, in id order."""
    with instance.engine.connect() as conn:
        if instance.dialect == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        names = sorted(set(conn.exec_driver_sql(query).scalars()))
        skip = {"alembic_version", "sqlite_sequence"}
        return {
            name: sorted(
                (tuple(row) for row in conn.exec_driver_sql(f'SELECT * FROM "{name}"').all()),
                key=repr,
            )
            for name in names
            if name not in skip
        }


def _schema(instance: Instance) -> dict[str, Any]:
    """SQLite: indexes and triggers (their SQL), each table's columns, foreign keys and
    indexes as SQLite reads them."""
    with instance.engine.connect() as conn:
        made = conn.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE type IN ('index', 'trigger', 'view') ORDER BY name"
        ).all()
        tables = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).scalars()
        shape = {
            table: [
                sorted(map(tuple, conn.exec_driver_sql(f"PRAGMA {pragma}('{table}')").all()))
                for pragma in ("table_info", "foreign_key_list", "index_list")
            ]
            for table in list(tables)
        }
    return {"made": [tuple(row) for row in made], "shape": shape}


def _autoincrement(instance: Instance) -> dict[str, int]:
    with instance.engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").all())


def _found() -> dict[str, list[str]]:
    # artifacts' keys only: a catalog before 0028 has no `through_link` for a record to read
    found = ll.Artifact.search("ölfilter").to_dataframe(["key"])
    return {
        "artifacts": sorted(found["key"]),
        "ulabels": sorted(u.name for u in ll.ULabel.search("über")),
        "transforms": sorted(t.key for t in ll.Transform.search("align")),
        "collections": sorted(c.key for c in ll.Collection.search("pair")),
    }


def _to(instance: Instance, revision: str) -> None:
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_0027_keeps_every_row_index_trigger_and_search_result(
    instance: Instance, tmp_path: Path
) -> None:
    _fill(tmp_path)
    sqlite = instance.dialect == "sqlite"
    _to(instance, "0026")  # as the catalog was before
    rows, found = _rows(instance), _found()
    # every record table the models declare that the catalog had at 0026 is rebuilt (a table
    # made later gets AUTOINCREMENT from its own migration: test_every_declared_table_...)
    assert set(TABLES) == declared() & set(rows), (sorted(TABLES), sorted(declared()))
    assert all(rows[t] for t in TABLES), {t: len(rows[t]) for t in TABLES}
    assert found == {
        "artifacts": ["notes/über.txt"],
        "ulabels": ["treated"],
        "transforms": ["align"],
        "collections": ["sets/pair"],
    }, found
    if sqlite:
        schema = _schema(instance)
        assert _autoincrement(instance) == {}
    upgrade(instance.engine, "0027")  # 0028 adds a column: test_migration_linkcol
    assert _rows(instance) == rows
    assert _found() == found
    if sqlite:
        assert _schema(instance) == schema
        with instance.engine.connect() as conn:
            top = {t: conn.exec_driver_sql(f"SELECT max(id) FROM {t}").scalar() for t in TABLES}
        assert _autoincrement(instance) == top
        with instance.engine.connect() as conn:
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'runs'"
            ).scalar_one()
        assert "PRIMARY KEY (id AUTOINCREMENT)" in sql
    _to(instance, "0026")
    assert _rows(instance) == rows and _found() == found
    if sqlite:
        assert _schema(instance) == schema
        assert _autoincrement(instance) == {}
    upgrade(instance.engine, "0027")
    assert _rows(instance) == rows and _found() == found


def test_an_id_deleted_before_0027_is_not_given_again_after_it(
    instance: Instance, tmp_path: Path
) -> None:
    """The audit log saw the highest run and artifact deleted at 0026: 0027's sequences
    start above them, not at what the tables hold."""
    _fill(tmp_path)
    (tmp_path / "gone.txt").write_text("gone")
    newest = ll.Artifact(tmp_path / "gone.txt", key="gone.txt").save()  # this code's columns
    _to(instance, "0026")
    with instance.engine.begin() as conn:
        run = conn.exec_driver_sql("SELECT max(id) FROM runs").scalar_one()
        conn.execute(text("DELETE FROM run_inputs WHERE run_id = :id"), {"id": run})
        conn.execute(text("UPDATE artifacts SET run_id = NULL WHERE run_id = :id"), {"id": run})
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run})
        conn.execute(text("DELETE FROM artifacts WHERE id = :id"), {"id": newest.id})
    upgrade(instance.engine)
    (tmp_path / "next.txt").write_text("next")
    after = ll.Artifact(tmp_path / "next.txt", key="next.txt").save()
    assert after.id > newest.id
    with instance.engine.begin() as conn:
        transform = conn.exec_driver_sql("SELECT min(id) FROM transforms").scalar_one()
        made = conn.execute(
            text(
                "INSERT INTO runs (transform_id, status, uid, created_at) "
                "VALUES (:t, 'started', 'newrun0000000000', '2026-12-07 08:00:00') RETURNING id"
            ),
            {"t": transform},
        ).scalar_one()
    assert made > run


def test_every_declared_table_has_autoincrement_at_head(instance: Instance) -> None:
    """A catalog made now: every table the models declare AUTOINCREMENT has it on SQLite (a
    new record table's migration that forgot it fails here)."""
    if instance.dialect != "sqlite":
        return
    with instance.engine.connect() as conn:
        made = dict(
            conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all()
        )
    missing = sorted(t for t in declared() if "PRIMARY KEY (id AUTOINCREMENT)" not in made[t])
    assert not missing, missing
