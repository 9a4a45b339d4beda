"""Recording lineage in a fresh process maps only the models lineage is made of (and imports
neither fsspec for local files nor, on SQLite, SQLAlchemy's PostgreSQL dialect); the annotation
registries map together on first use, and `load_all` maps every core table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lakeline.instance import Instance

REGISTRIES = (
    "lakeline.models.feature",
    "lakeline.models.ulabel",
    "lakeline.models.schema",
    "lakeline.models.collection",
    "lakeline.models.annotation",
)

RECORD = """
import sys
from lakeline.instance import connect
from lakeline.lineage.recorder import make_recorder

root = sys.argv[1]
instance = connect()
recorder = make_recorder("lazy", batch=True, root=root, instance=instance)
workflow = recorder.start_workflow(key="wf", engine_run_id="run-1")
step = recorder.start_step(workflow, key="rule", kind="rule", engine_task_id="1")
recorder.use(step, "in.txt")
recorder.produce(step, "out.txt")
recorder.finish_step(step, "completed")
recorder.finish_workflow(workflow, "completed")
print("MAPPED", sorted(m for m in sys.modules if m in {registries!r}))
print("POSTGRESQL", "sqlalchemy.dialects.postgresql" in sys.modules)
print("SQLITE", "sqlalchemy.dialects.sqlite" in sys.modules)
print("FSSPEC", "fsspec" in sys.modules)

import lakeline.models as models
from lakeline.models import Base

