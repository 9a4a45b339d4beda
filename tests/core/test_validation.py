"""validate / inspect / standardize / from_values and synonyms through the CanValidate mixin,
on test-only registries in a real SQLite and PostgreSQL database."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lakeline.errors import InvalidValue, QueryError, SynonymError
from validation_registries import (
    CellType,
    Gene,
    Plain,
    QueryCounter,
    count,
    create_registries,
    fill,
)

CELLS = [
    {"name": "T cell", "synonyms": "T lymphocyte|T-cell", "abbr": None},
    {"name": "B cell", "synonyms": "B lymphocyte", "abbr": None},
    {"name": "Astrocyte", "synonyms": None, "abbr": None},
    {"name": "Natural killer cell", "synonyms": "NK cell|NK", "abbr": "NK"},
    {"name": "Microglial cell", "synonyms": None, "abbr": None},
]


@pytest.fixture
def cells(instance: Any) -> Any:
    create_registries(instance.engine)
    fill(instance.engine, CellType, CELLS)
    return instance


def test_validate_gives_one_bool_per_value(cells: Any) -> None:
    values = ["T cell", "t cell", "T lymphocyte", None, "Astrocyte", "T cell", float("nan"), ""]
    result = CellType.validate(values, mute=True)
    assert isinstance(result, np.ndarray) and result.dtype == bool
    assert result.tolist() == [True, False, False, False, True, True, False, False]


def test_validate_accepts_series_categoricals_and_a_single_string(cells: Any) -> None:
    series = pd.Series(["B cell", "Astrocyte", "nope", "B cell"], dtype="category")
    assert CellType.validate(series, mute=True).tolist() == [True, True, False, True]
    assert CellType.validate(pd.Index(["B cell", "x"]), mute=True).tolist() == [True, False]
    assert CellType.validate(np.array(["Astrocyte"]), mute=True).tolist() == [True]
    assert CellType.validate("Astrocyte", mute=True).tolist() == [True]
    assert CellType.validate([], mute=True).tolist() == []


def test_validate_issues_one_query_for_many_values(cells: Any) -> None:
    values = [f"label {i}" for i in range(5000)] + ["T cell"] * 1000
    with QueryCounter(cells.engine) as counter:
        result = CellType.validate(values, mute=True)
    assert int(result.sum()) == 1000
    assert len(counter.selects) == 1, counter.selects


def test_validate_more_distinct_values_than_the_hash_join_threshold(cells: Any) -> None:
    values = [f"label {i}" for i in range(12_000)] + ["Astrocyte", "T cell"]
    with QueryCounter(cells.engine) as counter:
        result = CellType.validate(values, mute=True)
    assert np.flatnonzero(result).tolist() == [12_000, 12_001]
    assert len(counter.selects) == 1


def test_validate_logs_the_values_that_fail_unless_muted(
    cells: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="lakeline.validation"):
        CellType.validate(["T cell", "Tcell", "Tcell", "Neuron"])
    assert "2 of 4 values not validated" in caplog.text or "3 of 4" in caplog.text
    assert "'Tcell'" in caplog.text and "'Neuron'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lakeline.validation"):
        CellType.validate(["Tcell"], mute=True)
        CellType.validate(["T cell"])
    assert caplog.text == ""


def test_values_a_database_cannot_compare_do_not_validate(cells: Any) -> None:
    """A NUL byte (PostgreSQL text cannot hold one) and a value longer than the column (a
    cast to varchar(255) would truncate it into a match) are simply not names."""
    fill(cells.engine, CellType, [{"name": "A" * 255}])
    values = ["T\x00cell", "A" * 255 + "B", "A" * 255]
    assert CellType.validate(values, mute=True).tolist() == [False, False, True]
    many = [f"v{i}" for i in range(1000)] + values  # the long-list path (one parameter)
    assert CellType.validate(many, mute=True)[-3:].tolist() == [False, False, True]


def test_bad_values_and_fields_are_clear_errors(cells: Any) -> None:
    with pytest.raises(InvalidValue, match=r"CellType.name holds text, but 3 is a int"):
        CellType.validate(["T cell", 3])
    with pytest.raises(QueryError, match="CellType has no field 'label'; text fields: uid, name"):
        CellType.validate(["T cell"], field="label")
    with pytest.raises(QueryError, match=r"CellType.n_cells is not a text field"):
        CellType.validate(["3"], field="n_cells")
    with pytest.raises(InvalidValue, match="expected a list of values, got int"):
        CellType.validate(5)


def test_another_field_and_a_mapped_attribute_as_field(cells: Any) -> None:
    fill(cells.engine, CellType, [{"name": "Neuron", "abbr": "N1"}])
    assert CellType.validate(["N1", "Neuron"], field="abbr", mute=True).tolist() == [True, False]
    assert CellType.validate(["Neuron"], field=CellType.name, mute=True).tolist() == [True]


def test_a_registry_with_another_name_field(instance: Any) -> None:
    create_registries(instance.engine)
    fill(instance.engine, Gene, [{"symbol": "PRXL2B", "synonyms": "FAM213B"}, {"symbol": "TP53"}])
    assert Gene.validate(["TP53", "FAM213B"], mute=True).tolist() == [True, False]
    assert Gene.standardize(["FAM213B", "TP53", "XYZ"]) == ["PRXL2B", "TP53", "XYZ"]
    assert [g.symbol for g in Gene.from_values(["FAM213B", "TP53"])] == ["PRXL2B", "TP53"]


def test_a_registry_without_synonyms(instance: Any) -> None:
    create_registries(instance.engine)
    fill(instance.engine, Plain, [{"name": "alpha"}, {"name": "beta"}])
    assert Plain.standardize(["Alpha", "beta"], case_sensitive=False) == ["alpha", "beta"]
    assert Plain.standardize(["Alpha", "beta"]) == ["Alpha", "beta"]
    record = Plain.from_values(["alpha"])[0]
    with pytest.raises(SynonymError, match="Plain has no synonyms field"):
        record.add_synonym("a")
    with pytest.raises(SynonymError, match="Plain has no abbr field"):
        record.set_abbr("a")


# -- inspect ------------------------------------------------------------------------------------


def test_inspect_sorts_values_into_validated_synonyms_and_close_matches(
    cells: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    values = ["T cell", "T lymphocyte", "nk cell", "Astrocyt", "Banana", "T cell", None, "NK"]
    result = CellType.inspect(values)
    assert result.validated == ["T cell"]
    assert result.non_validated == ["T lymphocyte", "nk cell", "Astrocyt", "Banana", "NK"]
    assert result.synonyms_mapper == {
        "T lymphocyte": "T cell",
        "nk cell": "Natural killer cell",
        "NK": "Natural killer cell",
    }
    assert result.case_only == {"nk cell"}
    assert result.not_found == ["Astrocyt", "Banana"]
    assert result.suggestions == {"Astrocyt": ["Astrocyte"]}
    assert result.frac_validated == pytest.approx(1 / 6)
    report = capsys.readouterr().err
    assert "CellType.name: 1 of 6 distinct values validated (16.7%)" in report
    assert "3 are synonyms or differ in case only" in report
    assert "'T lymphocyte' → 'T cell'" in report
    assert "case_sensitive=False" in report
    assert "2 are not in the registry: 'Astrocyt' (close: 'Astrocyte'), 'Banana'" in report


def test_inspect_of_valid_values_reads_no_synonyms_and_prints_one_line(
    cells: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with QueryCounter(cells.engine) as counter:
        result = CellType.inspect(["T cell", "B cell"] * 3000)
    assert len(counter.selects) == 1
    assert result.non_validated == [] and result.suggestions == {}
    report = capsys.readouterr().err
    assert report.strip() == "CellType.name: 2 of 2 distinct values validated (100.0%)"


def test_inspect_with_many_values_not_found_stays_batched(cells: Any) -> None:
    values = [f"unknown label {i}" for i in range(3000)] + ["Astrocytes", "B-cell"]
    with QueryCounter(cells.engine) as counter:
        result = CellType.inspect(values, mute=True)
        suggestions = result.suggestions
    # the registry's size (one index probe), then its names and synonyms, read once (SQLite:
    # the names as one concatenated string, then the records with synonyms)
    assert len(counter.selects) <= 3, counter.selects
    assert suggestions["Astrocytes"] == ["Astrocyte"]
    assert suggestions["B-cell"][0] == "B cell"  # identical once punctuation goes
    assert len(result.not_found) == 3002


def test_inspect_reads_the_registry_or_looks_values_up_with_one_answer(
    cells: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many values against a small registry: every name is read once instead of looking the
    values up; a large registry: the lookup. Both give the same result."""
    from lakeline.validation import lookup

    fill(cells.engine, CellType, [{"name": f"Cell {i}", "synonyms": f"c{i}"} for i in range(900)])
    values = [f"Cell {i}" for i in range(0, 1200, 2)] + ["c3", "cell 5", "T-cell", "Astrocyt"]
    with QueryCounter(cells.engine) as counter:
        small = CellType.inspect(values, mute=True)
    assert not any("EXISTS" in sql for sql in counter.selects)  # no lookup of the values
    monkeypatch.setattr(lookup, "SNAPSHOT_FIRST", 0)  # as if the registry were huge
    with QueryCounter(cells.engine) as counter:
        large = CellType.inspect(values, mute=True)
    assert any("EXISTS" in sql for sql in counter.selects)  # the values looked up
    for result in (small, large):
        assert len(result.validated) == 450
        assert result.synonyms_mapper == {"c3": "Cell 3", "cell 5": "Cell 5", "T-cell": "T cell"}
        assert result.not_found[-1] == "Astrocyt" and len(result.not_found) == 151
    assert small.validated == large.validated and small.case_only == large.case_only


