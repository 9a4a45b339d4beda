"""Schema modules: a real distribution (tests/core/lab_module, `lakeline-lab`) adds the
registries Biosample and Experiment through `register_modules`; they get what core
registries get, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import modules_lab
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from lakeline import plugins
from lakeline.db.migrate import HEAD_REVISION, alembic_config, include_object_for, revisions
from lakeline.errors import AnnotationError, SchemaOutOfDate
from lakeline.instance import Instance, connect, disconnect, migrate
from lakeline.models import Base
from lakeline.modules import installed, mounted
from sqlalchemy import text

lab_site, lab, lab_instance = modules_lab.lab_site, modules_lab.lab, modules_lab.lab_instance


def test_hook_register_modules(lab: Path) -> None:
    from lakeline_lab.plugin import LAB

    modules = installed()
    assert modules == {"lab": LAB}
    assert plugins.get_plugin_manager().get_plugin("lab") is not None  # from the entry point
    assert Path(LAB.location).is_dir() and LAB.location.startswith(str(lab))


def test_head_constant_matches_the_branch(lab: Path) -> None:
    from lakeline_lab.plugin import LAB

    script = ScriptDirectory.from_config(alembic_config([LAB]))
    assert sorted(script.get_heads()) == sorted([HEAD_REVISION, LAB.head])
    assert script.get_revision("lab_0001").branch_labels == {"lab"}


def test_core_revision_ids_have_no_underscore() -> None:
    """`alembic_version` rows are told apart by their ids: a module's start with its prefix
    (which ends in `_`), the core's have none."""
    from lakeline.db.migrate import known_revisions

    assert HEAD_REVISION in known_revisions()
    assert [r for r in known_revisions() if "_" in r] == []


def test_migrations_match_models(lab_instance: Instance) -> None:
    from lakeline_lab.plugin import LAB

    with lab_instance.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object_for([LAB])}
        )
        assert list(compare_metadata(context, Base.metadata)) == []
        rows = revisions(conn)
        tables = set(conn.dialect.get_table_names(conn))
    assert sorted(rows or []) == [HEAD_REVISION, "lab_0002"]
    assert {"lab_biosamples", "lab_biosamples_artifacts", "lab_experiments"} <= tables
    assert mounted() == {"lab": "lakeline-lab"}


def test_registries_query_and_record_who_and_which_run(lab_instance: Instance) -> None:
    from lakeline_lab.models import Biosample, Experiment

    @ll.tracked(key="sampling")
    def sample() -> Biosample:
        return Biosample(name="S1", tissue="blood").save()

    s1 = sample()
    s2, s1_again = ll.save([Biosample(name="S2", tissue="liver"), Biosample(name="S1")])
    assert s1_again.id == s1.id and s1_again.tissue == "blood"  # unique name: the same record
    experiment = Experiment(name="E1", protocol="scRNA", biosample_id=s2.id).save()

    assert s1.run is not None and s1.run.transform.key == "sampling"
    assert s2.run is None and s2.created_by is not None
    assert s2.created_by.handle == lab_instance.user.handle == experiment.created_by.handle
    assert Biosample.get(name="S2").uid == s2.uid and Biosample.get(s1.uid).name == "S1"
    assert [b.name for b in Biosample.filter(tissue__in=["blood", "liver"]).order_by("name")] == [
        "S1",
        "S2",
    ]
    assert Experiment.get(biosample__name="S2").uid == experiment.uid
    assert [b.name for b in Biosample.search("S2")] == ["S2"]
    frame = Biosample.filter().order_by("name").to_dataframe(["name", "tissue"])
    assert frame.to_dict("list") == {"name": ["S1", "S2"], "tissue": ["blood", "liver"]}
    assert Experiment.filter(run__transform__key="sampling").count() == 0


def test_validate_inspect_standardize(lab_instance: Instance) -> None:
    from lakeline_lab.models import Biosample

    ll.save([Biosample(name="PBMC donor 1"), Biosample(name="Liver biopsy 7")])
    Biosample.get(name="PBMC donor 1").add_synonym("pbmc-1")
    values = ["PBMC donor 1", "pbmc-1", "Liver biopsy 7", "liver biopsy 8"]
    assert Biosample.validate(values, mute=True).tolist() == [True, False, True, False]
    assert Biosample.standardize(values) == [
        "PBMC donor 1",
        "PBMC donor 1",
        "Liver biopsy 7",
        "liver biopsy 8",
    ]
    result = Biosample.inspect(values, mute=True)
    assert result.validated == ["PBMC donor 1", "Liver biopsy 7"]
    assert result.synonyms_mapper == {"pbmc-1": "PBMC donor 1"}


