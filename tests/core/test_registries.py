"""Feature, ULabel and Schema records: dtypes, saving (single and bulk, one transaction), the
exact-name duplicate safeguard, label types and hierarchy, schema identity, and bad input."""

from __future__ import annotations

from datetime import date, datetime

import lakeline as ll
import pytest
from lakeline.errors import AnnotationError, InvalidDtype, InvalidValue
from lakeline.instance import Instance


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (float, "float"),
        (int, "int"),
        (str, "str"),
        (bool, "bool"),
        (dict, "dict"),
        (date, "date"),
        (datetime, "datetime"),
        (list[int], "list[int]"),
        ("num", "num"),
        ("cat", "cat[ULabel]"),
        ("cat[ULabel]", "cat[ULabel]"),
        ("cat[ULabel[Cell Type]]", "cat[ULabel[Cell Type]]"),
        ("cat[Feature]", "cat[Feature]"),
        ("cat[ULabel.description]", "cat[ULabel.description]"),
        ("list[cat[ULabel[Tissue]]]", "list[cat[ULabel[Tissue]]]"),
    ],
)
def test_dtypes_parse(given: object, stored: str) -> None:
    assert ll.Feature(name="f", dtype=given).dtype == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("float64", r"^feature 'f': unknown dtype 'float64'; did you mean 'float'\? known: str"),
        ("strng", r"did you mean 'str'\?"),
        ("text", r"unknown dtype 'text'; known: str"),
        ("cat[NoSuchRegistry]", r"unknown registry 'NoSuchRegistry' in dtype"),
        ("cat[ULabel.nofield]", r"ULabel has no field 'nofield'"),
        ("cat[Feature[Type]]", r"Feature records have no type"),
        (list, r"list needs an element dtype"),
        ("list[list[int]]", r"a list holds"),
        ("list[dict]", r"a list holds"),
        (complex, r"unknown dtype 'complex'"),
    ],
)
def test_unknown_dtypes_are_clear_errors(given: object, message: str) -> None:
    with pytest.raises(InvalidDtype, match=message):
        ll.Feature(name="f", dtype=given)


def test_feature_save_and_exact_name_duplicate(instance: Instance) -> None:
    temperature = ll.Feature(name="temperature", dtype=float, unit="°C").save()
    assert temperature.id is not None and temperature.unit == "°C"
    again = ll.Feature(name="temperature", dtype="float").save()
    assert again.id == temperature.id and again.uid == temperature.uid
    assert ll.Feature.filter(name="temperature").count() == 1
    with pytest.raises(AnnotationError, match=r"exists with dtype float, not int"):
        ll.Feature(name="temperature", dtype=int).save()
    assert ll.Feature.get(name="temperature").dtype == "float"
    frame = ll.Feature.filter(unit="°C").to_dataframe(columns=["name", "dtype", "unit"])
    assert frame.to_dict("records") == [{"name": "temperature", "dtype": "float", "unit": "°C"}]


def test_cat_feature_needs_its_label_type(instance: Instance) -> None:
    with pytest.raises(AnnotationError, match=r"label type 'CellTypeHandLabel', which does not"):
        ll.Feature(name="cell_type", dtype="cat[ULabel[CellTypeHandLabel]]").save()
    assert ll.Feature.filter().count() == 0
    ll.ULabel(name="CellTypeHandLabel", is_type=True).save()
    feature = ll.Feature(name="cell_type", dtype="cat[ULabel[CellTypeHandLabel]]").save()
    assert feature.parsed_dtype.type_name == "CellTypeHandLabel"


def test_labels_bulk_types_parents(instance: Instance) -> None:
    cell_type = ll.ULabel(name="CellType", is_type=True)
    immune = ll.ULabel(name="immune cell", type=cell_type)
    names = [f"label {i}" for i in range(40)]
    saved = ll.save(
        [cell_type, immune, *(ll.ULabel(name=n, type=cell_type, parents=[immune]) for n in names)]
    )
    assert all(r.id is not None for r in saved)
    assert ll.ULabel.filter(type__name="CellType").count() == 41
    t_cell = ll.ULabel.get(name="label 3")
    assert t_cell.type is not None and t_cell.type.name == "CellType"
    assert [p.name for p in t_cell.parents] == ["immune cell"]
    assert ll.ULabel.get(name="immune cell").children.count() == 40
    assert [x.name for x in ll.ULabel.search("immune")] == ["immune cell"]
    assert {label.name for label in saved[0].records} == {"immune cell", *names}
    # the same names again (and a duplicate inside the batch) are the existing records
    again = ll.save([ll.ULabel(name=n, type=saved[0]) for n in [*names, names[0]]])
    assert [r.id for r in again] == [r.id for r in saved[2:]] + [saved[2].id]
    assert ll.ULabel.filter().count() == 42
    # the same name under no type or another type is another label
    other = ll.ULabel(name="label 3").save()
    assert other.id != t_cell.id and other.type_id is None


