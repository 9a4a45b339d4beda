"""Schema module tables are audited like core tables: the module migrate step installs the
core's audit (and, on PostgreSQL, creator) triggers on every module table with a `uid`, on
SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

import modules_lab
from click.testing import CliRunner
from lakeline.access.audit import entries, verify
from lakeline.cli import cli
from lakeline.db.migrate import migrating, upgrade
from lakeline.instance import Instance, migrate
from sqlalchemy import text
from test_access_audit import raw

lab_site, lab, lab_instance = modules_lab.lab_site, modules_lab.lab, modules_lab.lab_instance


def _triggers(instance: Instance) -> list[tuple[str, str]]:
    if instance.dialect == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    else:
        query = (
            "SELECT t.tgname || ' ON ' || c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal ORDER BY 1"
        )
    with instance.engine.connect() as conn:
        return [(str(a), str(b)) for a, b in conn.execute(text(query))]


def test_module_rows_are_audited(lab_instance: Instance) -> None:
    from lakeline_lab.models import Biosample

    sample = Biosample(name="S1", tissue="blood").save()
    sample.tissue = "liver"
    sample.save()
    uid = sample.uid
    with lab_instance.engine.begin() as conn:  # module records have no delete(): plain SQL
        conn.execute(text("DELETE FROM lab_biosamples WHERE uid = :uid"), {"uid": uid})
    log = [e for e in entries(lab_instance, uids=[uid]) if e.table == "lab_biosamples"]
    assert [(e.action, e.uid) for e in log] == [("insert", uid), ("update", uid), ("delete", uid)]
    assert log[0].changes["name"] == "S1" and log[1].changes["tissue"] == ["blood", "liver"]
    assert {e.actor for e in log} == {lab_instance.user.handle}
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0 and "intact" in result.output, result.output
    with raw(lab_instance) as conn:
        conn.execute(f"UPDATE audit_log SET changes = '{{}}' WHERE seq = {log[1].seq}")
    verdict = verify(lab_instance)
    assert not verdict.ok and verdict.bad_seq == log[1].seq


def test_module_triggers_are_installed_once(lab_instance: Instance) -> None:
    from lakeline.modules.mounting import required

    names = [name for name, _ in _triggers(lab_instance)]
    module_triggers = [n for n in names if "lab_biosamples" in n or "lab_experiments" in n]
    # PostgreSQL: + creator and delete checks (created_by)
    expected = 6 if lab_instance.dialect == "sqlite" else 12
    assert len(module_triggers) == expected, module_triggers
    before = _triggers(lab_instance)
    upgrade(lab_instance.engine, modules=required(lab_instance.engine, lab_instance.name))
    assert _triggers(lab_instance) == before
    # an instance that mounted the module before its tables were audited: `migrate` at head
    with lab_instance.engine.begin() as conn:
        for name in module_triggers:
            conn.execute(text(f"DROP TRIGGER {name}"))  # PG: "name ON table"
    assert len(_triggers(lab_instance)) == len(before) - expected
    migrate(lab_instance.name)
    assert _triggers(lab_instance) == before


def test_module_rows_cannot_be_created_in_another_name(lab_instance: Instance) -> None:
    import pytest
    from lakeline.errors import PermissionDenied

    if lab_instance.dialect == "sqlite":
        pytest.skip("SQLite is single-user: the creator is the OS user (no creator check)")
    with lab_instance.engine.begin() as conn:
        other = conn.execute(
            text(
                "INSERT INTO users (uid, handle, created_at) VALUES ('mallory0', 'mallory', now()) "
                "RETURNING id"
            )
        ).scalar_one()
    refused = pytest.raises(PermissionDenied, match="in the name of another user")
    with refused, lab_instance.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO lab_biosamples (uid, name, created_at, created_by_id) "
                "VALUES ('forgedforged0000', 'F', now(), :other)"
            ),
            {"other": other},
        )


def test_module_triggers_cross_migration_0012(lab_instance: Instance) -> None:
    """A catalog with a module back at 0011 (the module's triggers in the old, flattened
    form), rows audited, then upgraded: the module's triggers take the new form too and the
    chain goes on intact."""
    import pytest
    from alembic import command
    from lakeline.db.migrate import alembic_config
    from lakeline.modules.mounting import required
    from lakeline_lab.models import Biosample

    if lab_instance.dialect != "sqlite":
        pytest.skip("0012 changes nothing on PostgreSQL")
    modules = required(lab_instance.engine, lab_instance.name)
    cfg = alembic_config(modules)
    with migrating(lab_instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "lakeline@0011")
    old = [n for n, sql in _triggers(lab_instance) if "FROM audit_head h) s;" in sql]
    assert "lakeline_audit_lab_biosamples_insert" in old
    Biosample(name="before", tissue="blood").save()
    upgrade(lab_instance.engine, modules=modules)
    module = [sql for n, sql in _triggers(lab_instance) if "lab_biosamples" in n]
    assert len(module) == 3 and all("LIMIT -1 OFFSET 0) s;" in sql for sql in module)
    Biosample(name="after", tissue="liver").save()
    log = [e for e in entries(lab_instance) if e.table == "lab_biosamples"]
    assert [e.changes["name"] for e in log] == ["before", "after"] and verify(lab_instance).ok
