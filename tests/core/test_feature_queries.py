"""Artifacts queried by feature values and labels: every operator that fits the dtype, label
and schema relations, negations, frames with one column per feature, and clear errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import QueryError
from lakeline.instance import Instance


@pytest.fixture
def catalog(instance: Instance, tmp_path: Path) -> dict[str, ll.Artifact]:
    cell_type = ll.ULabel(name="CellType", is_type=True).save()
    ll.save([ll.ULabel(name=n, type=cell_type) for n in ("T cell", "B cell", "NK cell")])
    ll.ULabel(name="reviewed").save()
    ll.save(
        [
            ll.Feature(name="temperature", dtype=float),
            ll.Feature(name="n_cells", dtype=int),
            ll.Feature(name="donor", dtype=str),
            ll.Feature(name="healthy", dtype=bool),
            ll.Feature(name="sampled_on", dtype="date"),
            ll.Feature(name="measured_at", dtype="datetime"),
            ll.Feature(name="params", dtype=dict),
            ll.Feature(name="doses", dtype="list[int]"),
            ll.Feature(name="cell_type", dtype="cat[ULabel[CellType]]"),
        ]
    )
    annotations = {
        "a": {"temperature": 37.5, "n_cells": 100, "donor": "D1", "healthy": True,
              "sampled_on": date(2026, 1, 1), "doses": [1, 2], "cell_type": ["T cell", "B cell"],
              "measured_at": datetime(2026, 1, 1, 12, tzinfo=UTC), "params": {"k": 1}},
        "b": {"temperature": 25.0, "n_cells": 5000, "donor": "D2", "healthy": False,
              "sampled_on": date(2026, 3, 1), "doses": [3], "cell_type": "NK cell"},
        "c": {"temperature": 31, "donor": "d1_x", "cell_type": "T cell"},
        "d": {},
    }  # fmt: skip
    saved = {}
    for name, values in annotations.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(name)
        artifact = ll.Artifact(path, key=f"sc/{name}.txt").save()
        artifact.features.add_values(values)
        saved[name] = artifact
    saved["a"].labels.add(ll.ULabel.get(name="reviewed"))
    return saved


def names(query: ll.query.QuerySet[ll.Artifact]) -> list[str]:  # type: ignore[name-defined]
    return sorted(a.key.removeprefix("sc/").removesuffix(".txt") for a in query)


def test_lookups_by_feature_value(catalog: dict[str, ll.Artifact]) -> None:
    A = ll.Artifact
    assert names(A.filter(temperature__gt=30)) == ["a", "c"]
    assert names(A.filter(temperature__gt=30, cell_type="T cell")) == ["a", "c"]
    assert names(A.filter(temperature=37.5)) == ["a"]
    assert names(A.filter(temperature__range=(20, 32))) == ["b", "c"]
    assert names(A.filter(temperature__lte=31)) == ["b", "c"]
    assert names(A.filter(n_cells__gte=100, n_cells__lt=5000)) == ["a"]
    assert names(A.filter(n_cells__in=[100, 5000])) == ["a", "b"]
    assert names(A.filter(n_cells__not_in=[100])) == ["b", "c", "d"]
    assert names(A.filter(n_cells__isnull=True)) == ["c", "d"]
    assert names(A.filter(n_cells__ne=100)) == ["b", "c", "d"]
    assert names(A.filter(donor__startswith="D")) == ["a", "b"]
    assert names(A.filter(donor__istartswith="d1")) == ["a", "c"]
    assert names(A.filter(donor__contains="_")) == ["c"]
    assert names(A.filter(donor__iexact="d2")) == ["b"]
    assert names(A.filter(healthy=True)) == ["a"]
    assert names(A.filter(healthy=False)) == ["b"]
    assert names(A.filter(sampled_on__gt=date(2026, 2, 1))) == ["b"]
    assert names(A.filter(sampled_on="2026-01-01")) == ["a"]
    assert names(A.filter(measured_at__lt=datetime(2026, 6, 1, tzinfo=UTC))) == ["a"]
    assert names(A.filter(params__isnull=False)) == ["a"]
    assert names(A.filter(doses=2)) == ["a"]  # any element
    assert names(A.filter(doses__gte=2)) == ["a", "b"]
    assert names(A.filter().exclude(temperature__gt=30)) == ["b", "d"]


def test_lookups_by_labels(catalog: dict[str, ll.Artifact]) -> None:
    A = ll.Artifact
    t_cell = ll.ULabel.get(name="T cell")
    assert names(A.filter(cell_type="T cell")) == ["a", "c"]
    assert names(A.filter(cell_type=t_cell)) == ["a", "c"]
    assert names(A.filter(cell_type__in=["NK cell", "B cell"])) == ["a", "b"]
    assert names(A.filter(cell_type__startswith="N")) == ["b"]
    assert names(A.filter(cell_type__ne="T cell")) == ["b", "d"]
    assert names(A.filter(cell_type__isnull=True)) == ["d"]
    assert names(A.filter(cell_type__name__icontains="CELL")) == ["a", "b", "c"]
    assert names(A.filter(ulabels__name="reviewed")) == ["a"]
    assert names(A.filter(ulabels__name="T cell")) == ["a", "c"]
    assert names(A.filter(ulabels=t_cell)) == ["a", "c"]
    assert names(A.filter(ulabels__type__name="CellType", temperature__lt=30)) == ["b"]
    assert A.filter(ulabels__name="nothing").count() == 0


def test_frame_with_one_column_per_feature(catalog: dict[str, ll.Artifact]) -> None:
    frame = ll.Artifact.filter(ulabels__name="T cell").to_dataframe(columns=["key"], features=True)
    assert list(frame.columns) == [
        "key", "cell_type", "donor", "doses", "healthy", "measured_at", "n_cells", "params",
        "sampled_on", "temperature",
    ]  # fmt: skip
    rows = frame.set_index("key").to_dict("index")
    assert rows["sc/a.txt"]["cell_type"] == ["B cell", "T cell"]
    assert rows["sc/a.txt"]["doses"] == [1, 2] and rows["sc/a.txt"]["temperature"] == 37.5
    assert rows["sc/c.txt"]["cell_type"] == "T cell" and rows["sc/c.txt"]["donor"] == "d1_x"
    assert rows["sc/c.txt"]["params"] is None
    with pytest.raises(QueryError, match=r"features=True is for artifacts"):
        ll.Run.filter().to_dataframe(features=True)


@pytest.mark.parametrize(
    ("lookups", "message"),
    [
        ({"temperature__startswith": "3"}, r"feature 'temperature' of dtype float takes the "
                                           r"operators exact, ne, in"),
        ({"temperature__gt": "warm"}, r"lookup 'temperature__gt': value 'warm' \(str\) does "
                                      r"not fit feature 'temperature'"),
        ({"n_cells": 1.5}, r"pass an integer"),
        ({"healthy__gt": True}, r"dtype bool takes the operators exact, ne, isnull"),
        ({"params": {"k": 1}}, r"dtype dict takes the operators isnull"),
        ({"temperature__foo": 1}, r"unknown operator 'foo' in lookup 'temperature__foo'"),
        ({"weight__gt": 1}, r"Artifact has no field 'weight'"),
        ({"ulabels__colour": "x"}, r"ULabel has no field 'colour'"),
    ],
)  # fmt: skip
def test_bad_feature_lookups(
    catalog: dict[str, ll.Artifact], lookups: dict[str, object], message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        ll.Artifact.filter(**lookups).all()


@pytest.mark.parametrize(
    ("lookups", "index"),
    [
        ({"n_cells": 100}, "ix_feature_values_value_int"),
        ({"n_cells__gte": 1000}, "ix_feature_values_value_int"),
        ({"temperature__gt": 30}, "ix_feature_values_value_float"),
        ({"temperature__range": (30, 40)}, "ix_feature_values_value_float"),
        ({"donor": "D1"}, "ix_feature_values_value_str"),
        ({"donor__startswith": "D"}, "ix_feature_values_value_str"),
        ({"healthy": True}, "ix_feature_values_value_bool"),
        ({"sampled_on__gte": date(2026, 2, 1)}, "ix_feature_values_value_datetime"),
        ({"cell_type": "T cell"}, "ix_artifact_ulabels_ulabel_id"),
        ({"ulabels__name": "reviewed"}, "ix_artifact_ulabels_ulabel_id"),
    ],
)
def test_feature_lookups_read_their_index(
    catalog: dict[str, ll.Artifact], lookups: dict[str, object], index: str
) -> None:
    """The plan of each lookup by feature value or label reads the typed partial index
    (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN with sequential scans priced out, so the
    plan shows whether the query's predicates can use the index at all on a tiny table). What
    bench/features.py times at 1M annotated artifacts; this asserts the plan, not the time."""
    from lakeline.instance import current

    instance = current()
    query = ll.Artifact.filter(**lookups)
    sql = str(
        query.statement.compile(
            dialect=instance.engine.dialect, compile_kwargs={"literal_binds": True}
        )
    )
    with instance.engine.begin() as conn:
        if instance.dialect == "sqlite":
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " | ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert index in plan, plan
    for table in ("feature_values", "artifact_ulabels"):  # never a scan of a whole table
        assert f"SCAN {table} " not in f"{plan} " and f"Seq Scan on {table}" not in plan, plan
    assert query.count() >= 1  # the lookup finds what the catalog holds