def test_labels_and_categorical_features(lab_instance: Instance, tmp_path: Path) -> None:
    from lakeline_lab.models import Biosample, Experiment

    s1, s2 = ll.save([Biosample(name="S1"), Biosample(name="S2")])
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n2\n")
    a = ll.Artifact(tmp_path / "a.csv", key="a.csv").save()
    b = ll.Artifact(tmp_path / "b.csv", key="b.csv").save()
    ll.save([ll.Feature(name="sample", dtype="cat[lab.Biosample]"),
             ll.Feature(name="samples", dtype="list[cat[lab.Biosample]]")])  # fmt: skip

    a.labels.add(s1)  # a plain label
    a.features.add_values({"sample": "S2", "samples": [s1, "S2"]})
    b.features.add_values({"sample": s1})
    assert a.features.get_values() == {"sample": "S2", "samples": ["S1", "S2"]}
    assert b.features.get_values() == {"sample": "S1"}
    assert [r.name for r in a.labels.get(registry=Biosample)] == ["S1", "S2"]
    assert [r.name for r in a.labels.get("sample")] == ["S2"]
    assert list(a.labels.get()) == []  # no ULabels
    assert {x.key for x in s1.artifacts} == {"a.csv", "b.csv"}
    assert [x.key for x in ll.Artifact.filter(sample="S1")] == ["b.csv"]
    assert [x.key for x in ll.Artifact.filter(sample=s2)] == ["a.csv"]
    assert [x.key for x in ll.Artifact.filter(sample__name__startswith="S")] == ["a.csv", "b.csv"]
    assert [x.key for x in ll.Artifact.filter(samples__ne="S2")] == ["b.csv"]

    frame = ll.Artifact.filter().order_by("key").to_dataframe(["key"], features=True)
    assert frame["sample"].tolist() == ["S2", "S1"]
    from lakeline.annotations.describe import describe_tree
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(describe_tree(a, lab_instance))
    shown = console.export_text()
    assert "sample (cat[lab.Biosample]) S2" in shown and "S1 (lab.Biosample)" in shown

    with pytest.raises(AnnotationError, match=r"'S9' is not a Biosample record"):
        a.features.add_values({"sample": "S9"})
    with pytest.raises(AnnotationError, match=r"takes Biosample records, got ULabel"):
        a.labels.add(ll.ULabel(name="S1").save(), feature="sample")
    with pytest.raises(AnnotationError, match=r"labels.add takes ULabels or label registry"):
        a.labels.add(Experiment(name="E1").save())
    with pytest.raises(AnnotationError, match=r"save Biosample"):
        a.labels.add(Biosample(name="unsaved"))
    assert a.features.get_values() == {"sample": "S2", "samples": ["S1", "S2"]}

    a.delete()  # links cascade with the artifact
    link = Biosample.__link_table__
    with lab_instance.engine.connect() as conn:
        left = conn.execute(text(f"SELECT DISTINCT artifact_id FROM {link.name}")).scalars().all()
    assert left == [b.id]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_module_branch_behind(
    dialect: str, lab: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A database whose lab branch is at lab_0001: SQLite migrates itself on connect (after a
    backup); PostgreSQL asks for `lakeline migrate`, which upgrades every mounted branch."""
    from lakeline.config import InstanceConfig
    from lakeline.db.engine import make_engine
    from lakeline.db.migrate import upgrade
    from lakeline.modules.mounting import _write_mounted
    from lakeline_lab.plugin import LAB

    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    engine = make_engine(url)
    upgrade(engine, "heads", modules=[])
    upgrade(engine, "lab@lab_0001", modules=[LAB],
            then=lambda conn: _write_mounted(conn, {"lab": "lakeline-lab"}))  # fmt: skip
    InstanceConfig(name="old", db=url, storage=str(tmp_path / "data"), uid="x").write()
    if dialect == "sqlite":
        connect("old")
        assert list(tmp_path.glob(f"old.db.backup-{HEAD_REVISION}-*"))
    else:
        with pytest.raises(SchemaOutOfDate, match=r"lab at lab_0001 \(head lab_0002\).*migrate"):
            connect("old")
        assert migrate("old") == (HEAD_REVISION, HEAD_REVISION, None)
        connect("old")
    with engine.connect() as conn:
        assert sorted(revisions(conn) or []) == [HEAD_REVISION, "lab_0002"]
    engine.dispose()
    disconnect()


def test_cli_init_list_add_migrate(
    lab: Path, tmp_path: Path, db_url: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    from click.testing import CliRunner
    from lakeline.cli import cli

    def run(*args: str) -> str:
        result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
        return result.stdout

    db = ["--db", db_url] if db_url else []
    run("init", "--storage", str(tmp_path / "data"), "--name", "plain", *db)
    listing = run("modules").splitlines()
    assert listing[0].split() == ["module", "distribution", "prefix", "installed", "mounted",
                                  "revision"]  # fmt: skip
    assert listing[1].split() == ["lab", "lakeline-lab", "lab_", "yes", "no"]
    assert run("modules", "add", "lab") == "plain: mounted schema module lab\n"
    assert run("modules", "add", "lab") == "plain: already mounted schema module lab\n"
    assert run("modules").splitlines()[1].split()[3:] == ["yes", "yes", "lab_0002", "(head",
                                                         "lab_0002)"]  # fmt: skip
    assert run("migrate") == f"plain: schema already at revision {HEAD_REVISION}\n"
    assert ["modules", "lab", "(lab_0002)"] in [line.split() for line in run("info").splitlines()]
    disconnect()
    if db_url is None:  # a second instance, mounting at init
        out = run("init", "--storage", str(tmp_path / "two"), "--modules", "lab")
        assert out.startswith("created instance two")
        assert mounted() == {"lab": "lakeline-lab"}


def test_core_comparison_leaves_module_tables_out(
    lab: Path, db_url: str | None, tmp_path: Path
) -> None:
    """A process that loaded a module's models compares a core-only database cleanly: the
    module's tables in the models are not differences."""
    from lakeline.db.migrate import include_object
    from lakeline.modules.spec import get, load_models

    load_models(get("lab"))
    instance = ll.init(tmp_path / "data", db=db_url, name="core")
    assert "lab_biosamples" in Base.metadata.tables
    with instance.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        assert list(compare_metadata(context, Base.metadata)) == []
