"""Curators with a schema module's label registry (the test distribution lakeline-lab,
tests/core/lab_module): a column of dtype `cat[lab.Biosample]` validates against that
registry, add_new_from creates its records, save_artifact links them (links, not values),
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import lakeline as ll
import modules_lab
import pandas as pd
import pytest
from lakeline.errors import CurationError
from lakeline.instance import Instance
from lakeline.models import FeatureValue
from rich.console import Console
from sqlalchemy import func, select, text

lab_site, lab, lab_instance = modules_lab.lab_site, modules_lab.lab, modules_lab.lab_instance
anndata = pytest.importorskip("anndata")


def _links(instance: Instance) -> list[tuple[str, str]]:
    """(artifact key, biosample name) of every feature link in the lab's link table."""
    stmt = text(
        "SELECT a.key, b.name FROM lab_biosamples_artifacts l JOIN artifacts a "
        "ON a.id = l.artifact_id JOIN lab_biosamples b ON b.id = l.record_id "
        "WHERE l.feature_id IS NOT NULL ORDER BY a.key, b.name"
    )
    with instance.engine.connect() as conn:
        return [(k, n) for k, n in conn.execute(stmt)]


def _value_rows(instance: Instance) -> int:
    with instance.sessions.read() as session:
        return int(session.scalar(select(func.count()).select_from(FeatureValue)) or 0)


def test_dataframe_column_of_a_module_label_registry(lab_instance: Instance) -> None:
    from lakeline_lab.models import Biosample

    ll.save([Biosample(name="S1", abbr="one"), Biosample(name="S2", abbr="two")])
    Biosample.get(name="S1").add_synonym("s-one")
    ll.save([ll.Feature(name="sample", dtype="cat[lab.Biosample]"),
             ll.Feature(name="donor", dtype="cat[lab.Biosample.abbr]"),
             ll.Feature(name="n_reads", dtype=int)])  # fmt: skip
    schema = ll.Schema(name="lab-obs", features=["sample", "donor", "n_reads"]).save()
    frame = pd.DataFrame(
        {"sample": ["S1", "s-one", "S3", "S2"], "donor": ["one", "two", "one", "two"],
         "n_reads": [1, 2, 3, 4]}
    )  # fmt: skip
    curator = ll.curators.DataFrameCurator(frame, schema)
    with pytest.raises(CurationError) as caught:
        curator.validate()
    (problem,) = caught.value.problems
    assert problem.where == "DataFrame column 'sample'"
    assert "not in lab.Biosample.name" in problem.detail and "'s-one' → 'S1'" in problem.detail
    assert curator.cat.non_validated == {"sample": ["s-one", "S3"]}
    console = Console(record=True, width=400)
    console.print(curator.problems_table())
    assert "(feature 'sample', cat[lab.Biosample])" in console.export_text()  # not markup

    assert curator.standardize("sample") == {"s-one": "S1"}
    assert curator.cat.add_new_from("sample") == ["S3"]
    s3 = Biosample.get(name="S3")
    assert s3.uid and s3.created_by_id == lab_instance.user.id  # saved as module records are
    assert curator.validate()
    artifact = curator.save_artifact(key="lab/obs")

    assert artifact.features.get_values() == {"donor": ["one", "two"],
                                              "sample": ["S1", "S2", "S3"]}  # fmt: skip
    assert _links(lab_instance) == [("lab/obs.parquet", n) for n in ("S1", "S1", "S2", "S2", "S3")]
    assert _value_rows(lab_instance) == 0  # label registries store links, not values
    assert [r.name for r in artifact.labels.get("sample")] == ["S1", "S2", "S3"]
    assert [a.uid for a in s3.artifacts] == [artifact.uid]
    assert [a.uid for a in ll.Artifact.filter(sample="S3")] == [artifact.uid]
    assert [a.uid for a in ll.Artifact.filter(donor="two")] == [artifact.uid]
    assert ll.Artifact.filter(sample="S9").count() == 0