# -- standardize -------------------------------------------------------------------------------


def test_standardize_maps_synonyms_and_keeps_the_rest(cells: Any) -> None:
    values = ["T lymphocyte", "T cell", "NK", "nk cell", "Unknown", None, "B lymphocyte"]
    assert CellType.standardize(values) == [
        "T cell", "T cell", "Natural killer cell", "nk cell", "Unknown", None, "B cell",
    ]  # fmt: skip
    assert CellType.standardize(values, case_sensitive=False)[3] == "Natural killer cell"
    assert CellType.standardize(["b CELL", "t-CELL"], case_sensitive=False) == ["B cell", "T cell"]
    assert CellType.standardize(values, return_mapper=True) == {
        "T lymphocyte": "T cell",
        "NK": "Natural killer cell",
        "B lymphocyte": "B cell",
    }


def test_standardize_keep_decides_between_records_sharing_a_synonym(cells: Any) -> None:
    # written directly: add_synonym refuses a synonym another record has
    fill(cells.engine, CellType, [{"name": "Thymocyte", "synonyms": "T lymphocyte"}])
    assert CellType.standardize(["T lymphocyte"]) == ["T cell"]
    assert CellType.standardize(["T lymphocyte"], keep="last") == ["Thymocyte"]
    assert CellType.standardize(["T lymphocyte"], keep=False) == [["T cell", "Thymocyte"]]
    with pytest.raises(InvalidValue, match="keep must be 'first', 'last' or False"):
        CellType.standardize(["x"], keep="all")  # type: ignore[arg-type]


