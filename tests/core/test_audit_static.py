"""PostgreSQL's UPDATE audit runs static SQL of each table's own (migration 0014): the same
entries as 0009's generic function, which built its query with format() and EXECUTE on every
call; and the chaining at commit is planned once per session, not at every commit."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import lakeline as ll
import modules_lab
import pytest
from alembic import command
from lakeline.access.audit import entries, verify
from lakeline.access.audit_pg import function_name
from lakeline.db.migrate import HEAD_REVISION, alembic_config, migrating, upgrade
from lakeline.db.pg_helpers import helpers
from lakeline.instance import Instance, migrate
from lakeline.lineage.recorder import BatchRecorder, Recorder
from sqlalchemy import text
from test_access_audit import _session
from test_recorder_batching import steps_of_one_flush

lab_site, lab, lab_instance = modules_lab.lab_site, modules_lab.lab, modules_lab.lab_instance

CHAIN_SETTINGS = {"plan_cache_mode=force_generic_plan", "enable_seqscan=off", "jit=off"}


def _postgres_only(instance: Instance) -> None:
    if instance.dialect != "postgresql":
        pytest.skip("SQLite's audit triggers list the table's columns (0009): unchanged")


def _update_functions(instance: Instance) -> dict[str, str]:
    """Each table's UPDATE audit trigger: the function it runs."""
    with instance.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = 'lakeline_audit_update'"
            )
        ).all()
    return {str(table): str(function) for table, function in rows}


def _settings(instance: Instance, function: str) -> set[str]:
    with instance.engine.connect() as conn:
        config = conn.execute(
            text("SELECT proconfig FROM pg_proc WHERE proname = :f"), {"f": function}
        ).scalar_one()
    return set(config or ())


def _source(instance: Instance, function: str) -> str:
    with instance.engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT prosrc FROM pg_proc WHERE proname = :f"), {"f": function}
            ).scalar_one()
        )


def test_each_audited_table_is_updated_through_static_sql_of_its_own(
    instance: Instance,
) -> None:
    _postgres_only(instance)
    functions = _update_functions(instance)
    assert {"artifacts", "runs", "run_inputs", "users", "spaces"} <= set(functions)
    with instance.engine.connect() as conn:
        columns = {
            table: set(conn.execute(text(f"SELECT * FROM {table} LIMIT 0")).keys())
            for table in functions
        }
    for table, function in functions.items():
        assert function == function_name(table), table
        # past the branch for columns added since (0009's statements)
        static = _source(instance, function).split("END IF;\n    ELSIF TG_OP = 'INSERT'", 1)[1]
        for column in columns[table] - {"search_vector"}:  # every column read, compared as is
            assert f"'{column}', n.\"{column}\"" in static, (table, column)
            assert f'o."{column}" IS DISTINCT FROM n."{column}"' in static, (table, column)
        assert "search_vector" not in static and "EXECUTE" not in static
        assert "to_jsonb(n.*)" not in static
    assert _settings(instance, "lakeline_audit_chain") >= CHAIN_SETTINGS


def _probe(instance: Instance, key: str = "id") -> None:
    """A second set of audit triggers on every audited table, running 0009's generic function:
    each row written is then audited twice, by the table's own function and by the generic."""
    with instance.engine.begin() as conn:
        schema = helpers(conn)
        for table in _update_functions(instance):
            for event, refs in (
                ("INSERT", "NEW TABLE AS new_rows"),
                ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                ("DELETE", "OLD TABLE AS old_rows"),
            ):
                conn.execute(
                    text(
                        f"CREATE TRIGGER zz_generic_{event.lower()} AFTER {event} ON {table} "
                        f"REFERENCING {refs} FOR EACH STATEMENT "
                        f"EXECUTE FUNCTION {schema}.lakeline_audit('{key}')"
                    )
                )


