"""Schema modules given bad input: a migration failing half-way changes nothing, two modules
claiming one prefix, a module not installed, unknown names: one-line errors."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lakeline as ll
import modules_lab
import pytest
from click.testing import CliRunner, Result
from lakeline import plugins
from lakeline.cli import cli
from lakeline.errors import (
    AnnotationError,
    InvalidDtype,
    ModuleConflict,
    ModuleMigrationFailed,
    ModuleNotInstalled,
    ModuleNotMounted,
    SchemaOutOfDate,
    UnknownModule,
)
from lakeline.hookspecs import hookimpl
from lakeline.instance import Instance, connect, disconnect
from lakeline.modules import SchemaModule, installed, mounted, spec
from lakeline.modules import add as add_modules
from sqlalchemy import text

lab_site, lab, lab_instance = modules_lab.lab_site, modules_lab.lab, modules_lab.lab_instance


def fails(*args: str) -> str:
    """Invoke the CLI expecting a one-line error; returns it."""
    result: Result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


@pytest.fixture
def register(lab: Path) -> Callable[..., None]:
    """Register more schema modules (as another installed plugin would)."""

    def add(*modules: SchemaModule) -> None:
        class More:
            @hookimpl
            def register_modules(self, register: Callable[[SchemaModule], None]) -> None:
                for module in modules:
                    register(module)

        plugins.get_plugin_manager().register(More())
        spec.reset()

    return add


def _state(instance: Instance) -> Any:
    """What the database holds: SQLite: every statement of a dump and the main file's bytes
    (after a checkpoint); PostgreSQL: tables, versions and settings."""
    with instance.engine.connect() as conn:
        if instance.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = instance.engine.url.database
            assert path
            dump = list(sqlite3.connect(path).iterdump())
            return dump, hashlib.sha256(Path(path).read_bytes()).hexdigest()
        tables = sorted(conn.dialect.get_table_names(conn))
        versions = sorted(conn.execute(text("SELECT * FROM alembic_version")).scalars())
        settings = sorted(conn.execute(text("SELECT key, value FROM settings")).all())
        return tables, versions, settings


def test_migration_failing_half_way_changes_nothing(
    lab_instance: Instance, register: Callable[..., None]
) -> None:
    from lakeline_lab.plugin import BROKEN

    register(BROKEN)
    before = _state(lab_instance)
    with pytest.raises(ModuleMigrationFailed) as failed:
        add_modules("labbad")
    message = str(failed.value)
    assert message.startswith(
        "schema module 'labbad' (lakeline-lab): migration labbad_0002_fails.py failed, "
        "nothing was changed: "
    )
    assert "no_such_column" in message and "\n" not in message
    assert _state(lab_instance) == before
    assert mounted() == {"lab": "lakeline-lab"}
    error = fails("modules", "add", "labbad")
    assert error.startswith("error: schema module 'labbad' (lakeline-lab): migration labbad_0002")
    assert _state(lab_instance) == before
    disconnect()
    connect("test")  # still a sound instance


def test_two_modules_claiming_one_prefix(lab: Path, register: Callable[..., None]) -> None:
    from lakeline_lab.plugin import CLASH

    register(CLASH)
    with pytest.raises(
        ModuleConflict,
        match=r"'lab' \(lakeline-lab\) and 'lab2' \(lakeline-lab2\) claim one table prefix",
    ):
        installed()
    assert "claim one table prefix ('lab_', 'lab_'); uninstall one" in fails("modules")


def test_prefix_of_a_core_table_and_a_table_outside_the_prefix(
    lab_instance: Instance, register: Callable[..., None]
) -> None:
    from lakeline_lab.plugin import STRAY

    register(SchemaModule("runner", "lakeline-runner", "run_", "x.models", ".", "run_0001"))
    with pytest.raises(
        ModuleConflict, match=r"prefix 'run_' is taken by the core's table 'run_inputs'"
    ):
        installed()
    plugins.reset()
    register(STRAY)
    before = _state(lab_instance)
    with pytest.raises(
        ModuleConflict,
        match=r"table 'strays' of Stray does not start with the module's prefix 'stray_'",
    ):
        add_modules("stray")
    assert _state(lab_instance) == before
    plugins.reset()
    register(
        SchemaModule("ghost", "lakeline-ghost", "ghost_", "lakeline_lab.ghost", ".", "ghost_1")
    )
    with pytest.raises(ModuleConflict) as failed:
        add_modules("ghost")
    assert str(failed.value) == (
        "schema module 'ghost' (lakeline-ghost): its models lakeline_lab.ghost failed to import: "
        "ModuleNotFoundError: No module named 'lakeline_lab.ghost'"
    )
    assert _state(lab_instance) == before


def _row(table: str, module: str) -> list[str]:
    """The fields of a module's row in `lakeline modules` (other installed modules, such as
    the workspace's lakeline-bio, have rows of their own)."""
    return next(line.split() for line in table.splitlines() if line.split()[:1] == [module])