def test_an_empty_value_is_nobodys_synonym(cells: Any) -> None:
    fill(cells.engine, CellType, [{"name": "Glia", "synonyms": "|glial cell|", "abbr": ""}])
    assert CellType.standardize(["", "glial cell"], case_sensitive=False) == ["", "Glia"]
    assert CellType.inspect([""], mute=True).synonyms_mapper == {}


def test_a_name_wins_over_another_records_synonym(cells: Any) -> None:
    fill(cells.engine, CellType, [{"name": "NK", "synonyms": None}])
    assert CellType.standardize(["NK"]) == ["NK"]


# -- from_values --------------------------------------------------------------------------------


def test_from_values_returns_existing_records_through_names_and_synonyms(cells: Any) -> None:
    before = count(cells.engine, CellType)
    with QueryCounter(cells.engine) as counter:
        records = CellType.from_values(["NK", "T cell", "Nope", "T-cell", "Astrocyte", "NK"])
    assert [r.name for r in records] == ["Natural killer cell", "T cell", "Astrocyte"]
    assert all(isinstance(r, CellType) and r.uid for r in records)
    assert count(cells.engine, CellType) == before
    assert len(counter.selects) == 3  # names, synonyms, the records named through synonyms
    assert CellType.from_values([]) == []


# -- synonyms on records ------------------------------------------------------------------------


def _stored(engine: Any, name: str) -> tuple[str | None, str | None]:
    from sqlalchemy import select

    with engine.connect() as conn:
        stmt = select(CellType.synonyms, CellType.abbr).where(CellType.name == name)
        row = conn.execute(stmt).one()
    return row[0], row[1]


def test_add_and_remove_synonyms_are_saved(cells: Any) -> None:
    (astro,) = CellType.from_values(["Astrocyte"])
    astro.add_synonym("astrocytes")
    astro.add_synonym(["Astroglia", "astrocytes", "Astrocyte"])  # known ones are skipped
    assert astro.synonyms == "astrocytes|Astroglia"
    assert _stored(cells.engine, "Astrocyte") == ("astrocytes|Astroglia", None)
    assert CellType.standardize(["Astroglia"]) == ["Astrocyte"]
    astro.remove_synonym("astrocytes")
    assert _stored(cells.engine, "Astrocyte") == ("Astroglia", None)
    astro.remove_synonym("Astroglia")
    assert _stored(cells.engine, "Astrocyte") == (None, None)
    astro.add_synonym("astro cell", save=False)
    assert astro.synonyms == "astro cell"
    assert _stored(cells.engine, "Astrocyte") == (None, None)