def _raw_updates(instance: Instance, run_id: int) -> None:
    """Updates no API makes: nulls in and out, nested nulls in jsonb, a no-op, many rows."""
    with instance.engine.begin() as conn:
        for statement in (
            "UPDATE runs SET params = '{\"a\": null, \"b\": [1, null]}', error = 'e', "
            "exit_code = NULL WHERE id = :r",
            "UPDATE runs SET params = '{\"a\": 1}', error = NULL, exit_code = 3 WHERE id = :r",
            "UPDATE runs SET status = status WHERE id = :r",  # nothing changed: no entry
            "UPDATE runs SET host = 'h-' || id WHERE id >= :r - 3",
            "UPDATE artifacts SET description = NULL WHERE description IS NOT NULL",
        ):
            conn.execute(text(statement), {"r": run_id})


def test_every_write_is_audited_as_the_generic_function_audits_it(
    lab_instance: Instance, tmp_path: Path
) -> None:
    """Every path that writes rows (ORM saves and deletes, the plain and batched Recorder's
    COPY, finishes and claims, raw SQL, a module's records) gets the entries 0009's function
    gives."""
    from lakeline_lab.models import Biosample

    instance = lab_instance
    _postgres_only(instance)
    assert _update_functions(instance)["lab_biosamples"] == "lakeline_audited_lab_biosamples"
    _probe(instance)
    before = max([e.seq for e in entries(instance)], default=0)
    _session(tmp_path)
    steps_of_one_flush(Recorder("plain", root=tmp_path / "plain"), tmp_path / "plain", 3)
    rec = BatchRecorder("batched", root=tmp_path / "batched", steps=100, ms=600_000)
    steps_of_one_flush(rec, tmp_path / "batched", 3)
    rec.flush()
    _raw_updates(instance, int(ll.Run.filter(engine="batched").first().id))
    sample = Biosample(name="S1", tissue="blood").save()
    sample.tissue = None
    sample.save()
    with instance.engine.begin() as conn:  # a module's records have no delete(): SQL
        conn.execute(text("DELETE FROM lab_biosamples WHERE uid = :u"), {"u": sample.uid})
    log = [e for e in entries(instance) if e.seq > before]
    twins = Counter(
        (e.table, e.uid, e.at, e.actor, e.action, json.dumps(e.changes, sort_keys=True))
        for e in log
    )
    assert twins and all(count % 2 == 0 for count in twins.values()), twins
    updates = Counter(e.table for e in log if e.action == "update")
    assert {"artifacts", "runs", "lab_biosamples"} <= set(updates) and updates["runs"] >= 20
    written = {(e.table, e.action) for e in log}
    assert {
        ("artifacts", "delete"),
        ("lab_biosamples", "delete"),
        ("run_inputs", "insert"),
    } <= written
    nested: Any = [e.changes["params"] for e in log if "params" in e.changes]
    assert [None, {"a": None, "b": [1, None]}] in nested  # a null inside jsonb stays
    assert verify(instance).ok


def test_a_statement_that_writes_no_row_is_not_chained(instance: Instance) -> None:
    """0009 registered the transaction for the chaining at commit for a statement that wrote
    nothing (an UPDATE matching no row, ON CONFLICT DO NOTHING, the version-space UPDATE after
    every insert of artifacts): ~270 us of server time each."""
    _postgres_only(instance)
    head = verify(instance).head
    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE runs SET exit_code = 1 WHERE false"))
        conn.execute(text("DELETE FROM runs WHERE false"))
        conn.execute(
            text("INSERT INTO settings (key, value) SELECT key, value FROM settings LIMIT 0")
        )
        assert conn.execute(text("SELECT count(*) FROM audit_pending")).scalar() == 0
    assert verify(instance).head == head