def test_mounted_module_not_installed(
    lab_instance: Instance, monkeypatch: pytest.MonkeyPatch, lab_site: Path
) -> None:
    disconnect()
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "")
    plugins.reset()
    with pytest.raises(ModuleNotInstalled) as refused:
        connect("test")
    assert str(refused.value) == (
        "instance 'test' mounts schema module 'lab', which is not installed here: install the "
        "distribution lakeline-lab (pip install lakeline-lab) (or allow it in "
        "$LAKELINE_LOAD_PLUGINS)"
    )

    # a process where the distribution really is not installed, and one where it is
    env = {k: v for k, v in os.environ.items() if k not in ("LAKELINE_LOAD_PLUGINS", "PYTHONPATH")}
    command = [sys.executable, "-m", "lakeline.cli", "ls"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (
        "error: instance 'test' mounts schema module 'lab', which is not installed here: "
        "install the distribution lakeline-lab (pip install lakeline-lab)"
    )
    done = subprocess.run(
        [sys.executable, "-m", "lakeline.cli", "modules"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # what is missing, and which distribution
    assert _row(done.stdout, "lab")[:5] == ["lab", "lakeline-lab", "NO", "yes", "?"]
    env["PYTHONPATH"] = str(lab_site)
    done = subprocess.run(
        [sys.executable, "-m", "lakeline.cli", "modules"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _row(done.stdout, "lab") == [
        "lab", "lakeline-lab", "lab_", "yes", "yes", "lab_0002", "(head", "lab_0002)",
    ]  # fmt: skip


def test_unknown_module_names(lab: Path, tmp_path: Path, lakeline_home: Path) -> None:
    error = fails("init", "--storage", str(tmp_path / "data"), "--modules", "lab,nope")
    assert error == "error: no installed schema module is named 'nope' (installed: lab)"
    assert not (tmp_path / "data").exists() and not (lakeline_home / "instances").exists()
    ll.init(tmp_path / "data", name="test")
    assert fails("modules", "add", "nope") == error
    with pytest.raises(UnknownModule, match=r"^no installed schema module is named 'nope'"):
        add_modules(["lab", "nope"])  # the known one is not mounted either
    assert mounted() == {}
    for dtype, problem in [
        ("cat[nope.Sample]", r"no installed schema module is named 'nope'"),
        (
            "cat[lab.Nope]",
            r"schema module 'lab' has no registry 'Nope' \(it has: Biosample, Experiment\)",
        ),
        ("cat[lab.Experiment]", r"lab.Experiment is not a label registry"),
        ("cat[lab.Biosample[Blood]]", r"lab.Biosample records have no type"),
    ]:
        with pytest.raises(InvalidDtype, match=problem):
            ll.Feature(name="sample", dtype=dtype)
    from lakeline_lab.models import Biosample

    unmounted = r"Biosample is a registry of schema module 'lab', which instance 'test' does not "
    for use in (Biosample.filter, lambda: Biosample.get(name="S1"), lambda: Biosample.search("S"),
                Biosample(name="S1").save, lambda: ll.save([Biosample(name="S2")])):  # fmt: skip
        with pytest.raises(
            ModuleNotMounted, match=unmounted + r"mount: `lakeline modules add lab`"
        ):
            use()
    with pytest.raises(
        AnnotationError,
        match=r"names schema module 'lab', which this instance does not mount: "
        r"`lakeline modules add lab`",
    ):
        ll.Feature(name="sample", dtype="cat[lab.Biosample]").save()


def test_module_branch_newer_than_installed(lab_instance: Instance) -> None:
    with lab_instance.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE alembic_version SET version_num = 'lab_0099' WHERE version_num = 'lab_0002'"
            )
        )
    disconnect()
    with pytest.raises(
        SchemaOutOfDate,
        match=r"at revision lab_0099 of schema module 'lab', newer than the installed "
        r"lakeline-lab knows \(lab_0002\): upgrade lakeline-lab",
    ):
        connect("test")


def test_declared_head_must_be_the_branch_head(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, register: Callable[..., None]
) -> None:
    from dataclasses import replace

    from lakeline_lab.plugin import LAB

    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "")  # only the module registered below
    plugins.reset()
    register(replace(LAB, head="lab_0003"))
    with pytest.raises(ModuleConflict) as refused:
        ll.init(tmp_path / "data", name="test", modules=["lab"])
    assert str(refused.value) == (
        "schema module 'lab' (lakeline-lab) declares head lab_0003, its migrations end at lab_0002"
    )


def _mount_held(pause: Any, name: str) -> None:
    """In a child process: mount the lab module, held once it has the migration lock."""
    from lakeline import checkpoints
    from lakeline.instance import connect

    instance = connect(name)
    with checkpoints.at("migrate.locked", pause.hold):
        add_modules("lab", instance)


def test_two_mounts_at_once(lab: Path, db_url: str | None, tmp_path: Path) -> None:
    """A second `modules add` while another one migrates waits for it, then finds the tables
    there (PostgreSQL: without the migration lock it created them again and failed)."""
    from faults import second_while_held
    from lakeline.db.migrate import HEAD_REVISION, revisions

    instance = ll.init(tmp_path / "data", db=db_url, name="test")
    exitcode, outcome = second_while_held(
        _mount_held,
        ("test",),
        lambda: add_modules("lab", instance),
        instance.engine,
        "the second mount",
        waits=instance.dialect == "postgresql",  # the second waits for a lock before going on
    )
    assert exitcode == 0
    assert outcome == [["lab"]]
    assert mounted(instance) == {"lab": "lakeline-lab"}
    with instance.engine.connect() as conn:
        assert sorted(revisions(conn) or []) == [HEAD_REVISION, "lab_0002"]