def test_a_synonym_of_another_record_is_refused_naming_it(cells: Any) -> None:
    (astro, t_cell) = CellType.from_values(["Astrocyte", "T cell"])
    with pytest.raises(SynonymError, match=r"'B cell' is the name of CellType 'B cell' \(uid "):
        astro.add_synonym("B cell")
    with pytest.raises(SynonymError, match=r"'T-cell' is already a synonym of CellType 'T cell'"):
        astro.add_synonym(["astro", "T-cell"])
    with pytest.raises(SynonymError, match=r"'NK' is already a synonym of CellType 'Natural kill"):
        astro.set_abbr("NK")
    assert _stored(cells.engine, "Astrocyte") == (None, None)  # nothing half-written
    assert astro.synonyms is None and astro.abbr is None
    t_cell.add_synonym("T-cell")  # its own synonym: nothing to do
    assert _stored(cells.engine, "T cell")[0] == "T lymphocyte|T-cell"


def test_a_substring_of_another_records_synonym_is_free(cells: Any) -> None:
    (astro,) = CellType.from_values(["Astrocyte"])
    astro.add_synonym(["lymphocyte", "T"])  # LIKE finds 'T lymphocyte'; the exact check frees
    assert _stored(cells.engine, "Astrocyte")[0] == "lymphocyte|T"


def test_unusable_synonyms_are_refused(cells: Any) -> None:
    (astro,) = CellType.from_values(["Astrocyte"])
    with pytest.raises(SynonymError, match=r"contains '\|', which separates synonyms"):
        astro.add_synonym("a|b")
    with pytest.raises(SynonymError, match="synonym '  ' is empty"):
        astro.add_synonym("  ")
    with pytest.raises(SynonymError, match="a synonym must be a string, not int"):
        astro.add_synonym([1])  # type: ignore[list-item]
    with pytest.raises(SynonymError, match=r"'glia' is not a synonym of CellType 'Astrocyte'"):
        astro.remove_synonym("glia")


def test_set_abbr_sets_it_and_makes_it_a_synonym(cells: Any) -> None:
    (micro,) = CellType.from_values(["Microglial cell"])
    micro.set_abbr("MG")
    assert (micro.abbr, micro.synonyms) == ("MG", "MG")
    assert _stored(cells.engine, "Microglial cell") == ("MG", "MG")
    assert CellType.standardize(["MG"]) == ["Microglial cell"]
    (astro,) = CellType.from_values(["Astrocyte"])
    with pytest.raises(SynonymError, match="'MG' is already a synonym of CellType 'Microglial"):
        astro.add_synonym("MG")


def test_an_abbreviation_alone_is_a_synonym_for_standardize(cells: Any) -> None:
    fill(cells.engine, CellType, [{"name": "Oligodendrocyte", "abbr": "OLG"}])
    assert CellType.standardize(["OLG"]) == ["Oligodendrocyte"]
    (astro,) = CellType.from_values(["Astrocyte"])
    with pytest.raises(SynonymError, match="'OLG' is already a synonym of CellType 'Oligoden"):
        astro.add_synonym("OLG")


def test_synonyms_on_a_new_record_are_checked_and_kept_for_its_save(cells: Any) -> None:
    record = CellType(name="Neuron")
    record.add_synonym("nerve cell")  # nothing to save with: kept on the record
    assert record.synonyms == "nerve cell"
    with pytest.raises(SynonymError, match="'T-cell' is already a synonym"):
        record.add_synonym("T-cell")


def test_unhashable_values_are_a_clear_error(cells: Any) -> None:
    with pytest.raises(InvalidValue, match=r"CellType.name holds text, but \['T cell'\] is a list"):
        CellType.validate([["T cell"]])


def test_a_categorical_with_unused_categories_and_nulls(cells: Any, capsys: Any) -> None:
    values = pd.Categorical(
        ["T cell", None, "Banana", "T cell"], categories=["Unused", "T cell", "Banana"]
    )
    assert CellType.validate(values, mute=True).tolist() == [True, False, False, True]
    result = CellType.inspect(values, mute=True)
    assert (result.validated, result.non_validated) == (["T cell"], ["Banana"])
    assert CellType.standardize(pd.Series(values)) == ["T cell", None, "Banana", "T cell"]


def test_case_insensitive_precedence(cells: Any) -> None:
    """Exact synonym, then a name differing in case, then a synonym differing in case."""
    fill(cells.engine, CellType, [{"name": "Glia", "synonyms": "neuroglia|Müller glia"}])
    fill(cells.engine, CellType, [{"name": "NeuroGlia"}])
    values = ["neuroglia", "NEUROGLIA", "MÜLLER GLIA", "glia"]
    assert CellType.standardize(values, case_sensitive=False) == [
        "Glia", "NeuroGlia", "Glia", "Glia",
    ]  # fmt: skip
    result = CellType.inspect(values, mute=True)
    expected = ["Glia", "NeuroGlia", "Glia", "Glia"]
    assert result.synonyms_mapper == dict(zip(values, expected, strict=True))
    assert result.case_only == {"NEUROGLIA", "MÜLLER GLIA", "glia"}
