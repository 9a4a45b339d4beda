"""ULabel and Feature through CanValidate: validate, inspect, standardize, from_values,
synonyms, and the similar-name warning of their save path (SQLite and PostgreSQL)."""

from __future__ import annotations

import warnings

import lakeline as ll
import pytest
from lakeline.errors import SimilarNameWarning, SynonymError
from lakeline.instance import Instance
from validation_registries import QueryCounter


@pytest.fixture
def labels(instance: Instance) -> ll.ULabel:
    cell_type = ll.ULabel(name="CellType", is_type=True).save()
    ll.save(
        [
            ll.ULabel(name="T cell", type=cell_type, synonyms=["T lymphocyte", "T-cell"]),
            ll.ULabel(name="B cell", type=cell_type, synonyms="B lymphocyte"),
            ll.ULabel(name="Natural killer cell", type=cell_type, abbr="NK"),
            ll.ULabel(name="Dendritic cell", type=cell_type),
        ]
    )
    return cell_type


def test_labels_validate_standardize_and_inspect(labels: ll.ULabel) -> None:
    values = ["T cell", "T lymphocyte", "b cell", "NK", "Monocyte", "T cell"]
    assert ll.ULabel.validate(values, mute=True).tolist() == [
        True, False, False, False, False, True,
    ]  # fmt: skip
    assert ll.ULabel.standardize(values) == [
        "T cell", "T cell", "b cell", "Natural killer cell", "Monocyte", "T cell",
    ]  # fmt: skip
    assert ll.ULabel.standardize(values, case_sensitive=False)[2] == "B cell"
    result = ll.ULabel.inspect(values, mute=True)
    assert result.validated == ["T cell"]
    assert result.synonyms_mapper == {
        "T lymphocyte": "T cell",
        "b cell": "B cell",
        "NK": "Natural killer cell",
    }
    assert result.not_found == ["Monocyte"]
    records = ll.ULabel.from_values(["T-cell", "B cell", "Monocyte"])
    assert [r.name for r in records] == ["T cell", "B cell"]
    assert all(isinstance(r, ll.ULabel) and r.type_id == labels.id for r in records)


def test_label_synonyms_are_saved_and_unique(labels: ll.ULabel) -> None:
    (dendritic,) = ll.ULabel.from_values(["Dendritic cell"])
    dendritic.add_synonym(["DC", "Dendritic"])
    dendritic.set_abbr("DCs")
    again = ll.ULabel.get(dendritic.uid)
    assert (again.synonyms, again.abbr) == ("DC|Dendritic|DCs", "DCs")
    assert ll.ULabel.standardize(["Dendritic", "DCs"]) == ["Dendritic cell"] * 2
    with pytest.raises(SynonymError, match=r"'T-cell' is already a synonym of ULabel 'T cell'"):
        dendritic.add_synonym("T-cell")
    with pytest.raises(SynonymError, match=r"'B cell' is the name of ULabel 'B cell' \(uid"):
        dendritic.add_synonym("B cell")


def test_features_validate_and_standardize_column_names(instance: Instance) -> None:
    ll.save(
        [
            ll.Feature(name="temperature", dtype=float, unit="°C", synonyms=["temp", "T"]),
            ll.Feature(name="cell_type", dtype="cat"),
        ]
    )
    columns = ["temp", "cell_type", "donor"]
    assert ll.Feature.validate(columns, mute=True).tolist() == [False, True, False]
    assert ll.Feature.standardize(columns) == ["temperature", "cell_type", "donor"]
    assert [f.name for f in ll.Feature.from_values(columns)] == ["temperature", "cell_type"]


def test_saving_a_label_close_to_an_existing_one_warns_naming_it(labels: ll.ULabel) -> None:
    (t_cell,) = ll.ULabel.from_values(["T cell"])
    with pytest.warns(SimilarNameWarning) as caught:
        saved = ll.ULabel(name="T Cell", type=labels).save()
    assert saved.name == "T Cell" and saved.id != t_cell.id  # a warning, not a refusal
    (warning,) = caught
    assert f"'T Cell' is close to ULabel 'T cell' (uid {t_cell.uid})" in str(warning.message)
    assert warning.filename == __file__
    with pytest.warns(SimilarNameWarning, match="'Dendritc cell' is close to ULabel 'Dendritic"):
        ll.save([ll.ULabel(name="Dendritc cell", type=labels), ll.ULabel(name="Neuron")])
    ll.Feature(name="temperature", dtype=float).save()
    with pytest.warns(SimilarNameWarning, match="'Temperature' is close to Feature 'temperature'"):
        ll.Feature(name="Temperature", dtype=float).save()


def test_exact_duplicates_and_distinct_names_save_without_a_warning(labels: ll.ULabel) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ll.ULabel(name="T cell", type=labels).save()
        ll.save([ll.ULabel(name="Monocyte", type=labels), ll.ULabel(name="Neuron")])
    assert again.name == "T cell"


def test_bulk_label_creation_checks_similar_names_in_one_query(
    instance: Instance, labels: ll.ULabel
) -> None:
    names = [f"clone {i:04d}" for i in range(2000)]
    with QueryCounter(instance.engine) as counter:
        ll.save([ll.ULabel(name=n, type=labels) for n in names])
    reads = [  # every name of the registry: ordered rows (SQLite: one group_concat string)
        s
        for s in counter.selects
        if "FROM ulabels" in s and ("ORDER BY" in s or "group_concat" in s)
    ]
    assert len(reads) == 1, counter.selects  # the registry's names, read once for the batch
    assert ll.ULabel.validate(names, mute=True).all()


def test_an_older_copy_of_a_label_keeps_newer_edits(instance: Instance) -> None:
    """Two copies of one label, each edited and saved: each writes its own edit only (before,
    neither was written: the merged edits were expunged before any flush; and a merge would
    write back every column the second had loaded)."""
    made = ll.ULabel(name="B cell", description="old").save()
    first, second = ll.ULabel.get(made.uid), ll.ULabel.get(made.uid)
    first.description = "newer"
    first.save()
    second.abbr = "B"
    second.save()
    again = ll.ULabel.get(made.uid)
    assert (again.description, again.abbr) == ("newer", "B")