def test_anndata_obs_column_of_a_module_label_registry(lab_instance: Instance) -> None:
    import numpy as np
    from lakeline_lab.models import Biosample

    ll.save([Biosample(name="S1"), Biosample(name="S2")])
    ll.save([ll.Feature(name="sample", dtype="cat[lab.Biosample]"),
             ll.Feature(name="samples", dtype="list[cat[lab.Biosample]]")])  # fmt: skip
    schema = ll.Schema(name="lab-adata", otype="AnnData", slots={"obs": ["sample"]}).save()
    obs = pd.DataFrame({"sample": pd.Categorical(["S1", "S2", "S4"])}, index=["c1", "c2", "c3"])
    adata = anndata.AnnData(np.zeros((3, 2), dtype=np.float32), obs=obs)
    curator = ll.curators.AnnDataCurator(adata, schema, features={"samples": ["S1", "S2"]})
    with pytest.raises(CurationError, match=r"1 not in lab.Biosample.name: 'S4'"):
        curator.validate()
    assert curator.cat.add_new_from("sample") == ["S4"]
    artifact = curator.save_artifact(key="lab/cells.h5ad")
    assert artifact.features.get_values() == {"sample": ["S1", "S2", "S4"],
                                              "samples": ["S1", "S2"]}  # fmt: skip
    assert [r.name for r in artifact.labels.get("samples")] == ["S1", "S2"]
    assert [a.uid for a in ll.Artifact.filter(samples="S2")] == [artifact.uid]
    bad = ll.curators.AnnDataCurator(adata, schema, features={"samples": ["S1", "S9"]})
    with pytest.raises(CurationError, match=r"'S9' is not a Biosample record"):
        bad.validate()


def test_one_grammar_for_registries_and_modules(lab: object) -> None:
    """A dotted first part naming an installed module is the module, else the registry."""
    from lakeline.annotations.dtypes import parse_dtype
    from lakeline.errors import InvalidDtype

    cases = {
        "cat[lab.Biosample]": ("lab.Biosample", None, True),
        "list[cat[lab.Biosample.abbr]]": ("lab.Biosample", "abbr", True),
        "cat[Feature.name]": ("Feature", "name", False),
        "cat[ULabel[Tissue]]": ("ULabel", None, True),
    }
    for given, (registry, field, is_label) in cases.items():
        dtype = parse_dtype(given)
        assert (dtype.registry, dtype.field, dtype.is_label, dtype.text) == (
            registry, field, is_label, given,
        )  # fmt: skip
    assert parse_dtype("cat[Feature]").column == "value_str"
    assert parse_dtype("cat[lab.Biosample]").column is None
    with pytest.raises(InvalidDtype, match=r"no installed schema module is named 'nope'"):
        parse_dtype("cat[nope.Biosample.abbr]")
    for given, problem in [
        ("cat[lab.Biosample.nope]", r"Biosample has no field 'nope'"),
        ("cat[Feature.nope]", r"Feature has no field 'nope'"),
        ("cat[nope.name]", r"unknown registry 'nope'.*no installed schema module is named"),
    ]:
        with pytest.raises(InvalidDtype, match=problem):
            ll.Feature(name="f", dtype=given)


def test_a_capitalized_dotted_dtype_does_not_collect_modules(lab: object) -> None:
    """cat[Feature.name] is a registry's field without calling the modules hook: a broken
    module (here two registering one name) breaks only dtypes that may name a module."""
    from dataclasses import replace

    from lakeline import plugins
    from lakeline.annotations.dtypes import parse_dtype
    from lakeline.errors import ModuleConflict
    from lakeline.hookspecs import hookimpl
    from lakeline.modules import spec
    from lakeline_lab.plugin import LAB

    class Twin:
        @hookimpl
        def register_modules(self, register: Any) -> None:
            register(replace(LAB, distribution="lakeline-lab-twin"))

    plugins.get_plugin_manager().register(Twin())
    spec.reset()
    assert parse_dtype("cat[Feature.name]").field == "name"
    ll.Feature(name="f", dtype="list[cat[Feature.name]]")
    with pytest.raises(ModuleConflict, match=r"two schema modules are named 'lab'"):
        parse_dtype("cat[lab.Biosample]")


def test_bare_registry_names_skip_module_registries() -> None:
    """A bare cat[Gene.symbol] names a registry outside any schema module, even once
    lakeline-bio's models (bio.Gene, bio.CellType) are imported in the process; a module's
    registry is spelled module.Registry (a bare name of one says so)."""
    pytest.importorskip("lakeline_bio.models", reason="lakeline-bio is a workspace member")
    from lakeline.annotations.dtypes import parse_dtype, registry_model
    from lakeline.errors import InvalidDtype
    from validation_registries import Gene

    assert registry_model(parse_dtype("cat[Gene.symbol]")) is Gene
    ll.Feature(name="gene", dtype="cat[Gene.symbol]")
    with pytest.raises(
        InvalidDtype, match=r"belongs to schema module 'bio': spell it cat\[bio.CellMarker\]"
    ):
        ll.Feature(name="marker", dtype="cat[CellMarker]")