def test_tables_with_columns_named_as_the_rows_are_audited(instance: Instance) -> None:
    """A column named `n` or `o` (the transition rows' aliases) was read for the row by
    0009's `to_jsonb(n)`: "cannot delete from scalar", the write refused. A table without a
    primary key keeps the generic function."""
    from lakeline.access.audit_pg import install_audits

    _postgres_only(instance)
    with instance.engine.begin() as conn:
        conn.execute(text("CREATE TABLE keyless (uid text, n integer, o integer)"))
        conn.execute(text("CREATE TABLE keyed (id serial PRIMARY KEY, uid text, n int, o int)"))
        assert install_audits(conn, ["keyless", "keyed"]) == ["keyless", "keyed"]
    for table in ("keyless", "keyed"):
        uid = f"{table}-1"
        with instance.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {table} (uid, n, o) VALUES (:u, 1, 2)"), {"u": uid})
            if table == "keyed":  # 0009's UPDATE pairs rows on the key: a keyless one fails
                conn.execute(text(f"UPDATE {table} SET n = 3 WHERE uid = :u"), {"u": uid})
            conn.execute(text(f"DELETE FROM {table} WHERE uid = :u"), {"u": uid})
        log = [(e.action, e.changes) for e in entries(instance, uids=[uid])]
        row = {"uid": uid, "n": 1, "o": 2} | ({"id": 1} if table == "keyed" else {})
        if table == "keyed":
            assert log == [("insert", row), ("update", {"n": [1, 3]}), ("delete", row | {"n": 3})]
        else:
            assert log == [("insert", row), ("delete", row)]
    functions = _update_functions(instance)
    assert (
        functions["keyless"] == "lakeline_audit" and functions["keyed"] == "lakeline_audited_keyed"
    )
    assert verify(instance).ok


def test_a_column_added_outside_migrate_is_audited_and_migrate_compares_it_again(
    instance: Instance,
) -> None:
    _postgres_only(instance)
    rec = Recorder("toy")
    run = rec.start_workflow(key="p", engine_run_id="r").run
    with instance.engine.begin() as conn:
        conn.execute(text("ALTER TABLE runs ADD COLUMN note text DEFAULT 'n0'"))
        conn.execute(text("UPDATE runs SET note = 'x' WHERE id = :id"), {"id": run.id})
    added = rec.start_workflow(key="q", engine_run_id="s").run  # inserted with its note
    assert "note" not in _source(instance, "lakeline_audited_runs")
    migrate(instance.name)  # at head: the table's function made again
    source = _source(instance, "lakeline_audited_runs")
    assert 'o."note" IS DISTINCT FROM n."note"' in source and "'note', n.\"note\"" in source
    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE runs SET note = 'y' WHERE id = :id"), {"id": run.id})
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": added.id})
    log = [e.changes for e in entries(instance, uids=[run.uid]) if e.action == "update"]
    assert log[-2:] == [{"note": ["n0", "x"]}, {"note": ["x", "y"]}]
    inserted, deleted = (e.changes for e in entries(instance, uids=[added.uid]))
    assert inserted["note"] == "n0" and deleted["note"] == "n0"
    assert verify(instance).ok


def _saved(tmp_path: Path, *names: str) -> dict[str, ll.Artifact]:
    """Records saved now (this code cannot save into a catalog older than its columns, 0028),
    edited later at the revision a test is at."""
    for name in names:
        (tmp_path / f"{name}.txt").write_text(name)
    return {n: ll.Artifact(tmp_path / f"{n}.txt", key=f"{n}.txt").save() for n in names}


def _audited_update(instance: Instance, tmp_path: Path, artifact: ll.Artifact) -> dict[str, Any]:
    name = str(artifact.key).removesuffix(".txt")
    with instance.engine.begin() as conn:  # the edit's UPDATE, as `save()` of an edit sends it
        conn.execute(
            text("UPDATE artifacts SET description = :d WHERE id = :id"),
            {"d": f"about {name}", "id": artifact.id},
        )
    rec = Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key=name, engine_run_id=name)
    rec.finish_workflow(wf)
    log = entries(instance, uids=[artifact.uid, wf.run.uid])
    return {e.table: e.changes for e in log if e.action == "update"}


def _downgrade_to_0013(instance: Instance) -> None:
    """Downgrade to 0013; on PostgreSQL every table is audited by the generic function again
    and the chaining has none of 0014's settings."""
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    if instance.dialect == "postgresql":
        assert set(_update_functions(instance).values()) == {"lakeline_audit"}
        assert not CHAIN_SETTINGS & _settings(instance, "lakeline_audit_chain")


