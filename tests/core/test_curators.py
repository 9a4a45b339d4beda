"""DataFrameCurator: every problem at once, coercion, standardize / add_new_from, any registry
with the validation mixin, and save_artifact as ONE transaction (nothing left on failure)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lakeline as ll
import mesh
import pandas as pd
import pytest
from faults import InjectedFailure, fail_at
from lakeline.errors import AnnotationError, CurationError
from lakeline.instance import Instance
from lakeline.models import ArtifactSchema, ArtifactULabel, FeatureValue
from sqlalchemy import event, func, select, update
from test_atomicity import stored_objects
from validation_registries import CellType, Gene, create_registries, fill

NAMES = ["T cell", "B cell", "NK cell", "Monocyte"]
two_instances = mesh.two_instances


@pytest.fixture
def schema(instance: Instance) -> ll.Schema:
    kind = ll.ULabel(name="CellTypeHandLabel", is_type=True).save()
    labels = [ll.ULabel(name=n, type=kind) for n in NAMES]
    ll.save(labels)
    labels[0].add_synonym("T-cell")
    features = [
        ll.Feature(name="cell_type", dtype="cat[ULabel[CellTypeHandLabel]]"),
        ll.Feature(name="temperature", dtype=float, unit="°C"),
        ll.Feature(name="n_reads", dtype=int),
        ll.Feature(name="donor", dtype=str),
    ]
    ll.save(features)
    return ll.Schema(
        name="sc-obs",
        features=["cell_type", "temperature", "n_reads"],
        optional=["donor"],
        otype="DataFrame",
        maximal_set=True,
    ).save()


def _frame(**changes: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "cell_type": pd.Categorical(["T cell", "B cell", "NK cell", "T cell"]),
            "temperature": [37.0, 36.5, 37.2, 38.0],
            "n_reads": [100, 200, 300, 400],
            "donor": ["D1", "D1", "D2", "D2"],
        }
    )
    for name, value in changes.items():
        if value is None:
            del frame[name]
        else:
            frame[name] = value
    return frame


def _count(instance: Instance, model: type) -> int:
    with instance.sessions.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_valid_frame_is_saved_with_schema_and_labels(schema: ll.Schema, instance: Instance) -> None:
    curator = ll.curators.DataFrameCurator(_frame(), schema, features={"temperature": 37.0})
    assert curator.validate() is True
    artifact = curator.save_artifact(key="sc/obs", description="obs")
    assert artifact.key == "sc/obs.parquet" and artifact.otype == "DataFrame"
    assert artifact.features.get_values() == {
        "cell_type": ["B cell", "NK cell", "T cell"],
        "temperature": 37.0,
    }
    assert ll.Artifact.filter(cell_type="NK cell").first().uid == artifact.uid
    assert ll.Artifact.filter(schemas__name="sc-obs").first().uid == artifact.uid
    loaded = artifact.load()
    assert list(loaded.columns) == ["cell_type", "temperature", "n_reads", "donor"]


def test_every_problem_is_reported_at_once(schema: ll.Schema) -> None:
    frame = _frame(
        n_reads=None,  # required, missing
        temperature=["37", "hot", None, "36"],  # strings: do not fit float (no coercion)
        cell_type=["T-cell", "B cel", "Macrophage", None],  # synonym, typo, unknown
        n_read=[1, 2, 3, 4],  # not in the schema (maximal_set), close to n_reads
    )
    curator = ll.curators.DataFrameCurator(frame, schema)
    with pytest.raises(CurationError) as caught:
        curator.validate()
    problems = {p.where: p for p in caught.value.problems}
    assert set(problems) == {
        "DataFrame column 'n_reads'",
        "DataFrame columns",
        "DataFrame column 'temperature'",
        "DataFrame column 'cell_type'",
    }
    assert "column 'n_read' looks like it" in problems["DataFrame column 'n_reads'"].detail
    assert problems["DataFrame columns"].values == ["n_read"]
    temperature = problems["DataFrame column 'temperature'"]
    assert "feature 'temperature' (float)" in temperature.what
    assert "coerce_dtype=True" in temperature.fix
    cell = problems["DataFrame column 'cell_type'"]
    assert "'T-cell' → 'T cell'" in cell.detail
    assert "'B cel' (close: 'B cell')" in cell.detail and "'Macrophage'" in cell.detail
    assert "curator.standardize('cell_type')" in cell.fix
    assert "add_new_from('cell_type')" in cell.fix
    message = str(caught.value)
    assert message.startswith("DataFrame does not fit schema 'sc-obs': 4 problems")
    assert curator.cat.non_validated == {"cell_type": ["T-cell", "B cel", "Macrophage"]}
    with pytest.raises(CurationError, match="4 problems"):
        curator.save_artifact(key="bad.parquet")
    assert ll.Artifact.filter().count() == 0


def test_coercion_casts_and_names_values_that_cannot_be_cast(instance: Instance) -> None:
    ll.save([ll.Feature(name="dose", dtype=float), ll.Feature(name="count", dtype=int),
             ll.Feature(name="ok", dtype=bool), ll.Feature(name="day", dtype="date")])  # fmt: skip
    schema = ll.Schema(name="coerced", features=["dose", "count", "ok", "day"],
                       coerce_dtype=True).save()  # fmt: skip
    frame = pd.DataFrame(
        {"dose": ["1.5", "2"], "count": ["3", "4"], "ok": ["yes", "False"],
         "day": ["2026-01-02", "2026-02-03"]}
    )  # fmt: skip
    curator = ll.curators.DataFrameCurator(frame, schema)
    assert curator.validate()
    assert frame["dose"].tolist() == [1.5, 2.0] and str(frame["count"].dtype) == "Int64"
    assert frame["ok"].tolist() == [True, False]
    assert str(frame["day"].dtype).startswith("datetime64")
    bad = pd.DataFrame({"dose": ["1.5", "abc"], "count": ["3", "4.5"], "ok": ["yes", "maybe"],
                        "day": ["2026-01-02", "soon"]})  # fmt: skip
    with pytest.raises(CurationError) as caught:
        ll.curators.DataFrameCurator(bad, schema).validate()
    details = {p.where: p.detail for p in caught.value.problems}
    assert details == {
        "DataFrame column 'dose'": "not float numbers: 'abc'",
        "DataFrame column 'count'": "not whole numbers: '4.5'",
        "DataFrame column 'ok'": "not true/false: 'maybe'",
        "DataFrame column 'day'": "not dates: 'soon'",
    }


def test_standardize_and_add_new_from_make_it_valid(schema: ll.Schema) -> None:
    frame = _frame(cell_type=pd.Categorical(["T-cell", "t cell", "Macrophage", "B cell"]))
    curator = ll.curators.DataFrameCurator(frame, schema)
    with pytest.raises(CurationError, match="values not in the registry"):
        curator.validate()
    assert curator.standardize("cell_type") == {"T-cell": "T cell", "t cell": "T cell"}
    assert frame["cell_type"].tolist() == ["T cell", "T cell", "Macrophage", "B cell"]
    assert isinstance(frame["cell_type"].dtype, pd.CategoricalDtype)
    assert curator.cat.add_new_from("cell_type") == ["Macrophage"]
    macrophage = ll.ULabel.get(name="Macrophage")
    assert macrophage.type is not None and macrophage.type.name == "CellTypeHandLabel"
    assert curator.validate()
    with pytest.raises(CurationError, match="no categorical column 'donor'"):
        curator.standardize("donor")


def test_any_registry_with_the_validation_mixin(instance: Instance) -> None:
    """cat[Feature], a module's registry (cat[CellType]) and an index against cat[Gene.symbol]
    go through the same generic lookup."""
    create_registries(instance.engine)
    fill(instance.engine, CellType, [{"name": "T cell", "synonyms": "T-cell"}, {"name": "B cell"}])
    fill(instance.engine, Gene, [{"symbol": "CD3E"}, {"symbol": "MS4A1", "synonyms": "CD20"}])
    ll.save([ll.Feature(name="measured", dtype="cat[Feature]"),
             ll.Feature(name="cell", dtype="cat[CellType]"),
             ll.Feature(name="gene", dtype="cat[Gene.symbol]")])  # fmt: skip
    schema = ll.Schema(name="generic", features=["measured", "cell"], index="gene").save()
    frame = pd.DataFrame(
        {"measured": ["cell", "gene", "nope"], "cell": ["T-cell", "B cell", "T cell"]},
        index=pd.Index(["CD3E", "CD20", "CD3E"], name="gene"),
    )
    curator = ll.curators.DataFrameCurator(frame, schema)
    with pytest.raises(CurationError) as caught:
        curator.validate()
    what = {p.where: p for p in caught.value.problems}
    assert "1 not in Feature.name: 'nope'" in what["DataFrame column 'measured'"].detail
    assert "'T-cell' → 'T cell'" in what["DataFrame column 'cell'"].detail
    assert "Gene.symbol" in what["DataFrame index"].detail or "CD20" in str(caught.value)
    assert any(p.what == "duplicate names" for p in caught.value.problems)
    with pytest.raises(CurationError, match="a feature needs a dtype"):
        curator.cat.add_new_from("measured")
    curator.standardize("cell")
    curator.standardize("index")
    assert list(frame.index) == ["CD3E", "MS4A1", "CD3E"]
    frame.index = pd.Index(["CD3E", "MS4A1", "CD3E2"], name="gene")
    frame["measured"] = ["cell", "gene", "measured"]
    with pytest.raises(CurationError, match=r"'CD3E2' \(close: 'CD3E'\)"):
        curator.validate()
    assert curator.cat.add_new_from("index") == ["CD3E2"]
    assert curator.validate()
    artifact = curator.save_artifact(key="generic.parquet")
    assert artifact.features.get_values() == {"cell": ["T cell", "B cell"],
                                              "measured": ["cell", "gene", "measured"]}  # fmt: skip
    assert ll.Artifact.filter(cell="B cell").count() == 1


def test_failure_after_the_inserts_leaves_nothing(schema: ll.Schema, instance: Instance) -> None:
    before = stored_objects(instance)
    statements: list[str] = []
    written: set[str] = set()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def inserted() -> None:  # at the checkpoint: the tables INSERTed into so far
        written.update(
            t for t in ("artifacts", "feature_values", "artifact_ulabels", "artifact_schemas")
            for s in statements if s.lstrip().upper().startswith(f"INSERT INTO {t.upper()} ")
            or s.lstrip().startswith(f"INSERT INTO {t} ")
        )  # fmt: skip

    curator = ll.curators.DataFrameCurator(_frame(), schema, features={"temperature": 37.0})
    event.listen(instance.engine, "before_cursor_execute", seen)
    try:
        with fail_at("curator.annotated", inserted) as raised, pytest.raises(InjectedFailure):
            curator.save_artifact(key="sc/obs.parquet")
    finally:
        event.remove(instance.engine, "before_cursor_execute", seen)
    assert raised == [1]
    assert written == {"artifacts", "feature_values", "artifact_ulabels", "artifact_schemas"}
    assert ll.Artifact.filter().count() == 0
    for model in (FeatureValue, ArtifactULabel, ArtifactSchema):
        assert _count(instance, model) == 0
    assert stored_objects(instance) == before
    staging = Path(os.environ["LAKELINE_CACHE_DIR"]) / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    artifact = curator.save_artifact(key="sc/obs.parquet")  # and then it works
    assert _count(instance, ArtifactULabel) == 3 and artifact.features.get_values()


def test_inside_a_tracked_run_the_artifact_and_annotations_record_it(
    schema: ll.Schema, instance: Instance
) -> None:
    @ll.tracked(key="curate")
    def curate() -> ll.Artifact:
        return ll.curators.DataFrameCurator(_frame(), schema).save_artifact(key="obs.parquet")

    artifact = curate()
    run = ll.Run.get(transform__key="curate")
    assert artifact.run_id == run.id
    with instance.sessions.read() as session:
        assert set(session.scalars(select(ArtifactULabel.run_id))) == {run.id}
        assert set(session.scalars(select(ArtifactSchema.run_id))) == {run.id}


def test_a_label_of_another_type_is_named(schema: ll.Schema) -> None:
    tissue = ll.ULabel(name="Tissue", is_type=True).save()
    ll.ULabel(name="liver", type=tissue).save()
    frame = _frame(cell_type=["T cell", "liver", "B cell", "B cell"])
    with pytest.raises(CurationError, match=r"'liver' \(a label of type 'Tissue'\)"):
        ll.curators.DataFrameCurator(frame, schema).validate()


def test_bad_input_is_named(schema: ll.Schema, instance: Instance) -> None:
    with pytest.raises(AnnotationError, match=r"names feature 'nope', which does not exist: "
                       r"create it with ll.Feature\(name='nope'"):  # fmt: skip
        ll.Schema(name="broken", features=["cell_type", "nope"]).save()
    with pytest.raises(CurationError, match="save schema 'unsaved' before curating"):
        ll.curators.DataFrameCurator(_frame(), ll.Schema(name="unsaved", features=["donor"]))
    with pytest.raises(CurationError, match="describes a DataFrame, not a AnnData"):
        ll.curators.AnnDataCurator(_frame(), schema)
    curator = ll.curators.DataFrameCurator(_frame(), schema, features={"temperature": "warm",
                                                                       "nope": 1})  # fmt: skip
    with pytest.raises(CurationError) as caught:
        curator.validate()
    lines = [p.line() for p in caught.value.problems]
    assert any("'warm'" in line and "'temperature'" in line and "pass a number" in line
               for line in lines)  # fmt: skip
    assert any("no feature is named 'nope'" in line for line in lines)
    # a feature whose registry comes from a module that is not imported here
    with instance.sessions.write() as session:
        session.execute(
            update(ll.Feature).where(ll.Feature.name == "donor").values(dtype="cat[Unloaded]")
        )
    with pytest.raises(CurationError) as caught:
        ll.curators.DataFrameCurator(_frame(), schema).validate()
    (problem,) = caught.value.problems
    assert problem.where == "DataFrame column 'donor'" and problem.what == "registry not available"
    assert "unknown registry 'Unloaded'" in problem.detail


def test_cli_validate(schema: ll.Schema, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from lakeline.cli import cli

    def invoke(*args: str) -> Any:
        return CliRunner(env={"COLUMNS": "400"}).invoke(cli, ["validate", *args])

    good, bad = tmp_path / "good.csv", tmp_path / "bad.parquet"
    _frame().to_csv(good, index=False)
    cells = ["T-cell", "B cel", "NK cell", "NK cell"]
    _frame(temperature=["warm", "37", "36", "35"], cell_type=cells).to_parquet(bad)
    result = invoke(str(good), "--schema", "sc-obs")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "good.csv fits schema 'sc-obs'"
    result = invoke(str(bad), "--schema", "sc-obs")
    assert result.exit_code == 1
    assert "'B cel' (close: 'B cell')" in result.stdout and "'T-cell' → 'T cell'" in result.stdout
    assert "'warm'" in result.stdout and "coerce_dtype=True" in result.stdout
    assert result.stderr.strip() == (
        "error: bad.parquet does not fit schema 'sc-obs': 2 problems (table above)"
    )
    result = invoke(str(good), "--schema", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no schema named 'nope' (schemas: 'sc-obs')"
    result = invoke(str(tmp_path / "x.txt"), "--schema", "sc-obs")
    assert result.exit_code == 1 and "lakeline validate reads" in result.stderr
    assert ll.Artifact.filter().count() == 0


def test_list_categoricals_and_module_registry_values(instance: Instance) -> None:
    """list[cat[...]] columns are checked element by element; a module registry's records
    are feature values (checked on add_values too)."""
    create_registries(instance.engine)
    fill(instance.engine, CellType, [{"name": "T cell"}, {"name": "B cell"}])
    _labels_of = ll.ULabel(name="Tissue", is_type=True).save()
    ll.save([ll.ULabel(name=n, type=_labels_of) for n in ("lung", "liver")])
    ll.save([ll.Feature(name="tissues", dtype="list[cat[ULabel[Tissue]]]"),
             ll.Feature(name="cell", dtype="cat[CellType]")])  # fmt: skip
    schema = ll.Schema(name="lists", features=["tissues"]).save()
    frame = pd.DataFrame({"tissues": [["lung", "liver"], ["lung", "kidney"], None]})
    with pytest.raises(CurationError, match=r"1 not in ULabel\[Tissue\].name: 'kidney'"):
        ll.curators.DataFrameCurator(frame, schema).validate()
    frame.loc[1, "tissues"] = ["liver"]
    artifact = ll.curators.DataFrameCurator(frame, schema).save_artifact(key="lists.parquet")
    assert artifact.features.get_values() == {"tissues": ["liver", "lung"]}
    with pytest.raises(AnnotationError, match=r"'NK cell' not in CellType.name, as feature "
                       r"'cell' \(cat\[CellType\]\) requires"):  # fmt: skip
        artifact.features.add_values({"cell": ["T cell", "NK cell"]})
    artifact.features.add_values({"cell": "T cell"})
    assert artifact.features.get_values()["cell"] == "T cell"
    assert ll.Artifact.filter(cell__startswith="T").count() == 1


def test_set_rules(schema: ll.Schema) -> None:
    """ordered_set: members in the schema's order; minimal_set=False: none required;
    maximal_set=False: other columns are fine."""
    ordered = ll.Schema(name="ordered", features=["cell_type", "temperature", "n_reads"],
                        ordered_set=True).save()  # fmt: skip
    frame = _frame()[["temperature", "cell_type", "n_reads", "donor"]]
    with pytest.raises(CurationError, match="columns out of order") as caught:
        ll.curators.DataFrameCurator(frame, ordered).validate()
    assert "reorder: frame[['cell_type', 'temperature', 'n_reads']]" in caught.value.problems[0].fix
    assert ll.curators.DataFrameCurator(_frame(), ordered).validate()
    loose = ll.Schema(name="loose", features=["cell_type", "n_reads"], minimal_set=False).save()
    assert ll.curators.DataFrameCurator(_frame(n_reads=None, extra=1), loose).validate()
    strict = ll.Schema(name="strict", features=["cell_type", "n_reads"]).save()
    with pytest.raises(CurationError, match="missing column"):
        ll.curators.DataFrameCurator(_frame(n_reads=None, extra=1), strict).validate()


def test_a_curator_works_in_the_instance_of_its_schema(
    two_instances: tuple[Instance, Instance],
) -> None:
    """The schema of another (writable) instance than the current one: validation reads
    and save_artifact writes there."""
    from lakeline.annotations.records import save_records

    _lab, atlas = two_instances
    kind = ll.ULabel(name="CellTypeHandLabel", is_type=True)
    feature = ll.Feature(name="cell_type", dtype="cat[ULabel[CellTypeHandLabel]]")
    saved = save_records(
        [kind, *(ll.ULabel(name=n, type=kind) for n in NAMES), feature,
         ll.Schema(name="atlas-obs", features=["cell_type"])],
        atlas,
    )  # fmt: skip
    schema = saved[-1]
    assert isinstance(schema, ll.Schema)
    frame = pd.DataFrame({"cell_type": ["T cell", "NK cell"]})
    artifact = ll.curators.DataFrameCurator(frame, schema).save_artifact(key="atlas/obs.parquet")
    assert artifact.instance.uid == atlas.uid
    assert artifact.features.get_values() == {"cell_type": ["NK cell", "T cell"]}
    assert ll.Artifact.filter().count() == 0  # lab, the current instance, got nothing