label = models.ULabel  # any registry's name maps them all
print("AFTER", sorted(m for m in sys.modules if m in {registries!r}), label.__tablename__)
print("TABLES", sorted(Base.metadata.tables))
"""


def run(instance: Instance, tmp_path: Path, code: str) -> list[str]:
    env = {**os.environ, "LAKELINE_INSTANCE": instance.name}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "wf")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_recording_maps_no_annotation_registry(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "in.txt").write_text("in\n")
    (tmp_path / "wf" / "out.txt").write_text("out\n")
    lines = run(instance, tmp_path, RECORD.format(registries=REGISTRIES))
    mapped, pg, lite, fsspec, after, tables = lines
    assert mapped == "MAPPED []"
    # SQLite: the partial indexes' PostgreSQL option does not load that dialect (~22 ms),
    # PostgreSQL: nor their SQLite option SQLite's (~6 ms)
    assert pg == f"POSTGRESQL {instance.engine.dialect.name == 'postgresql'}"
    assert lite == f"SQLITE {instance.engine.dialect.name == 'sqlite'}"
    assert fsspec == "FSSPEC False"  # local files are located, hashed and stat'ed with os
    assert after == f"AFTER {sorted(REGISTRIES)} ulabels"
    for table in ("features", "feature_values", "artifact_ulabels", "schemas", "collections"):
        assert f"'{table}'" in tables

    from lakeline.models import Run

    with instance.sessions.read() as session:
        runs = session.query(Run).filter(Run.engine == "lazy").count()
    assert runs == 2  # the workflow and its step, recorded without the registries


def test_load_all_maps_every_core_table(instance: Instance, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom lakeline.models import Base, load_all\n"
        "before = set(Base.metadata.tables)\nload_all()\n"
        "print(sorted(set(Base.metadata.tables) - before))\n"
        f"print(sorted(m for m in sys.modules if m in {REGISTRIES!r}))\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)\n"
    )
    added, modules, postgresql = run(instance, tmp_path, code)
    assert "'feature_values'" in added and "'ulabel_parents'" in added
    assert modules == str(sorted(REGISTRIES))
    assert postgresql == "False"  # no model declares a PostgreSQL option (`partial_index`)


def test_registries_are_found_by_name_in_a_fresh_process(
    instance: Instance, tmp_path: Path
) -> None:
    """A dtype naming a registry (`cat[ULabel]`) finds it though nothing mapped it yet."""
    code = (
        "from lakeline.annotations.registries import find_registry\n"
        "print(find_registry('ULabel').__name__, find_registry('Feature').__name__)\n"
    )
    assert run(instance, tmp_path, code) == ["ULabel Feature"]


def test_partial_indexes_get_each_option_with_an_engine_of_that_database(
    instance: Instance, tmp_path: Path
) -> None:
    """Declared before an engine of a database is made, or after (a registry mapped later):
    both indexes carry the condition in that database's DDL; until then neither dialect is
    loaded, and a partial index is told from a plain one all the same (`is_partial`)."""
    code = (
        "import sys\n"
        "from sqlalchemy import Column, Index, Integer, MetaData, Table\n"
        "from sqlalchemy.schema import CreateIndex\n"
        "from lakeline.db.partial import is_partial, partial_index, use_postgresql, use_sqlite\n"
        "t = Table('t', MetaData(), Column('a', Integer), Column('b', Integer))\n"
        "before = partial_index('ix_t_a', t.c.a, where='a IS NOT NULL')\n"
        "print(is_partial(before), is_partial(Index('ix_t_c', t.c.a)))\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.')))\n"
        "use_postgresql()\n"
        "use_sqlite()\n"
        "after = partial_index('ix_t_b', t.c.b, where='b > 1')\n"
        "from sqlalchemy.dialects import postgresql, sqlite\n"
        "for ix in (before, after):\n"
        "    print(CreateIndex(ix).compile(dialect=postgresql.dialect()))\n"
        "    print(CreateIndex(ix).compile(dialect=sqlite.dialect()))\n"
    )
    lines = [line.strip() for line in run(instance, tmp_path, code) if line.strip()]
    assert lines == [
        "True False",
        "[]",
        "CREATE INDEX ix_t_a ON t (a) WHERE a IS NOT NULL",
        "CREATE INDEX ix_t_a ON t (a) WHERE a IS NOT NULL",
        "CREATE INDEX ix_t_b ON t (b) WHERE b > 1",
        "CREATE INDEX ix_t_b ON t (b) WHERE b > 1",
    ]


def test_a_postgresql_engine_declares_no_sqlite_option_and_names_columns_right(
    instance: Instance, tmp_path: Path
) -> None:
    """With only a PostgreSQL engine made (SQLite's dialect never loaded), the models' partial
    indexes carry PostgreSQL's condition, and `name_column` still tells a name unique only
    where a condition holds (no key) from a unique one; with only SQLite's, the same."""
    if instance.engine.dialect.name == "postgresql":
        url, other = instance.config.db, "sqlite"
    else:
        url, other = f"sqlite:///{tmp_path / 'other.db'}", "postgresql"
    code = (
        "import sys\n"
        "from sqlalchemy import Column, Index, Integer, MetaData, String, Table\n"
        "from lakeline.db.engine import make_engine\n"
        "from lakeline.db.partial import partial_index\n"
        "from lakeline.modules.records import name_column\n"
        "from lakeline.models import Artifact\n"
        f"engine = make_engine({url!r})\n"
        "md = MetaData()\n"
        "def registry(name, *indexes):\n"
        "    table = Table(name, md, Column('id', Integer, primary_key=True),\n"
        "                  Column('name', String(20)), *indexes)\n"
        "    return type(name, (), {'__table__': table})\n"
        "plain = registry('plain', Index('ix_plain', 'name', unique=True))\n"
        "ours = registry('ours', partial_index('ix_ours', 'name', unique=True, where='id > 0'))\n"
        "print(name_column(plain) is not None, name_column(ours))\n"
        "latest = Artifact.__table__.indexes\n"
        "dialect = engine.dialect.name\n"
        "print(sorted(str(ix.dialect_options[dialect]['where']) for ix in latest\n"
        "             if ix.dialect_options[dialect]['where'] is not None))\n"
        f"print('sqlalchemy.dialects.{other}' in sys.modules)\n"
    )
    found, conditions, loaded = run(instance, tmp_path, code)
    assert found == "True None"
    assert "is_latest AND key IS NOT NULL" in conditions
    assert loaded == "False"


def test_module_link_tables_and_name_columns_leave_the_postgresql_dialect_alone(
    instance: Instance, tmp_path: Path
) -> None:
    """A schema module's link table (made when its registries are imported) declares its
    partial indexes with `partial_index`, and `name_column` tells a partial unique index from a
    plain one by the options declared: neither loads the PostgreSQL dialect on SQLite."""
    code = (
        "import sys\n"
        "from sqlalchemy import Column, Index, Integer, MetaData, String, Table, text\n"
        "from lakeline.modules.records import link_table, name_column\n"
        "from lakeline.db.partial import partial_index\n"
        "md = MetaData()\n"
        "Table('artifacts', md, Column('id', Integer, primary_key=True))\n"
        "Table('features', md, Column('id', Integer, primary_key=True))\n"
        "Table('runs', md, Column('id', Integer, primary_key=True))\n"
        "Table('users', md, Column('id', Integer, primary_key=True))\n"
        "def registry(name, *indexes):\n"
        "    table = Table(name, md, Column('id', Integer, primary_key=True),\n"
        "                  Column('name', String(20)), *indexes)\n"
        "    return type(name, (), {'__table__': table})\n"
        "plain = registry('plain', Index('ix_plain', 'name', unique=True))\n"
        "ours = registry('ours', partial_index('ix_ours', 'name', unique=True, where='id > 0'))\n"
        "sqlite = registry('lite', Index('ix_lite', 'name', unique=True,\n"
        "                                sqlite_where=text('id > 0')))\n"
        "links = link_table(md, 'plain')\n"
        "print(name_column(plain) is not None, name_column(ours), name_column(sqlite))\n"
        "print(sorted(ix.name for ix in links.indexes))\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)\n"
    )
    found, indexes, postgresql = run(instance, tmp_path, code)
    assert found == "True None None"  # a name unique only where a condition holds is no key
    assert indexes == str(
        [f"{kind}_plain_artifacts_{what}" for kind, what in
         (("ix", "record_id"), ("ix", "run_id"), ("uq", "feature"), ("uq", "plain"))]
    )  # fmt: skip
    assert postgresql == "False"


def test_record_tables_are_autoincrement_on_sqlite_whenever_its_engine_is_made(
    instance: Instance, tmp_path: Path
) -> None:
    """The record tables' SQLite AUTOINCREMENT (0027) is declared once a SQLite engine is made,
    whether the models were imported before it or after (and never in a PostgreSQL process:
    the test above); link tables keep plain ids."""
    code = (
        "import sys\n"
        "from sqlalchemy.schema import CreateTable\n"
        "from lakeline.db.engine import make_engine\n"
        "early = sys.argv[2] == 'early'\n"
        "if early:\n"
        "    from lakeline.models import Run\n"
        f"engine = make_engine('sqlite:///{tmp_path}/' + sys.argv[2] + '.db')\n"
        "from lakeline.models import Artifact, Run\n"
        "from lakeline.models.base import Base\n"
        "def ddl(table):\n"
        "    return str(CreateTable(table).compile(dialect=engine.dialect))\n"
        "print('AUTOINCREMENT' in ddl(Run.__table__), 'AUTOINCREMENT' in ddl(Artifact.__table__),\n"
        "      'AUTOINCREMENT' in ddl(Base.metadata.tables['run_inputs']))\n"
    )
    for when in ("early", "late"):
        result = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "wf"), when],
            env={**os.environ, "LAKELINE_INSTANCE": instance.name},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["True", "True", "False"], when