def test_a_catalog_at_0013_is_upgraded_and_downgraded_in_place(
    instance: Instance, tmp_path: Path
) -> None:
    postgres = instance.dialect == "postgresql"
    saved = _saved(tmp_path, "old", "new", "again")
    _downgrade_to_0013(instance)
    if postgres:
        assert "a.id = f.id" in _source(instance, "lakeline_audit_chain")
    old = _audited_update(instance, tmp_path, saved["old"])
    assert old["artifacts"] == {"description": [None, "about old"]}
    assert set(old["runs"]) == {"status", "status_log", "finished_at"}
    upgrade(instance.engine)
    with instance.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            HEAD_REVISION
        )
    if postgres:
        assert all(f == function_name(t) for t, f in _update_functions(instance).items())
        assert _settings(instance, "lakeline_audit_chain") >= CHAIN_SETTINGS
        assert "a.ctid = f.t" in _source(instance, "lakeline_audit_chain")
    new = _audited_update(instance, tmp_path, saved["new"])
    assert new["artifacts"] == {"description": [None, "about new"]}
    assert set(new["runs"]) == set(old["runs"])
    assert verify(instance).ok
    _downgrade_to_0013(instance)
    if postgres:
        with instance.engine.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'lakeline\\_audited\\_%'")
            ).scalar()
        assert left == 0
        assert "a.id = f.id" in _source(instance, "lakeline_audit_chain")
    again = _audited_update(instance, tmp_path, saved["again"])
    assert again["artifacts"] == {"description": [None, "about again"]}
    assert verify(instance).ok
    upgrade(instance.engine)
    assert verify(instance).ok


@pytest.mark.parametrize(
    "change",
    [
        "DROP COLUMN b",
        "RENAME COLUMN b TO c",
        "DROP COLUMN b, ADD COLUMN c integer",  # the column count alone caught this one
        "RENAME COLUMN id TO ident",  # the key: 0009's query pairs rows on the key as it is
    ],
)
def test_a_column_dropped_or_renamed_outside_migrate_is_audited_as_the_generic_audits_it(
    instance: Instance, change: str
) -> None:
    """The function is made for the columns as they were: a column dropped or renamed since
    (the table's column count unchanged) made its static SQL name a column that no longer is
    and every write of the table failed until `lakeline migrate`."""
    from lakeline.access.audit_pg import install_audits

    _postgres_only(instance)
    with instance.engine.begin() as conn:
        conn.execute(text("CREATE TABLE keyed (id serial PRIMARY KEY, uid text, a int, b int)"))
        install_audits(conn, ["keyed"])
        conn.execute(text("INSERT INTO keyed (uid, a, b) VALUES ('k-1', 1, 2), ('k-2', 3, 4)"))
    before = max(e.seq for e in entries(instance))
    with instance.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE keyed {change}"))
    _probe(instance, "ident" if "id TO ident" in change else "id")
    with instance.engine.begin() as conn:
        conn.execute(text("INSERT INTO keyed (uid, a) VALUES ('k-3', 5)"))
        conn.execute(text("UPDATE keyed SET a = a + 10"))
        conn.execute(text("DELETE FROM keyed WHERE uid = 'k-2'"))
    log = [e for e in entries(instance, uids=["k-1", "k-2", "k-3"]) if e.seq > before]
    twins = Counter((e.uid, e.action, json.dumps(e.changes, sort_keys=True)) for e in log)
    assert all(count % 2 == 0 for count in twins.values()), twins
    assert sum(twins.values()) == 10  # insert, 3 updates, delete: each twice
    assert verify(instance).ok


def _migrate_held(pause: Any, name: str) -> None:
    """In a child process: `lakeline migrate` at head, held with its audit functions made
    again, not committed."""
    from lakeline import checkpoints

    with checkpoints.at("migrate.audits", pause.hold):
        migrate(name)


def test_two_migrates_at_head_at_once(db_url: str | None, tmp_path: Path) -> None:
    """A second `lakeline migrate` at head while another one makes the audit functions again
    waits for it (without the migration lock: "tuple concurrently updated" once the first
    committed)."""
    from faults import second_while_held

    instance = ll.init(tmp_path / "data", db=db_url, name="test")
    _postgres_only(instance)
    exitcode, outcome = second_while_held(
        _migrate_held, ("test",), lambda: migrate("test")[1], instance.engine, "the second migrate"
    )
    assert exitcode == 0
    assert outcome == [HEAD_REVISION]
    assert verify(instance).ok