def test_label_bad_input(instance: Instance) -> None:
    plain = ll.ULabel(name="plain").save()
    with pytest.raises(AnnotationError, match=r"type of label 'x' must be a label type, got "):
        ll.ULabel(name="x", type=plain)
    with pytest.raises(InvalidValue, match=r"needs a non-empty name"):
        ll.ULabel(name=" ")
    a = ll.ULabel(name="a").save()
    b = ll.ULabel(name="b", parents=[a]).save()
    with pytest.raises(AnnotationError, match=r"'b' cannot be a parent of 'a'"):
        ll.ULabel(name="a", parents=[b]).save()
    # a failing bulk save writes nothing
    with pytest.raises(AnnotationError, match=r"its type 'T' is not saved"):
        ll.save(
            [ll.ULabel(name="new one"), ll.ULabel(name="y", type=ll.ULabel(name="T", is_type=True))]
        )
    assert ll.ULabel.filter(name="new one").count() == 0


def test_schema_identity_members_and_errors(instance: Instance) -> None:
    ll.save([ll.Feature(name="a", dtype=int), ll.Feature(name="b", dtype=str)])
    gene = ll.Feature(name="gene", dtype=str)
    schema = ll.Schema(
        ["a", "b"],
        name="obs",
        otype="AnnData",
        optional=["b"],
        slots={"var": [gene]},
        coerce_dtype=True,
    )
    with pytest.raises(AnnotationError, match=r"names feature 'gene', which does not exist"):
        schema.save()
    assert ll.Schema.filter().count() == 0
    # in a batch: the labels and features saved with it are not saved either (one transaction)
    with pytest.raises(
        AnnotationError,
        match=r"^schema 'obs' names feature 'gene', which does not exist: create it with "
        r"ll.Feature\(name='gene', dtype=...\).save\(\)$",
    ):
        ll.save([ll.ULabel(name="batch label"), ll.Feature(name="c", dtype=int), schema])
    assert ll.ULabel.filter(name="batch label").count() == 0
    assert ll.Feature.filter(name="c").count() == 0 and ll.Schema.filter().count() == 0
    gene = gene.save()
    saved = ll.Schema(
        ["a", "b"], name="obs", otype="AnnData", optional=["b"], slots={"var": [gene]},
        coerce_dtype=True,
    ).save()  # fmt: skip
    assert saved.n_members == 3 and len(saved.hash) == 64
    assert [(slot, f.name, required) for slot, f, required in saved.members] == [
        ("", "a", True),
        ("", "b", False),
        ("var", "gene", True),
    ]
    assert sorted(f.name for f in saved.features) == ["a", "b", "gene"]
    # the same members in another order and under another name: the same schema
    same = ll.Schema(
        ["b", "a"], name="other", otype="AnnData", optional=["b"], slots={"var": ["gene"]},
        coerce_dtype=True,
    ).save()  # fmt: skip
    assert same.id == saved.id
    with pytest.raises(AnnotationError, match=r"schema 'obs' exists with other members"):
        ll.Schema(["a"], name="obs").save()
    with pytest.raises(AnnotationError, match=r"lists feature 'a' twice"):
        ll.Schema(["a", "a"], name="twice")
    assert ll.Schema.filter(otype="AnnData").count() == 1


def test_save_mixes_no_artifacts_with_records(instance: Instance, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.txt"
    path.write_text("x")
    with pytest.raises(ll.errors.LakelineError, match=r"save artifacts and other records"):
        ll.save([ll.Artifact(path, key="x.txt"), ll.ULabel(name="x")])


def test_bulk_labels_are_complete_records(instance: Instance) -> None:
    """Labels saved in bulk (one INSERT ... SELECT over JSON on SQLite, COPY on PostgreSQL)
    hold exactly what the objects returned say: every column, quotes, non-ASCII text,
    synonyms, booleans, times; and each has its own uid and id."""
    from sqlalchemy import inspect as orm_inspect

    kind = ll.ULabel(name="Kind", is_type=True, description="types «ü»").save()
    labels = [
        ll.ULabel(
            name=f'it\'s "{i}" 名 é\\{i}',
            type=kind,
            description=None if i % 2 else f"line\nbreak {i}",
            synonyms=[f"syn {i}", f"SYN-{i}"] if i % 3 == 0 else None,
            abbr=f"A{i}" if i % 5 == 0 else None,
        )
        for i in range(40)
    ]
    saved = ll.save([*labels, ll.ULabel(name="another type", is_type=True)])
    rows = {x.uid: x for x in ll.ULabel.filter().all()}
    columns = [c.key for c in ll.ULabel.__table__.columns]
    assert len({x.uid for x in saved}) == len({x.id for x in saved}) == 41
    for label in saved:
        assert orm_inspect(label).detached
        row = rows[label.uid]
        assert {c: getattr(label, c) for c in columns} == {c: getattr(row, c) for c in columns}
    assert rows[saved[-1].uid].is_type and not rows[saved[0].uid].is_type
    assert rows[saved[3].uid].synonyms == "syn 3|SYN-3"
    assert [x.name for x in ll.ULabel.search("A35")] == [saved[35].name]
